// Command benchorg writes a synthetic organisation in the file source's JSON
// format, for benchmarks and load tests (see docs/PERFORMANCE.md).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/learnsync/learnsync/internal/benchorg"
)

func main() {
	users := flag.Int("users", 100_000, "number of users")
	groups := flag.Int("groups", 5_000, "number of groups")
	members := flag.Int("members", 100, "members per group")
	changed := flag.Float64("changed", 0, "share of users (0 to 1) whose title differs")
	seed := flag.Int64("seed", 1, "random seed")
	out := flag.String("o", "org.json", "output file")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	s := benchorg.Org{Users: *users, Groups: *groups, MembersPerGroup: *members, Seed: *seed, Changed: *changed}
	if err := s.Write(w); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
