// Package reconcile computes what the learning directory should look like
// from the mirrors of every source and the configured rules, compares that
// with what the directory holds, and applies the difference.
//
// Desire turns mirrors and rules into a desired state; Diff compares it with
// the actual state and returns a sorted Plan. Both are pure: no I/O, no
// logging, no mutation of their inputs. The Engine fetches, plans, checks the
// plan's safety and hands it to a Store that applies it in one transaction.
package reconcile

import (
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/rules"
)

// Profile holds a person's attributes.
type Profile struct {
	UserName       string `json:"user_name"`
	Email          string `json:"email"`
	GivenName      string `json:"given_name"`
	FamilyName     string `json:"family_name"`
	DisplayName    string `json:"display_name"`
	Title          string `json:"title"`
	Department     string `json:"department"`
	EmployeeNumber string `json:"employee_number"`
	Manager        string `json:"manager"`
	CostCenter     string `json:"cost_center"`
}

// profileFields names the attributes of a Profile in a stable order, for
// field-wise merging and for plans.
var profileFields = [...]struct {
	name string
	get  func(*Profile) *string
}{
	{"user_name", func(p *Profile) *string { return &p.UserName }},
	{"email", func(p *Profile) *string { return &p.Email }},
	{"given_name", func(p *Profile) *string { return &p.GivenName }},
	{"family_name", func(p *Profile) *string { return &p.FamilyName }},
	{"display_name", func(p *Profile) *string { return &p.DisplayName }},
	{"title", func(p *Profile) *string { return &p.Title }},
	{"department", func(p *Profile) *string { return &p.Department }},
	{"employee_number", func(p *Profile) *string { return &p.EmployeeNumber }},
	{"manager", func(p *Profile) *string { return &p.Manager }},
	{"cost_center", func(p *Profile) *string { return &p.CostCenter }},
}

// ProfileOf maps a connector user to a profile.
func ProfileOf(u *connectors.User) Profile {
	return Profile{
		UserName: u.UserName, Email: u.Email, GivenName: u.GivenName, FamilyName: u.FamilyName,
		DisplayName: u.DisplayName, Title: u.Title, Department: u.Department,
		EmployeeNumber: u.EmployeeNumber, Manager: u.Manager, CostCenter: u.CostCenter,
	}
}

// IdentityRef names an account of a source.
type IdentityRef struct {
	Source     string `json:"source"`
	ExternalID string `json:"external_id"`
}

// GroupRef names a group of a source.
type GroupRef struct {
	Source     string `json:"source"`
	ExternalID string `json:"external_id"`
}

// Person is a person in the learning directory.
type Person struct {
	ID  int64
	Key string // normalized match key
	Profile
	Active        bool
	FirstSeen     Instant
	DeactivatedAt Instant // zero while active
}

// Instant is a time as Unix nanoseconds, 0 for the zero time: 8 bytes
// where a time.Time takes 24, and a large directory has two a person.
type Instant int64

// InstantOf returns t as an Instant.
func InstantOf(t time.Time) Instant {
	if t.IsZero() {
		return 0
	}
	return Instant(t.UnixNano())
}

// Time returns i as a time in UTC (the zero time for 0).
func (i Instant) Time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i)).UTC()
}

// IsZero reports whether i is the zero time.
func (i Instant) IsZero() bool { return i == 0 }

// Group is a mirrored group in the learning directory.
type Group struct {
	ID          int64
	Ref         GroupRef
	Name        string
	Description string
}

// Pool is a license pool in the directory.
type Pool struct {
	Name    string
	Seats   int
	Waiting int
}

// State is what the learning directory holds.
type State struct {
	People     map[int64]*Person
	Identities map[IdentityRef]int64
	Groups     map[GroupRef]*Group
	// Members maps a group id to its members' person ids, sorted: a slice
	// costs a third of a set, and a large directory has millions.
	Members map[int64][]int64
	Pools   map[string]*Pool
	// Assignments maps a pool name to its holders and when they got the seat.
	Assignments map[string]map[int64]Instant
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		People:      make(map[int64]*Person),
		Identities:  make(map[IdentityRef]int64),
		Groups:      make(map[GroupRef]*Group),
		Members:     make(map[int64][]int64),
		Pools:       make(map[string]*Pool),
		Assignments: make(map[string]map[int64]Instant),
	}
}

// Mirror is the last known state of one source.
type Mirror struct {
	Source string
	Cursor string
	Users  map[string]*connectors.User
	Groups map[string]*connectors.Group
	// Members maps a group's external id to its members' external ids,
	// sorted and without repeats: a slice costs half a set, and a large
	// mirror holds millions. A group without members has no entry.
	Members map[string][]string
	// FullAt is when the last full fetch was stored; FetchedAt the last fetch.
	FullAt    time.Time
	FetchedAt time.Time
}

// NewMirror returns an empty mirror of source.
func NewMirror(source string) *Mirror {
	return &Mirror{
		Source:  source,
		Users:   make(map[string]*connectors.User),
		Groups:  make(map[string]*connectors.Group),
		Members: make(map[string][]string),
	}
}

// Problem is something a run skipped and reported.
type Problem struct {
	Source string `json:"source,omitempty"`
	Object string `json:"object"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	s := p.Object + ": " + p.Reason
	if p.Source != "" {
		s = p.Source + ": " + s
	}
	return s
}

// Rules are the parts of the configuration that decide the desired state.
type Rules struct {
	// Sources in configuration order: earlier ones win attribute conflicts.
	Sources []SourceRules
	// MatchOn is "email" or "user_name".
	MatchOn  string
	Licenses []LicenseRule
	// DeleteAfter deletes people deactivated longer ago; 0 = never.
	DeleteAfter time.Duration
}

// SourceRules are the per-source rules.
type SourceRules struct {
	Name string
	// ScopeGroups limits the source to members of these group names.
	ScopeGroups []string
	// SyncGroups are glob patterns of group names to mirror.
	SyncGroups []string
	// Map maps directory attributes from the raw user (sources[].map);
	// When admits users (sources[].scope.when). See rules.go.
	Map  map[string]*rules.Rule `json:",omitempty"`
	When *rules.Rule            `json:",omitempty"`
}

// LicenseRule fills one pool.
type LicenseRule struct {
	Name      string
	Seats     int // 0 = unlimited
	Groups    []string
	AllActive bool
	// When is the rule over the person (licenses[].when); with Groups or
	// AllActive both must hold.
	When *rules.Rule `json:",omitempty"`
}
