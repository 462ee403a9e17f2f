package reconcile

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Explanation says, for one person, why the plan treats them as it does:
// their identities and whether each is in scope, where each attribute comes
// from, and what makes them eligible for each pool or not.
type Explanation struct {
	Key string
	// Person is the directory's person with the key, nil when none.
	Person     *Person
	Active     bool
	Identities []ExplainedIdentity
	Attributes []ExplainedAttribute
	Pools      []ExplainedPool
	// Problems are those of the person's users and of the person.
	Problems []Problem
}

// ExplainedIdentity is one user of a source with the person's match key.
type ExplainedIdentity struct {
	Ref    IdentityRef
	Status connectors.Status
	// Scope is "in scope" or why the user is not.
	Scope string
}

// ExplainedAttribute is one merged attribute and where it came from.
type ExplainedAttribute struct {
	Name, Value, Source string
	// Rule is the map expression that made it, "" for the connector's.
	Rule string
}

// ExplainedPool is the person's standing in one pool.
type ExplainedPool struct {
	Name     string
	Eligible bool
	// Undecided: the pool's rule failed on the person (a seat held stays).
	Undecided bool
	// Rule is what makes people eligible.
	Rule string
	// Holds says the person holds a seat after the plan; Place is their
	// place in the waiting list (1 = next), 0 when not waiting.
	Holds          bool
	Place, Waiting int
}

// Explain computes the explanation of the person with match key key, from
// the same Desire and Diff a full run makes. Found is false when neither
// the directory nor any mirror knows the key.
func Explain(r Rules, mirrors map[string]*Mirror, st *State, key string, now time.Time) (ex *Explanation, found bool) {
	d := Desire(r, mirrors, KnownIdentities(st.Identities), nil, now)
	plan := Diff(d, st)
	ex = &Explanation{Key: key}
	for _, p := range st.People {
		if p.Key == key {
			ex.Person = p
		}
	}
	dp := d.People[key]
	if dp != nil {
		ex.Active = dp.Active
	}
	ex.identities(r, mirrors, st)
	if dp != nil {
		ex.attributes(r, mirrors, dp)
	}
	for _, pr := range d.Problems {
		if pr.Object == "person "+key || slices.ContainsFunc(ex.Identities, func(i ExplainedIdentity) bool {
			return i.Ref.Source == pr.Source && "user "+i.Ref.ExternalID == pr.Object
		}) {
			ex.Problems = append(ex.Problems, pr)
		}
	}
	for i, pool := range d.Pools {
		ex.Pools = append(ex.Pools, explainPool(r.Licenses[i], pool, plan, st, d, ex))
	}
	return ex, ex.Person != nil || len(ex.Identities) > 0
}

// identities finds the users of every source with the key and says whether
// each is in scope.
func (ex *Explanation) identities(r Rules, mirrors map[string]*Mirror, st *State) {
	linked := KnownIdentities(st.Identities)
	for _, src := range r.Sources {
		m := mirrors[src.Name]
		if m == nil {
			continue
		}
		scope := inScope(src, m)
		for _, id := range slices.Sorted(maps.Keys(m.Users)) {
			u := m.Users[id]
			scratch := &Desired{}
			mu, ok := scratch.applyUserRules(src, u, linked)
			if !ok {
				mu = u
			}
			if MatchKey(r.MatchOn, mu) != ex.Key {
				continue
			}
			why := "in scope"
			switch {
			case u.Status == connectors.StatusSkip:
				why = "skipped (status)"
			case !ok:
				why = "out of scope (scope.when: " + src.When.Expr + ")"
			case scope != nil && !hasKey(scope, id):
				why = "out of scope (not in scope.groups)"
			}
			ex.Identities = append(ex.Identities, ExplainedIdentity{Ref: IdentityRef{Source: src.Name, ExternalID: id}, Status: u.Status, Scope: why})
		}
	}
}

// attributes says which source (and rule) gave each merged attribute:
// earlier sources win, as in Desire.
func (ex *Explanation) attributes(r Rules, mirrors map[string]*Mirror, dp *DesiredPerson) {
	for _, f := range profileFields {
		a := ExplainedAttribute{Name: f.name, Value: *f.get(&dp.Profile)}
		for _, ref := range dp.Identities {
			src := sourceRules(r, ref.Source)
			u := mirrors[ref.Source].Users[ref.ExternalID]
			mu, _ := (&Desired{}).applyUserRules(src, u, nil)
			if mu == nil {
				mu = u
			}
			if *userField(mu, f.name) != "" {
				a.Source = ref.Source
				if rule := src.Map[f.name]; rule != nil {
					a.Rule = rule.Expr
				}
				break
			}
		}
		ex.Attributes = append(ex.Attributes, a)
	}
}

func sourceRules(r Rules, name string) SourceRules {
	for _, s := range r.Sources {
		if s.Name == name {
			return s
		}
	}
	return SourceRules{Name: name}
}

// explainPool is the person's standing in one pool after the plan.
func explainPool(l LicenseRule, pool DesiredPool, plan *Plan, st *State, d *Desired, ex *Explanation) ExplainedPool {
	ep := ExplainedPool{Name: pool.Name, Rule: RuleLabel(l)}
	ep.Eligible = pool.qualifies(d, ex.Key)
	_, ep.Undecided = pool.Held[ex.Key]
	holders := map[string]bool{}
	for id := range st.Assignments[pool.Name] {
		if p := st.People[id]; p != nil {
			holders[p.Key] = true
		}
	}
	for _, c := range plan.Licenses {
		if c.Pool == pool.Name {
			holders[c.Person.Key] = c.Op == OpGrant
		}
	}
	ep.Holds = holders[ex.Key]
	type waiter struct {
		key, userName string
		firstSeen     time.Time
	}
	var waiting []waiter
	firstSeen := map[string]time.Time{}
	for _, p := range st.People {
		firstSeen[p.Key] = p.FirstSeen.Time()
	}
	pool.eligible(d, func(key string) {
		if holders[key] {
			return
		}
		w := waiter{key: key, userName: d.People[key].UserName, firstSeen: time.Unix(1<<62, 0)}
		if t, ok := firstSeen[key]; ok {
			w.firstSeen = t
		}
		waiting = append(waiting, w)
	})
	slices.SortFunc(waiting, func(a, b waiter) int {
		return cmp.Or(a.firstSeen.Compare(b.firstSeen), cmp.Compare(a.userName, b.userName), cmp.Compare(a.key, b.key))
	})
	ep.Waiting = len(waiting)
	if i := slices.IndexFunc(waiting, func(w waiter) bool { return w.key == ex.Key }); i >= 0 {
		ep.Place = i + 1
	}
	return ep
}

func hasKey(m map[string]struct{}, k string) bool {
	_, ok := m[k]
	return ok
}
