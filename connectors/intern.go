package connectors

import "strings"

// internLimit is the most distinct values an Interner keeps: a field whose
// values hardly repeat (display names in a real directory) stops growing
// the table there and is kept as it is.
const internLimit = 1 << 16

// Interner hands out one copy of each string it has seen, so that records
// whose fields repeat (a million people in a few dozen departments) share
// one copy of each value instead of holding one each. The zero value is
// ready to use; it is not safe for concurrent use.
type Interner struct {
	m map[string]string
}

// Known returns the kept copy of s, keeping one the first time it sees s,
// and false (s as it is) once its table is full and s is not in it.
func (in *Interner) Known(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	if v, ok := in.m[s]; ok {
		return v, true
	}
	if len(in.m) >= internLimit {
		return s, false
	}
	return in.Intern(s), true
}

// Intern returns the kept copy of s, keeping a copy of its own (never a
// part of a larger string) the first time it sees s.
func (in *Interner) Intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in.m[s]; ok {
		return v
	}
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) >= internLimit {
		return s
	}
	s = strings.Clone(s)
	in.m[s] = s
	return s
}

// Shared interns the attributes of people whose values repeat across
// records: names, titles, departments, managers and cost centers, one table
// each. The zero value is ready to use.
type Shared struct {
	fields [7]Interner
}

// Fields interns the repeated attributes in place.
func (s *Shared) Fields(givenName, familyName, displayName, title, department, manager, costCenter *string) {
	for i, f := range [...]*string{givenName, familyName, displayName, title, department, manager, costCenter} {
		*f = s.fields[i].Intern(*f)
	}
}

// FieldsLeft interns the repeated attributes in place, like Fields, and
// appends to left the fields it could not intern (their tables full):
// those are still what the caller passed, for it to copy when they are
// parts of a larger string.
func (s *Shared) FieldsLeft(left []*string, givenName, familyName, displayName, title, department, manager, costCenter *string) []*string {
	for i, f := range [...]*string{givenName, familyName, displayName, title, department, manager, costCenter} {
		v, ok := s.fields[i].Known(*f)
		*f = v
		if !ok {
			left = append(left, f)
		}
	}
	return left
}

// User interns the repeated attributes of u in place.
func (s *Shared) User(u *User) {
	s.Fields(&u.GivenName, &u.FamilyName, &u.DisplayName, &u.Title, &u.Department, &u.Manager, &u.CostCenter)
}
