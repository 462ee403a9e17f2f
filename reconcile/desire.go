package reconcile

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Desired is the state the directory should have, computed from the mirrors.
type Desired struct {
	// People by match key.
	People map[string]*DesiredPerson
	Groups map[GroupRef]*DesiredGroup
	Pools  []DesiredPool
	// Frozen names the sources whose last fetch failed, with the reason.
	// People with an identity in a frozen source lose nothing in this run.
	Frozen map[string]string
	// DeleteBefore: inactive people deactivated before this are deleted.
	// Zero means never.
	DeleteBefore time.Time
	// Problems are records skipped while computing the desired state.
	Problems []Problem
}

// DesiredPerson is one person as the sources describe them.
type DesiredPerson struct {
	Key string
	Profile
	Active bool
	// Identities in source order.
	Identities []IdentityRef
}

// DesiredGroup is a group to mirror and its members' match keys (sorted).
type DesiredGroup struct {
	Ref         GroupRef
	Name        string
	Description string
	Members     []string
}

// DesiredPool is a license pool with the match keys of the people who
// qualify for it (active people only).
type DesiredPool struct {
	Name  string
	Seats int
	// AllActive says every active person qualifies: Eligible is then nil
	// rather than a set of the whole directory.
	AllActive bool
	Eligible  map[string]struct{}
	// Held are the people a rule could not decide for (an evaluation
	// error): they keep a seat they hold and get none. Nil when none.
	Held map[string]struct{}
	// Rule says, for a pool with a when rule, what makes people eligible
	// (the reason of its grants and revocations); "" otherwise.
	Rule string
}

// qualifies reports whether the person with key qualifies for the pool.
func (p *DesiredPool) qualifies(d *Desired, key string) bool {
	if p.AllActive {
		dp, ok := d.People[key]
		return ok && dp.Active
	}
	_, ok := p.Eligible[key]
	return ok
}

// eligible calls fn with the key of everyone who qualifies for the pool.
func (p *DesiredPool) eligible(d *Desired, fn func(key string)) {
	if !p.AllActive {
		for key := range p.Eligible {
			fn(key)
		}
		return
	}
	for key, dp := range d.People {
		if dp.Active {
			fn(key)
		}
	}
}

// KnownIdentities returns the linked func of Desire for the identities of a
// state: it reports whether the directory links an identity to a person.
func KnownIdentities(identities map[IdentityRef]int64) func(IdentityRef) bool {
	return func(ref IdentityRef) bool {
		_, ok := identities[ref]
		return ok
	}
}

// MatchKey normalizes the attribute people are matched on.
func MatchKey(matchOn string, u *connectors.User) string {
	v := u.Email
	if matchOn == "user_name" {
		v = u.UserName
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// Desire computes the desired state from the mirrors (keyed by source name)
// and the rules. linked says which identities the directory already knows:
// when one source has several users with the same match key, the one already
// linked wins. frozen names sources whose fetch failed. It mutates nothing.
func Desire(rules Rules, mirrors map[string]*Mirror, linked func(IdentityRef) bool, frozen map[string]string, now time.Time) *Desired {
	n := 0
	for _, src := range rules.Sources {
		if m := mirrors[src.Name]; m != nil {
			n = max(n, len(m.Users))
		}
	}
	d := &Desired{
		// Sized for the largest source: a million people grown by doubling
		// would leave as much garbage as the map itself, in a phase with no
		// collection.
		People: make(map[string]*DesiredPerson, n),
		Groups: make(map[GroupRef]*DesiredGroup),
		Frozen: frozen,
	}
	if d.Frozen == nil {
		d.Frozen = map[string]string{}
	}
	if rules.DeleteAfter > 0 {
		d.DeleteBefore = now.Add(-rules.DeleteAfter)
	}
	// keys[source][external id] = match key of an in-scope, active identity.
	activeKeys := make(map[string]map[string]string, len(rules.Sources))
	for _, src := range rules.Sources {
		m := mirrors[src.Name]
		if m == nil {
			continue
		}
		activeKeys[src.Name] = d.addSource(rules.MatchOn, src, m, linked)
	}
	for _, src := range rules.Sources {
		m := mirrors[src.Name]
		if m == nil {
			continue
		}
		d.addGroups(src, m, activeKeys[src.Name])
	}
	d.addPools(rules, mirrors, activeKeys)
	slices.SortFunc(d.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Reason, b.Reason))
	})
	return d
}

// inScope returns the external ids of the users a source's scope admits, or
// nil when the source has no scope.
func inScope(src SourceRules, m *Mirror) map[string]struct{} {
	if len(src.ScopeGroups) == 0 {
		return nil
	}
	ok := make(map[string]struct{})
	for gid, g := range m.Groups {
		if !slices.Contains(src.ScopeGroups, g.Name) {
			continue
		}
		for _, uid := range m.Members[gid] {
			ok[uid] = struct{}{}
		}
	}
	return ok
}

func (d *Desired) addSource(matchOn string, src SourceRules, m *Mirror, linked func(IdentityRef) bool) map[string]string {
	scope := inScope(src, m)
	// byKey holds the one user of a key; dups the keys several users share,
	// which are few: a slice per key would cost a small allocation a user.
	byKey := make(map[string]*connectors.User, len(m.Users))
	dups := make(map[string][]*connectors.User)
	for _, u := range m.Users {
		switch u.Status {
		case connectors.StatusSkip:
			continue
		case connectors.StatusActive, connectors.StatusInactive:
		default:
			d.Problems = append(d.Problems, Problem{Source: src.Name, Object: "user " + u.ExternalID, Reason: fmt.Sprintf("unknown status %q: skipped", u.Status)})
			continue
		}
		u, ok := d.applyUserRules(src, u, linked)
		if !ok {
			continue
		}
		if scope != nil {
			if _, ok := scope[u.ExternalID]; !ok {
				continue
			}
		}
		if !validID(u.ExternalID) {
			d.Problems = append(d.Problems, Problem{Source: src.Name, Object: fmt.Sprintf("user %.64q", u.ExternalID),
				Reason: "external id is empty, too long, not UTF-8 or has control characters: skipped"})
			continue
		}
		raw := u.Email
		if matchOn == "user_name" {
			raw = u.UserName
		}
		if _, what := cleanText(raw); what != "" {
			d.Problems = append(d.Problems, Problem{Source: src.Name, Object: "user " + u.ExternalID,
				Reason: fmt.Sprintf("%s to match on is not usable (%s): skipped", matchLabel(matchOn), what)})
			continue
		}
		key := MatchKey(matchOn, u)
		if key == "" {
			field := "email"
			if matchOn == "user_name" {
				field = "user name"
			}
			d.Problems = append(d.Problems, Problem{Source: src.Name, Object: "user " + u.ExternalID, Reason: "no " + field + " to match on: skipped"})
			continue
		}
		if first, ok := byKey[key]; !ok {
			byKey[key] = u
		} else {
			if dups[key] == nil {
				dups[key] = []*connectors.User{first}
			}
			dups[key] = append(dups[key], u)
		}
	}
	active := make(map[string]string, len(byKey))
	for key, u := range byKey {
		if users := dups[key]; len(users) > 1 {
			u = pickDuplicate(src.Name, users, linked)
			for _, o := range users {
				if o != u {
					d.Problems = append(d.Problems, Problem{Source: src.Name, Object: "user " + o.ExternalID,
						Reason: fmt.Sprintf("same %s %q as user %s of this source: skipped", matchLabel(matchOn), key, u.ExternalID)})
				}
			}
		}
		p := d.People[key]
		if p == nil {
			// Cleaned in place: a profile apart would escape to the heap.
			p = &DesiredPerson{Key: key, Profile: ProfileOf(u)}
			d.addFixes(src.Name, u, cleanProfile(&p.Profile))
			d.People[key] = p
		} else {
			prof := ProfileOf(u)
			d.addFixes(src.Name, u, cleanProfile(&prof))
			// Earlier sources win: only fill what they left empty.
			for _, f := range profileFields {
				if dst := f.get(&p.Profile); *dst == "" {
					*dst = *f.get(&prof)
				}
			}
		}
		p.Identities = append(p.Identities, IdentityRef{Source: src.Name, ExternalID: u.ExternalID})
		if u.Status == connectors.StatusActive {
			p.Active = true
			active[u.ExternalID] = key
		}
	}
	return active
}

// addFixes reports what cleaning a user's profile changed.
func (d *Desired) addFixes(source string, u *connectors.User, fixes []string) {
	for _, fix := range fixes {
		d.Problems = append(d.Problems, Problem{Source: source, Object: "user " + u.ExternalID, Reason: fix})
	}
}

func matchLabel(matchOn string) string {
	if matchOn == "user_name" {
		return "user name"
	}
	return "email"
}

// pickDuplicate chooses which of several users of one source with the same
// match key counts: the one the directory already links, else an active one,
// else the smallest external id. The choice is stable from run to run.
func pickDuplicate(source string, users []*connectors.User, linked func(IdentityRef) bool) *connectors.User {
	rank := func(u *connectors.User) int {
		r := 0
		if linked != nil && linked(IdentityRef{source, u.ExternalID}) {
			r -= 2
		}
		if u.Status == connectors.StatusActive {
			r--
		}
		return r
	}
	return slices.MinFunc(users, func(a, b *connectors.User) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.ExternalID, b.ExternalID))
	})
}

func syncs(src SourceRules, name string) bool {
	for _, pat := range src.SyncGroups {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// addGroups mirrors the groups that sync_groups selects. Members are the
// active people whose identity in this source is active.
func (d *Desired) addGroups(src SourceRules, m *Mirror, active map[string]string) {
	for gid, g := range m.Groups {
		if !syncs(src, g.Name) {
			continue
		}
		if !validID(gid) {
			d.Problems = append(d.Problems, Problem{Source: src.Name, Object: fmt.Sprintf("group %.64q", gid),
				Reason: "external id is empty, too long, not UTF-8 or has control characters: skipped"})
			continue
		}
		ref := GroupRef{Source: src.Name, ExternalID: gid}
		name, whatName := cleanText(g.Name)
		desc, whatDesc := cleanMultiline(g.Description)
		for _, fix := range []string{whatName, whatDesc} {
			if fix != "" {
				d.Problems = append(d.Problems, Problem{Source: src.Name, Object: "group " + gid, Reason: fix})
			}
		}
		dg := &DesiredGroup{Ref: ref, Name: name, Description: desc}
		if n := len(m.Members[gid]); n > 0 {
			dg.Members = make([]string, 0, n)
		}
		for _, uid := range m.Members[gid] {
			if key, ok := active[uid]; ok {
				dg.Members = append(dg.Members, key)
			}
		}
		slices.Sort(dg.Members)
		dg.Members = slices.Clip(slices.Compact(dg.Members))
		if len(dg.Members) == 0 {
			dg.Members = nil // as when grown by appends
		}
		d.Groups[ref] = dg
	}
}

// addPools finds who qualifies for each license. A group reference is
// "source/name" when the part before the first slash names a source, else a
// bare group name matched in every source. Groups count whether or not they
// are mirrored (sync_groups only decides what is shown).
func (d *Desired) addPools(rules Rules, mirrors map[string]*Mirror, active map[string]map[string]string) {
	sources := make(map[string]bool, len(rules.Sources))
	for _, s := range rules.Sources {
		sources[s.Name] = true
	}
	ri := newRuleInput(rules, mirrors, active)
	for _, l := range rules.Licenses {
		if l.AllActive && l.When == nil {
			d.Pools = append(d.Pools, DesiredPool{Name: l.Name, Seats: l.Seats, AllActive: true})
			continue
		}
		pool := DesiredPool{Name: l.Name, Seats: l.Seats, Eligible: make(map[string]struct{})}
		if l.AllActive || (l.When != nil && len(l.Groups) == 0) {
			for key, p := range d.People {
				if p.Active {
					pool.Eligible[key] = struct{}{}
				}
			}
			d.applyWhen(&pool, l, ri)
			d.Pools = append(d.Pools, pool)
			continue
		}
		for _, ref := range l.Groups {
			srcName, name, qualified := strings.Cut(ref, "/")
			if !qualified || !sources[srcName] {
				srcName, name = "", ref
			}
			for _, src := range rules.Sources {
				if srcName != "" && src.Name != srcName {
					continue
				}
				m := mirrors[src.Name]
				if m == nil {
					continue
				}
				for gid, g := range m.Groups {
					if g.Name != name {
						continue
					}
					for _, uid := range m.Members[gid] {
						if key, ok := active[src.Name][uid]; ok {
							pool.Eligible[key] = struct{}{}
						}
					}
				}
			}
		}
		d.applyWhen(&pool, l, ri)
		d.Pools = append(d.Pools, pool)
	}
}
