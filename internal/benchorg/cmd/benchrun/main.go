// Command benchrun measures learnsync against synthetic organisations of
// several sizes (issue 11's targets; see docs/PERFORMANCE.md, "Org size and
// changes"). For each size it generates the org with benchorg, runs the
// learnsync binary as a separate process for each scenario (first import,
// no change, 1% changed, --full, and a curve of changed people at one
// size) and records wall time, CPU time and the child's peak RSS. It prints
// markdown tables, merges the rows into -out/results.csv and plots PNGs
// with gnuplot (when installed).
//
//	go run ./internal/benchorg/cmd/benchrun -sizes 10000,100000 -out docs/perf
//	go run ./internal/benchorg/cmd/benchrun -plot-only -out docs/perf
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the command's flags.
type options struct {
	sizes      []int
	changes    []int
	curveSize  int
	out        string
	work       string
	keep       bool
	seed       int64
	timeout    time.Duration
	bin        string
	plot       bool
	plotOnly   bool
	noCSVMerge bool
}

func parseFlags() (options, error) {
	var o options
	sizes := flag.String("sizes", "10000,100000", "org sizes (people), comma-separated")
	changes := flag.String("changes", "100,1000,10000", "changed people for the changes curve, comma-separated")
	flag.IntVar(&o.curveSize, "curve-size", 0, "org size of the changes curve (default: the largest of -sizes; -1: none)")
	flag.StringVar(&o.out, "out", "docs/perf", "directory for results.csv and the PNGs")
	flag.StringVar(&o.work, "work", "", "work directory (default: a new temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Int64Var(&o.seed, "seed", 1, "benchorg seed")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "time limit of each child process")
	flag.StringVar(&o.bin, "bin", "", "learnsync binary to measure (default: go build ./cmd/learnsync)")
	flag.BoolVar(&o.plot, "plot", true, "plot the PNGs from results.csv with gnuplot")
	flag.BoolVar(&o.plotOnly, "plot-only", false, "only plot from -out/results.csv; measure nothing")
	flag.BoolVar(&o.noCSVMerge, "replace", false, "replace results.csv instead of merging the new sizes into it")
	flag.Parse()
	var err error
	if o.sizes, err = parseInts(*sizes); err != nil {
		return o, fmt.Errorf("-sizes: %w", err)
	}
	if o.changes, err = parseInts(*changes); err != nil {
		return o, fmt.Errorf("-changes: %w", err)
	}
	if o.curveSize == 0 && len(o.sizes) > 0 {
		o.curveSize = slices.Max(o.sizes)
	}
	return o, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	o, err := parseFlags()
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	csvPath := filepath.Join(o.out, "results.csv")
	if o.plotOnly {
		rows, err := readCSV(csvPath)
		if err != nil {
			return err
		}
		printTables(os.Stdout, rows)
		return plot(o.out, rows)
	}
	work, cleanup, err := workDir(o)
	if err != nil {
		return err
	}
	defer cleanup()
	bin := o.bin
	if bin == "" {
		if bin, err = build(work); err != nil {
			return err
		}
	}
	var rows []Row
	for _, n := range o.sizes {
		rs, err := measureSize(context.Background(), o, bin, filepath.Join(work, strconv.Itoa(n)), n)
		rows = append(rows, rs...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: %d people: %v\n", n, err)
		}
	}
	if !o.noCSVMerge {
		old, err := readCSV(csvPath)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		rows = mergeRows(old, rows)
	}
	if err := writeCSV(csvPath, rows); err != nil {
		return err
	}
	printTables(os.Stdout, rows)
	if !o.plot {
		return nil
	}
	return plot(o.out, rows)
}

func workDir(o options) (string, func(), error) {
	if o.work != "" {
		return o.work, func() {}, os.MkdirAll(o.work, 0o755)
	}
	d, err := os.MkdirTemp("", "benchrun-")
	if err != nil {
		return "", nil, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "benchrun: work directory", d)
		return d, func() {}, nil
	}
	return d, func() { os.RemoveAll(d) }, nil
}
