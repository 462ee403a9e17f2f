// Package benchorg generates organisations in the JSON format of the file
// source, for benchmarks and load tests (see docs/PERFORMANCE.md). Its
// command, cmd/benchorg, writes one to a file.
package benchorg

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
)

// Org describes a generated organisation in the JSON format of the file
// source. The same fields always give the same bytes.
//
// User i has id e000123, user name u000123, email user000123@example.com and
// employee number 000123 (six digits at least); about 2% are inactive, the
// rest active. Group j has id g0042 and name "Group 0042" (four digits at
// least) and MembersPerGroup distinct members drawn from the users.
type Org struct {
	Users, Groups, MembersPerGroup int
	Seed                           int64
	// Changed is the share of users (0 to 1) whose title differs from the
	// organisation with Changed = 0 and the same other fields; everything
	// else is identical. It models a run where a few people changed.
	Changed float64
}

var (
	synthGiven = [...]string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
		"Margaret", "Dennis", "Radia", "Niklaus", "Hedy", "John", "Katherine", "Tim"}
	synthFamily = [...]string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen",
		"Thompson", "Hamilton", "Ritchie", "Perlman", "Wirth", "Lamarr", "Backus", "Johnson", "Berners-Lee"}
	synthDept  = [...]string{"Engineering", "Sales", "Marketing", "Finance", "Support", "Operations", "Legal", "People"}
	synthTitle = [...]string{"Engineer", "Senior Engineer", "Manager", "Analyst", "Specialist", "Director", "Associate", "Lead"}
)

// Write writes the organisation to w.
func (o Org) Write(w io.Writer) error {
	if o.Users < 0 || o.Groups < 0 || o.MembersPerGroup < 0 {
		return errors.New("benchorg: negative size")
	}
	g := &generator{
		org: o,
		rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x9e3779b97f4a7c15)),
		bw:  bufio.NewWriterSize(w, 256<<10),
		buf: make([]byte, 0, 1024),
		uw:  max(6, len(strconv.Itoa(o.Users-1))),
		gw:  max(4, len(strconv.Itoa(o.Groups-1))),
	}
	g.buf = append(g.buf, "{\"users\": [\n"...)
	for i := range o.Users {
		g.appendUser(i)
		if err := g.line(i < o.Users-1); err != nil {
			return err
		}
	}
	g.buf = append(g.buf, "],\n\"groups\": [\n"...)
	g.stamp = make([]int32, o.Users)
	for j := range o.Groups {
		g.appendGroup(j)
		if err := g.line(j < o.Groups-1); err != nil {
			return err
		}
	}
	g.buf = append(g.buf, "]}\n"...)
	if _, err := g.bw.Write(g.buf); err != nil {
		return err
	}
	return g.bw.Flush()
}

// generator writes one organisation, one record a line.
type generator struct {
	org Org
	rng *rand.Rand
	bw  *bufio.Writer
	buf []byte
	// uw and gw are the widths of user and group numbers.
	uw, gw int
	// stamp[u] is 1 + the last group that drew user u.
	stamp []int32
}

// line ends the record in buf (with a comma if more follow) and writes it.
func (g *generator) line(more bool) error {
	if more {
		g.buf = append(g.buf, ',')
	}
	g.buf = append(g.buf, '\n')
	_, err := g.bw.Write(g.buf)
	g.buf = g.buf[:0]
	return err
}

// appendUser appends user i's record.
func (g *generator) appendUser(i int) {
	rng, uw := g.rng, g.uw
	// Draw the same numbers whatever Changed is, so that only the changed
	// users differ.
	given := synthGiven[rng.IntN(len(synthGiven))]
	family := synthFamily[rng.IntN(len(synthFamily))]
	dept := synthDept[rng.IntN(len(synthDept))]
	title := synthTitle[rng.IntN(len(synthTitle))]
	cc := rng.IntN(40)
	inactive := rng.IntN(50) == 0

	buf := g.buf
	buf = append(buf, `  {"id":"e`...)
	buf = appendPadded(buf, i, uw)
	buf = append(buf, `","user_name":"u`...)
	buf = appendPadded(buf, i, uw)
	buf = append(buf, `","email":"user`...)
	buf = appendPadded(buf, i, uw)
	buf = append(buf, `@example.com","given_name":"`...)
	buf = append(buf, given...)
	buf = append(buf, `","family_name":"`...)
	buf = append(buf, family...)
	buf = append(buf, `","display_name":"`...)
	buf = append(buf, given...)
	buf = append(buf, ' ')
	buf = append(buf, family...)
	buf = append(buf, `","title":"`...)
	buf = append(buf, title...)
	// A multiplicative hash spreads the changed users over the file.
	if (uint64(i)*2654435761)%(1<<32)%10000 < uint64(g.org.Changed*10000) {
		buf = append(buf, " II"...)
	}
	buf = append(buf, `","department":"`...)
	buf = append(buf, dept...)
	buf = append(buf, `","employee_number":"`...)
	buf = appendPadded(buf, i, uw)
	buf = append(buf, `","manager":"`...)
	if i > 0 {
		buf = append(buf, 'e')
		buf = appendPadded(buf, i/8, uw)
	}
	buf = append(buf, `","cost_center":"CC-`...)
	buf = appendPadded(buf, cc, 2)
	if inactive {
		buf = append(buf, `","status":"inactive"}`...)
	} else {
		buf = append(buf, `","status":"active"}`...)
	}
	g.buf = buf
}

// appendGroup appends group j's record with its distinct members.
func (g *generator) appendGroup(j int) {
	users := g.org.Users
	per := min(g.org.MembersPerGroup, users)
	buf := g.buf
	buf = append(buf, `  {"id":"g`...)
	buf = appendPadded(buf, j, g.gw)
	buf = append(buf, `","name":"Group `...)
	buf = appendPadded(buf, j, g.gw)
	buf = append(buf, `","description":"Synthetic group `...)
	buf = strconv.AppendInt(buf, int64(j), 10)
	buf = append(buf, `","members":[`...)
	for k := range per {
		var u int
		if per == users {
			u = k
		} else {
			for {
				u = g.rng.IntN(users)
				if g.stamp[u] != int32(j+1) {
					break
				}
			}
			g.stamp[u] = int32(j + 1)
		}
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `"e`...)
		buf = appendPadded(buf, u, g.uw)
		buf = append(buf, '"')
	}
	buf = append(buf, "]}"...)
	g.buf = buf
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(buf []byte, n, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], int64(n), 10)
	for i := len(d); i < width; i++ {
		buf = append(buf, '0')
	}
	return append(buf, d...)
}

// Config is the learnsync configuration of the benchmarks in
// docs/PERFORMANCE.md: the org as file org.json next to it, the directory
// bench.db, two license pools (one limited and fed by three groups, one
// all_active) and no safety limits.
const Config = `
directory: {dsn: bench.db}
sources:
  - {name: hr, type: file, config: {path: org.json}}
licenses:
  - {name: pro, seats: 20000, groups: ["Group 0001", "Group 0002", "Group 0003"]}
  - {name: basic, all_active: true}
safety: {max_deactivations: 0, max_deactivation_percent: 0}
`
