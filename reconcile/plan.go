package reconcile

import (
	"encoding/json"
	"fmt"
)

// Op is what a change does. It is a byte, not a string: a first import
// plans millions of membership changes, and a string would be 16 bytes of
// each. In JSON and text it is its name ("create"); the constants are in
// the order of their names, so that ops compare as their names do.
type Op uint8

// Operations of a plan.
const (
	OpAdd Op = iota + 1
	OpCreate
	OpDeactivate
	OpDelete
	OpGrant
	OpReactivate
	OpRemove
	OpRevoke
	OpUpdate
)

var opNames = [...]string{"", "add", "create", "deactivate", "delete", "grant", "reactivate", "remove", "revoke", "update"}

// String returns the op's name ("" for none).
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// MarshalText writes the op's name.
func (o Op) MarshalText() ([]byte, error) {
	if int(o) >= len(opNames) {
		return nil, fmt.Errorf("unknown op %d", uint8(o))
	}
	return []byte(opNames[o]), nil
}

// UnmarshalText reads an op's name.
func (o *Op) UnmarshalText(b []byte) error {
	for i, name := range opNames {
		if name == string(b) {
			*o = Op(i)
			return nil
		}
	}
	return fmt.Errorf("unknown op %q", b)
}

// PersonRef points at a person: an existing one by ID, a new one by Key.
type PersonRef struct {
	ID  int64  `json:"id,omitempty"`
	Key string `json:"key"`
}

// FieldChange is one attribute that changes.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// PersonChange creates, updates, deactivates, reactivates or deletes a person.
type PersonChange struct {
	Op     Op
	Person PersonRef
	// Profile is the profile after the change (create, update, reactivate).
	Profile Profile
	Link    []IdentityRef
	// Edit is what only a change of an existing person may carry, nil when
	// it carries none of it. It is apart from the rest because a first
	// import plans a million creates and no create has any of it: inline,
	// it would cost 56 bytes a person (docs/PERFORMANCE.md, "Round seven").
	Edit *PersonEdit
}

// PersonEdit is the part of a PersonChange that only a change of an
// existing person has.
type PersonEdit struct {
	// OldKey is the match key before the change, when it changes.
	OldKey string
	// Fields are the attributes that change.
	Fields []FieldChange
	// Unlink are the identities no longer linked to the person.
	Unlink []IdentityRef
}

// NewPersonEdit returns the edit of these parts, or nil when all are empty.
func NewPersonEdit(oldKey string, fields []FieldChange, unlink []IdentityRef) *PersonEdit {
	if oldKey == "" && len(fields) == 0 && len(unlink) == 0 {
		return nil
	}
	return &PersonEdit{OldKey: oldKey, Fields: fields, Unlink: unlink}
}

// OldKey is the match key before the change, "" when it does not change.
func (c *PersonChange) OldKey() string {
	if c.Edit == nil {
		return ""
	}
	return c.Edit.OldKey
}

// Fields are the attributes the change changes (none listed for a create:
// see CreatedFields).
func (c *PersonChange) Fields() []FieldChange {
	if c.Edit == nil {
		return nil
	}
	return c.Edit.Fields
}

// Unlink are the identities the change unlinks from the person.
func (c *PersonChange) Unlink() []IdentityRef {
	if c.Edit == nil {
		return nil
	}
	return c.Edit.Unlink
}

// personChangeJSON is how a PersonChange reads in JSON.
type personChangeJSON struct {
	Op     Op            `json:"op"`
	Person PersonRef     `json:"person"`
	OldKey string        `json:"old_key,omitempty"`
	Fields []FieldChange `json:"fields,omitempty"`
	// Profile is the profile after the change (create, update, reactivate).
	Profile Profile       `json:"profile"`
	Link    []IdentityRef `json:"link,omitempty"`
	Unlink  []IdentityRef `json:"unlink,omitempty"`
}

// MarshalJSON writes the change with its edit's parts in line.
func (c PersonChange) MarshalJSON() ([]byte, error) {
	return json.Marshal(personChangeJSON{Op: c.Op, Person: c.Person, OldKey: c.OldKey(), Fields: c.Fields(),
		Profile: c.Profile, Link: c.Link, Unlink: c.Unlink()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *PersonChange) UnmarshalJSON(b []byte) error {
	var j personChangeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = PersonChange{Op: j.Op, Person: j.Person, Profile: j.Profile, Link: j.Link, Edit: NewPersonEdit(j.OldKey, j.Fields, j.Unlink)}
	return nil
}

// GroupChange creates, updates or deletes a mirrored group.
type GroupChange struct {
	Op          Op            `json:"op"`
	Group       GroupRef      `json:"group"`
	ID          int64         `json:"id,omitempty"`
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Fields      []FieldChange `json:"fields,omitempty"`
}

// MemberGroup names the group of membership changes and what they do (add
// or remove). All the additions to a group share one, and so do all the
// removals: a first import plans five million memberships at 1M people,
// and the plan is held in memory whole (docs/PERFORMANCE.md, "Round six").
type MemberGroup struct {
	Ref  GroupRef
	Name string
	Op   Op
}

// MemberChange adds a person to a group or removes them (Group.Op).
// Person is shared: a person's memberships and seats point at one
// PersonRef (at 1M people, 5M memberships would otherwise hold 5M copies).
type MemberChange struct {
	Group  *MemberGroup
	Person *PersonRef
}

// Op is what the change does: OpAdd or OpRemove.
func (c MemberChange) Op() Op {
	if c.Group == nil {
		return 0
	}
	return c.Group.Op
}

// memberChangeJSON is how a MemberChange reads in JSON.
type memberChangeJSON struct {
	Op        Op        `json:"op"`
	Group     GroupRef  `json:"group"`
	GroupName string    `json:"group_name"`
	Person    PersonRef `json:"person"`
}

// MarshalJSON writes the change with its group's reference and name.
func (c MemberChange) MarshalJSON() ([]byte, error) {
	j := memberChangeJSON{Op: c.Op()}
	if c.Person != nil {
		j.Person = *c.Person
	}
	if c.Group != nil {
		j.Group, j.GroupName = c.Group.Ref, c.Group.Name
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *MemberChange) UnmarshalJSON(b []byte) error {
	var j memberChangeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = MemberChange{Group: &MemberGroup{Ref: j.Group, Name: j.GroupName, Op: j.Op}, Person: &j.Person}
	return nil
}

// LicenseChange grants or revokes a seat of a pool. Person is shared, as a
// MemberChange's is.
type LicenseChange struct {
	Op     Op         `json:"op"`
	Pool   string     `json:"pool"`
	Person *PersonRef `json:"person"`
	Reason string     `json:"reason,omitempty"`
}

// PoolChange creates, updates or deletes a pool record (seats and the
// number of people waiting for a seat).
type PoolChange struct {
	Op         Op     `json:"op"`
	Pool       string `json:"pool"`
	Seats      int    `json:"seats"`
	Assigned   int    `json:"assigned"`
	Waiting    int    `json:"waiting"`
	OldSeats   int    `json:"old_seats"`
	OldWaiting int    `json:"old_waiting"`
}

// Shortfall reports a pool that cannot seat everyone who qualifies.
type Shortfall struct {
	Pool     string `json:"pool"`
	Seats    int    `json:"seats"`
	Assigned int    `json:"assigned"`
	Waiting  int    `json:"waiting"`
	// Next are the first people in line (match keys), in the order they will
	// be served.
	Next []string `json:"next"`
}

// Plan is what a run changes, sorted so that it reads and compares well.
// Its changes share records (a group's MemberGroup, a person's PersonRef):
// a plan is read, never edited in place.
type Plan struct {
	People     []PersonChange  `json:"people"`
	Groups     []GroupChange   `json:"groups"`
	Members    []MemberChange  `json:"members"`
	Licenses   []LicenseChange `json:"licenses"`
	Pools      []PoolChange    `json:"pools"`
	Shortfalls []Shortfall     `json:"shortfalls"`
	// ActiveBefore is the number of active people before the plan, the base
	// of the deactivation safety check.
	ActiveBefore int `json:"active_before"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.People) == 0 && len(p.Groups) == 0 && len(p.Members) == 0 &&
		len(p.Licenses) == 0 && len(p.Pools) == 0
}

// Summary counts a plan's changes by kind.
type Summary struct {
	Create       int `json:"create"`
	Update       int `json:"update"`
	Deactivate   int `json:"deactivate"`
	Reactivate   int `json:"reactivate"`
	Delete       int `json:"delete"`
	GroupsCreate int `json:"groups_create"`
	GroupsUpdate int `json:"groups_update"`
	GroupsDelete int `json:"groups_delete"`
	MembersAdd   int `json:"members_add"`
	MembersDel   int `json:"members_remove"`
	Grant        int `json:"grant"`
	Revoke       int `json:"revoke"`
	Waiting      int `json:"waiting"`
	Total        int `json:"total"`
}

// Summary counts the plan's changes.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.People {
		switch c.Op {
		case OpCreate:
			s.Create++
		case OpUpdate:
			s.Update++
		case OpDeactivate:
			s.Deactivate++
		case OpReactivate:
			s.Reactivate++
		case OpDelete:
			s.Delete++
		}
	}
	for _, c := range p.Groups {
		switch c.Op {
		case OpCreate:
			s.GroupsCreate++
		case OpUpdate:
			s.GroupsUpdate++
		case OpDelete:
			s.GroupsDelete++
		}
	}
	for _, c := range p.Members {
		if c.Op() == OpAdd {
			s.MembersAdd++
		} else {
			s.MembersDel++
		}
	}
	for _, c := range p.Licenses {
		if c.Op == OpGrant {
			s.Grant++
		} else {
			s.Revoke++
		}
	}
	for _, sf := range p.Shortfalls {
		s.Waiting += sf.Waiting
	}
	s.Total = len(p.People) + len(p.Groups) + len(p.Members) + len(p.Licenses) + len(p.Pools)
	return s
}
