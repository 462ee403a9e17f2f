package file

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
)

// Synthetic describes a generated organisation in the JSON format of the file
// source, for benchmarks and load tests. The same fields always give the same
// bytes.
//
// User i has id e000123, user name u000123, email user000123@example.com and
// employee number 000123 (six digits at least); about 2% are inactive, the
// rest active. Group j has id g0042 and name "Group 0042" (four digits at
// least) and MembersPerGroup distinct members drawn from the users.
type Synthetic struct {
	Users, Groups, MembersPerGroup int
	Seed                           int64
	// Changed is the share of users (0 to 1) whose title differs from the
	// organisation with Changed = 0 and the same other fields; everything
	// else is identical. It models a run where a few people changed.
	Changed float64
}

// WriteSynthetic writes a generated organisation of users users and groups
// groups of membersPerGroup members each to w (see Synthetic).
func WriteSynthetic(w io.Writer, users, groups, membersPerGroup int, seed int64) error {
	return Synthetic{Users: users, Groups: groups, MembersPerGroup: membersPerGroup, Seed: seed}.Write(w)
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
func (s Synthetic) Write(w io.Writer) error {
	if s.Users < 0 || s.Groups < 0 || s.MembersPerGroup < 0 {
		return errors.New("synthetic: negative size")
	}
	rng := rand.New(rand.NewPCG(uint64(s.Seed), 0x9e3779b97f4a7c15))
	uw := max(6, len(strconv.Itoa(s.Users-1)))
	gw := max(4, len(strconv.Itoa(s.Groups-1)))
	changed := uint64(s.Changed * 10000)

	bw := bufio.NewWriterSize(w, 256<<10)
	buf := make([]byte, 0, 1024)
	buf = append(buf, "{\"users\": [\n"...)
	for i := range s.Users {
		// Draw the same numbers whatever Changed is, so that only the
		// changed users differ.
		given := synthGiven[rng.IntN(len(synthGiven))]
		family := synthFamily[rng.IntN(len(synthFamily))]
		dept := synthDept[rng.IntN(len(synthDept))]
		title := synthTitle[rng.IntN(len(synthTitle))]
		cc := rng.IntN(40)
		inactive := rng.IntN(50) == 0

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
		if (uint64(i)*2654435761)%(1<<32)%10000 < changed {
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
		if i < s.Users-1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	buf = append(buf, "],\n\"groups\": [\n"...)

	per := min(s.MembersPerGroup, s.Users)
	stamp := make([]int32, s.Users)
	for j := range s.Groups {
		buf = append(buf, `  {"id":"g`...)
		buf = appendPadded(buf, j, gw)
		buf = append(buf, `","name":"Group `...)
		buf = appendPadded(buf, j, gw)
		buf = append(buf, `","description":"Synthetic group `...)
		buf = strconv.AppendInt(buf, int64(j), 10)
		buf = append(buf, `","members":[`...)
		for k := range per {
			var u int
			if per == s.Users {
				u = k
			} else {
				for {
					u = rng.IntN(s.Users)
					if stamp[u] != int32(j+1) {
						break
					}
				}
				stamp[u] = int32(j + 1)
			}
			if k > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `"e`...)
			buf = appendPadded(buf, u, uw)
			buf = append(buf, '"')
		}
		buf = append(buf, "]}"...)
		if j < s.Groups-1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	buf = append(buf, "]}\n"...)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
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
