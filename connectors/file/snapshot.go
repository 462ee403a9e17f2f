package file

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/learnsync/learnsync/connectors"
)

// snapshot collects the records of one file, checking each as it comes, so
// that a bad record costs a Problem and never the run.
type snapshot struct {
	// where names the record at a position for Problems: "users[3]" or
	// "line 17" for users, "groups[2]" for groups.
	userWhere, groupWhere func(pos int) string

	users      []connectors.User
	userHashes []int64 // connectors.UserHash of each user, as it is read
	userPos    []int32 // position of each user, for "first at" in duplicates
	userIdx    map[string]int32
	// rejected holds ids of users skipped as malformed: members naming
	// them are dropped without a second Problem.
	rejected map[string]struct{}

	groups    []connectors.Group
	groupPos  []int32
	groupIdx  map[string]int32
	groupName map[string]int32
	members   [][]string // parallel to groups

	problems []connectors.Problem
	// attrs are the raw attributes the rules read (Options.Attrs).
	attrs *connectors.Selection
	// shared keeps one copy of the attribute values that repeat across
	// users (departments, titles, managers…): 80 bytes a person at 1M.
	shared connectors.Shared
}

func newSnapshot(format string) *snapshot {
	s := &snapshot{
		userIdx:   make(map[string]int32),
		groupIdx:  make(map[string]int32),
		groupName: make(map[string]int32),
	}
	if format == FormatCSV {
		s.userWhere = linePos
		s.groupWhere = linePos
	} else {
		s.userWhere = func(pos int) string { return "users[" + strconv.Itoa(pos) + "]" }
		s.groupWhere = func(pos int) string { return "groups[" + strconv.Itoa(pos) + "]" }
	}
	return s
}

func linePos(pos int) string { return "line " + strconv.Itoa(pos) }

func (s *snapshot) problem(object, reason string) {
	s.problems = append(s.problems, connectors.Problem{Object: object, Reason: reason})
}

// rejectUser records a user skipped as malformed.
func (s *snapshot) rejectUser(pos int, id, reason string) {
	if id != "" {
		reason = fmt.Sprintf("id %q: %s", id, reason)
		if s.rejected == nil {
			s.rejected = make(map[string]struct{})
		}
		s.rejected[id] = struct{}{}
	}
	s.problem(s.userWhere(pos), reason)
}

// addUser checks u (trimming its fields in place) and keeps it, or records
// why not. It returns the user's index, or -1.
func (s *snapshot) addUser(pos int, u *connectors.User, status string) int {
	reason := cleanUser(u)
	id := u.ExternalID
	if reason == "" && id == "" {
		reason = "missing id"
	}
	if reason != "" {
		s.rejectUser(pos, id, reason)
		return -1
	}
	st, ok := parseStatus(status)
	if !ok {
		s.rejectUser(pos, id, fmt.Sprintf("status %q: want active, inactive or skip", status))
		return -1
	}
	u.Status = st
	s.shared.User(u)
	if first, dup := s.userIdx[id]; dup {
		// The first record keeps the id; members still reach it.
		s.problem(s.userWhere(pos), fmt.Sprintf("id %q: duplicate id (first at %s)", id, s.userWhere(int(s.userPos[first]))))
		return -1
	}
	i := len(s.users)
	s.userIdx[id] = int32(i)
	s.users = append(s.users, *u)
	s.userHashes = append(s.userHashes, connectors.UserHash(u))
	s.userPos = append(s.userPos, int32(pos))
	return i
}

// cleanUser trims every field of u and returns why one of them is not
// acceptable text, or "".
func cleanUser(u *connectors.User) string {
	fields := [...]struct {
		name string
		v    *string
	}{
		{"id", &u.ExternalID},
		{"user_name", &u.UserName},
		{"email", &u.Email},
		{"given_name", &u.GivenName},
		{"family_name", &u.FamilyName},
		{"display_name", &u.DisplayName},
		{"title", &u.Title},
		{"department", &u.Department},
		{"employee_number", &u.EmployeeNumber},
		{"manager", &u.Manager},
		{"cost_center", &u.CostCenter},
	}
	for _, f := range fields {
		*f.v = strings.TrimSpace(*f.v)
		if r := checkText(*f.v, false); r != "" {
			return f.name + ": " + r
		}
	}
	return ""
}

// parseStatus maps a status column; empty means active.
func parseStatus(s string) (connectors.Status, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || strings.EqualFold(s, "active"):
		return connectors.StatusActive, true
	case strings.EqualFold(s, "inactive"):
		return connectors.StatusInactive, true
	case strings.EqualFold(s, "skip"):
		return connectors.StatusSkip, true
	}
	return "", false
}

// checkText returns why s is not acceptable in a field, or "". Control
// characters are refused (newlines and tabs only where multiline is set), and
// so is U+FFFD: encoding/json turns invalid UTF-8 into it, so in a decoded
// string it is the only trace of bytes that were not UTF-8.
func checkText(s string, multiline bool) string {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				if !multiline || (b != '\n' && b != '\r' && b != '\t') {
					return "contains a control character"
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError {
			return "is not valid UTF-8"
		}
		if r >= 0x80 && r <= 0x9f {
			return "contains a control character"
		}
		i += size
	}
	return ""
}

// addGroup checks g and keeps it with a copy of members (resolved later by
// resolveMembers), or records why not.
func (s *snapshot) addGroup(pos int, g connectors.Group, members []string) int {
	g.ExternalID = strings.TrimSpace(g.ExternalID)
	g.Name = strings.TrimSpace(g.Name)
	g.Description = strings.TrimSpace(g.Description)
	var reason string
	switch {
	case g.ExternalID == "":
		reason = "missing id"
	case checkText(g.ExternalID, false) != "":
		reason = "id: " + checkText(g.ExternalID, false)
	case g.Name == "":
		reason = "missing name"
	case checkText(g.Name, false) != "":
		reason = "name: " + checkText(g.Name, false)
	case checkText(g.Description, true) != "":
		reason = "description: " + checkText(g.Description, true)
	}
	if reason == "" {
		if first, dup := s.groupIdx[g.ExternalID]; dup {
			reason = "duplicate id (first at " + s.groupWhere(int(s.groupPos[first])) + ")"
		} else if first, dup := s.groupName[g.Name]; dup {
			// Groups are known by name in the configuration ("hr/Engineering");
			// two with one name would make that ambiguous.
			reason = fmt.Sprintf("duplicate name %q (first at %s)", g.Name, s.groupWhere(int(s.groupPos[first])))
		}
	}
	if reason != "" {
		if g.ExternalID != "" {
			reason = fmt.Sprintf("id %q: %s", g.ExternalID, reason)
		}
		s.problem(s.groupWhere(pos), reason)
		return -1
	}
	i := len(s.groups)
	s.groupIdx[g.ExternalID] = int32(i)
	s.groupName[g.Name] = int32(i)
	s.groups = append(s.groups, g)
	s.groupPos = append(s.groupPos, int32(pos))
	var ms []string
	if len(members) > 0 {
		ms = make([]string, len(members))
		copy(ms, members)
	}
	s.members = append(s.members, ms)
	return i
}

// maxListed bounds the ids quoted in one Problem.
const maxListed = 5

// resolveMembers keeps the members that name known users, once each, and
// reports the unknown ones per group. It runs after the whole file is read
// because groups may come before users.
func (s *snapshot) resolveMembers() {
	// stamp[u] == g+1 when user u is already a member of group g: dedupes
	// without a set per group.
	stamp := make([]int32, len(s.users))
	for gi, ms := range s.members {
		out := ms[:0]
		var unknown []string
		nUnknown := 0
		for _, m := range ms {
			m = strings.TrimSpace(m)
			ui, ok := s.userIdx[m]
			if !ok {
				if _, rej := s.rejected[m]; !rej {
					nUnknown++
					if len(unknown) < maxListed {
						unknown = append(unknown, strconv.Quote(m))
					}
				}
				continue
			}
			if stamp[ui] == int32(gi+1) {
				continue
			}
			stamp[ui] = int32(gi + 1)
			// The user's own string: the decoded copy can be collected.
			out = append(out, s.users[ui].ExternalID)
		}
		clear(ms[len(out):])
		s.members[gi] = out
		if nUnknown > 0 {
			list := strings.Join(unknown, ", ")
			if nUnknown > len(unknown) {
				list += fmt.Sprintf(" and %d more", nUnknown-len(unknown))
			}
			what := "members with unknown user ids"
			if nUnknown == 1 {
				what = "member with an unknown user id"
			}
			s.problem(s.groupWhere(int(s.groupPos[gi])),
				fmt.Sprintf("id %q: dropped %d %s: %s", s.groups[gi].ExternalID, nUnknown, what, list))
		}
	}
}

// result hands the snapshot over as a full result.
func (s *snapshot) result() *connectors.Result {
	res := &connectors.Result{
		Full:     true,
		Users:    s.users,
		Groups:   s.groups,
		Members:  make(map[string][]string, len(s.groups)),
		Problems: s.problems,
	}
	if res.Users == nil {
		res.Users = []connectors.User{}
	}
	if res.Groups == nil {
		res.Groups = []connectors.Group{}
	}
	res.UserHashes = s.userHashes
	res.GroupHashes = make([]int64, len(s.groups))
	for i, g := range s.groups {
		if len(s.members[i]) > 0 {
			// Sorted here, once: the mirror takes a sorted list as it is
			// rather than a sorted copy (at 1M people, 5M ids).
			slices.Sort(s.members[i])
			res.Members[g.ExternalID] = s.members[i]
		}
		res.GroupHashes[i] = connectors.GroupHash(&s.groups[i], slices.Values(s.members[i]))
	}
	if res.UserHashes == nil {
		res.UserHashes = []int64{}
	}
	return res
}
