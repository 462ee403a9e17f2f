package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/rules"
)

// The rules as expressions (package rules): a source's map and scope.when
// run over each mirrored user's raw attributes (User.Attrs) before the user
// is matched; a license's when runs over each merged active person. An
// expression that fails on one user decides nothing: the mapping keeps the
// connector's value, the scope keeps the identity as the directory has it
// (linked: in scope; new: skipped), the license keeps a seat held and
// grants none. Each failure is a Problem of the run.

// applyUserRules returns the user as the source's rules map it, and whether
// the rules keep it in scope. Without rules it returns u itself.
func (d *Desired) applyUserRules(src SourceRules, u *connectors.User, linked func(IdentityRef) bool) (*connectors.User, bool) {
	if src.When == nil && len(src.Map) == 0 {
		return u, true
	}
	obj := "user " + u.ExternalID
	attrs, err := rules.ParseAttrs(u.Attrs)
	if err != nil {
		d.Problems = append(d.Problems, Problem{Source: src.Name, Object: obj, Reason: err.Error() + ": rules skipped"})
		attrs = map[string]any{}
	}
	if src.When != nil {
		in, err := src.When.UserBool(attrs)
		switch {
		case err != nil:
			known := linked != nil && linked(IdentityRef{Source: src.Name, ExternalID: u.ExternalID})
			what := "skipped"
			if known {
				what = "kept in scope"
			}
			d.Problems = append(d.Problems, Problem{Source: src.Name, Object: obj, Reason: "scope.when: " + err.Error() + ": " + what})
			if !known {
				return nil, false
			}
		case !in:
			return nil, false
		}
	}
	if len(src.Map) == 0 {
		return u, true
	}
	mapped := *u
	for _, f := range profileFields {
		r := src.Map[f.name]
		if r == nil {
			continue
		}
		v, err := r.UserString(attrs)
		if err != nil {
			d.Problems = append(d.Problems, Problem{Source: src.Name, Object: obj, Reason: "map." + f.name + ": " + err.Error() + ": connector's value kept"})
			continue
		}
		*userField(&mapped, f.name) = v
	}
	return &mapped, true
}

// userField returns the field of a connector user for a directory
// attribute name.
func userField(u *connectors.User, name string) *string {
	switch name {
	case "user_name":
		return &u.UserName
	case "email":
		return &u.Email
	case "given_name":
		return &u.GivenName
	case "family_name":
		return &u.FamilyName
	case "display_name":
		return &u.DisplayName
	case "title":
		return &u.Title
	case "department":
		return &u.Department
	case "employee_number":
		return &u.EmployeeNumber
	case "manager":
		return &u.Manager
	}
	return &u.CostCenter
}

// ruleInput is what the license rules of one Desire read, built once:
// each person as a rule sees them, with their groups when a rule reads
// person.groups.
type ruleInput struct {
	groups  map[string][]string
	persons map[string]*rules.Person
}

func newRuleInput(r Rules, mirrors map[string]*Mirror, active map[string]map[string]string) *ruleInput {
	return &ruleInput{groups: personGroups(r, mirrors, active), persons: map[string]*rules.Person{}}
}

// person returns the rules' view of the desired person with key.
func (ri *ruleInput) person(key string, p *DesiredPerson) *rules.Person {
	rp := ri.persons[key]
	if rp == nil {
		rp = RulePerson(p, ri.groups[key])
		ri.persons[key] = rp
	}
	return rp
}

// personGroups returns, when a license rule reads person.groups, the groups
// ("source/name", sorted) of each active person by match key: every group
// of the mirrors an active identity is a member of, mirrored or not.
func personGroups(r Rules, mirrors map[string]*Mirror, active map[string]map[string]string) map[string][]string {
	reads := false
	for _, l := range r.Licenses {
		reads = reads || l.When.ReadsGroups()
	}
	if !reads {
		return nil
	}
	out := map[string][]string{}
	for _, src := range r.Sources {
		m := mirrors[src.Name]
		if m == nil {
			continue
		}
		for gid, g := range m.Groups {
			for _, uid := range m.Members[gid] {
				if key, ok := active[src.Name][uid]; ok {
					out[key] = append(out[key], src.Name+"/"+g.Name)
				}
			}
		}
	}
	for k, gs := range out {
		slices.Sort(gs)
		out[k] = slices.Compact(gs)
	}
	return out
}

// RulePerson is what a license rule sees of a desired person.
func RulePerson(p *DesiredPerson, groups []string) *rules.Person {
	rp := &rules.Person{
		UserName: p.UserName, Email: p.Email, GivenName: p.GivenName, FamilyName: p.FamilyName,
		DisplayName: p.DisplayName, Title: p.Title, Department: p.Department, EmployeeNumber: p.EmployeeNumber,
		Manager: p.Manager, CostCenter: p.CostCenter, Groups: groups,
	}
	if rp.Groups == nil {
		rp.Groups = []string{}
	}
	for _, id := range p.Identities {
		if !slices.Contains(rp.Sources, id.Source) {
			rp.Sources = append(rp.Sources, id.Source)
		}
	}
	return rp
}

// applyWhen keeps of a pool's eligible people those its when rule admits.
func (d *Desired) applyWhen(pool *DesiredPool, l LicenseRule, ri *ruleInput) {
	if l.When == nil {
		return
	}
	pool.Rule = RuleLabel(l)
	for key := range pool.Eligible {
		ok, err := l.When.PersonBool(ri.person(key, d.People[key]))
		if err == nil && ok {
			continue
		}
		delete(pool.Eligible, key)
		if err != nil {
			if pool.Held == nil {
				pool.Held = map[string]struct{}{}
			}
			pool.Held[key] = struct{}{}
			d.Problems = append(d.Problems, Problem{Object: "person " + key, Reason: "licenses " + l.Name + " when: " + err.Error() + ": seat kept as it is"})
		}
	}
}

// RuleLabel says what makes people eligible for a license.
func RuleLabel(l LicenseRule) string {
	var parts []string
	if l.AllActive {
		parts = append(parts, "all_active")
	}
	if len(l.Groups) > 0 {
		parts = append(parts, "groups: "+strings.Join(l.Groups, ", "))
	}
	if l.When != nil {
		parts = append(parts, "when: "+l.When.Expr)
	}
	return strings.Join(parts, " and ")
}

// mapsMatchAttribute names a source whose map sets the attribute people
// are matched on, or "": the incremental scope finds people by the
// connector's value, so such a source is reconciled fully.
func mapsMatchAttribute(r Rules) string {
	for _, s := range r.Sources {
		if s.Map[r.MatchOn] != nil {
			return s.Name
		}
	}
	return ""
}

// held counts the people a pool's rule could not decide for among those
// who qualify: a seat they hold stays (keptSeats), and, not being
// candidates, they are granted none.
func (df *differ) held(pool DesiredPool, ids *idFlags) {
	for key := range pool.Held {
		if t, ok := df.targetOf(key); ok && t.ID != 0 {
			ids.add(t.ID)
		}
	}
}

// ruleGroups reads, when a license rule reads person.groups, every group of
// the users in scope, so that their groups are exact. The plan keeps only
// the changes of the groups in scope (filter): the others are read for
// the rules, not planned.
func (sc *scope) ruleGroups(ctx context.Context) error {
	reads := false
	for _, l := range sc.c.e.Rules.Licenses {
		reads = reads || l.When.ReadsGroups()
	}
	if !reads {
		return nil
	}
	if sc.grouped == nil {
		sc.grouped = map[IdentityRef]bool{}
	}
	for _, name := range sortedKeys(sc.mirrors) {
		m := sc.mirrors[name]
		var users []string
		for id := range m.Users {
			if ref := (IdentityRef{Source: name, ExternalID: id}); !sc.grouped[ref] {
				sc.grouped[ref] = true
				users = append(users, id)
			}
		}
		if len(users) == 0 {
			continue
		}
		slices.Sort(users)
		with, err := sc.ss.MirrorGroupsWith(ctx, name, users)
		if err != nil {
			return err
		}
		if err := sc.merge(ctx, name, nil, with); err != nil {
			return err
		}
	}
	return nil
}

// refetchForRules fetches fully, in a run whose rules changed, the sources
// whose rules read raw attributes: their mirrors keep only what the old
// rules read, and a delta would bring the new ones only for the users it
// names.
func (c *cycle) refetchForRules() {
	fetch := maps.Clone(c.opts.Fetch)
	for _, src := range c.e.Sources {
		r := src.Rules
		if r.When == nil && len(r.Map) == 0 {
			continue
		}
		if fetch == nil {
			fetch = map[string]FetchMode{}
		}
		if fetch[r.Name] == FetchAuto {
			fetch[r.Name] = FetchFull
		}
	}
	c.opts.Fetch = fetch
}

// whenOnly reports a pool that only a when rule fills: anyone may be
// eligible, so, like all_active, its waiting list is planned fully.
func whenOnly(l LicenseRule) bool { return l.When != nil && len(l.Groups) == 0 }

// whenMoved reports whether a source's scope.when decides differently for
// the old and the new row of a user (a failure counts as a change): their
// memberships may change, as when their status does.
func (sc *scope) whenMoved(source string, o, n *connectors.User) bool {
	if o == nil || n == nil || o.Attrs == n.Attrs {
		return false
	}
	for _, src := range sc.c.e.Rules.Sources {
		if src.Name != source || src.When == nil {
			continue
		}
		decide := func(u *connectors.User) string {
			attrs, err := rules.ParseAttrs(u.Attrs)
			if err != nil {
				return "error"
			}
			in, err := src.When.UserBool(attrs)
			if err != nil {
				return "error"
			}
			return fmt.Sprint(in)
		}
		return decide(o) != decide(n) || decide(n) == "error"
	}
	return false
}
