package reconcile

import (
	"context"
	"slices"
)

// plan runs Desire and Diff on the scoped input and keeps the part of the
// plan the scope decides exactly. A limited pool is planned as unlimited
// unless it is exact: its grants and revocations are then those of the
// people in scope, which is the full plan's answer as long as nobody has to
// wait; when somebody would, the pool is made exact and planned again.
func (sc *scope) plan(ctx context.Context) (*Plan, string, error) {
	active, held, err := sc.ss.Counts(ctx)
	if err != nil {
		return nil, "", err
	}
	if why := sc.poolsChanged(); why != "" {
		return nil, why, nil
	}
	if why := sc.duplicates(); why != "" {
		return nil, why, nil
	}
	for pass := 0; pass < 3; pass++ {
		rules := sc.c.e.Rules
		rules.Licenses = slices.Clone(rules.Licenses)
		for i, l := range rules.Licenses {
			if !sc.exact[l.Name] {
				rules.Licenses[i].Seats = 0
			}
		}
		if err := sc.ruleGroups(ctx); err != nil {
			return nil, "", err
		}
		desired := Desire(rules, sc.mirrors, KnownIdentities(sc.st.Identities), nil, sc.c.now)
		p := Diff(desired, sc.st)
		var short []string
		for _, l := range sc.c.e.Rules.Licenses {
			if l.Seats == 0 || sc.exact[l.Name] {
				continue
			}
			grants, revokes := 0, 0
			for _, lc := range p.Licenses {
				if lc.Pool != l.Name {
					continue
				}
				if lc.Op == OpGrant {
					grants++
				} else {
					revokes++
				}
			}
			if grants > 0 && held[l.Name]-revokes+grants > l.Seats {
				short = append(short, l.Name)
			}
		}
		if len(short) == 0 {
			sc.c.problems = append(sc.c.problems, desired.Problems...)
			return sc.filter(p, active), "", nil
		}
		for _, name := range short {
			if why, err := sc.makeExact(ctx, name); why != "" || err != nil {
				return nil, why, err
			}
		}
		if why, err := sc.close(ctx); why != "" || err != nil {
			return nil, why, err
		}
	}
	return nil, "pools short of seats", nil
}

// poolsChanged says why the stored pools differ from the configured ones
// (a full reconcile creates, resizes and removes pools), or "".
func (sc *scope) poolsChanged() string {
	configured := map[string]bool{}
	for _, l := range sc.c.e.Rules.Licenses {
		configured[l.Name] = true
		if p := sc.st.Pools[l.Name]; p == nil || p.Seats != l.Seats {
			return "pool " + l.Name + " is new or resized"
		}
	}
	for name := range sc.st.Pools {
		if !configured[name] {
			return "pool " + name + " was removed"
		}
	}
	return ""
}

// duplicates says why the scope holds several users of one source with the
// same match key (which of them counts depends on more than the scope), or
// "".
func (sc *scope) duplicates() string {
	for name, m := range sc.mirrors {
		seen := make(map[string]bool, len(m.Users))
		for _, u := range m.Users {
			if u.Status == "skip" {
				continue
			}
			k := MatchKey(sc.matchOn(), u)
			if k != "" && seen[k] {
				return "source " + name + " has several users with one match key"
			}
			seen[k] = true
		}
	}
	return ""
}

// filter keeps the plan's changes of the groups in scope and the records of
// the exact pools; every person's change is exact by the closure.
func (sc *scope) filter(p *Plan, active int) *Plan {
	out := &Plan{People: p.People, Licenses: p.Licenses, ActiveBefore: active}
	for _, g := range p.Groups {
		if sc.groups[g.Group] {
			out.Groups = append(out.Groups, g)
		}
	}
	for _, m := range p.Members {
		if sc.groups[m.Group.Ref] {
			out.Members = append(out.Members, m)
		}
	}
	for _, pc := range p.Pools {
		if sc.exact[pc.Pool] {
			out.Pools = append(out.Pools, pc)
		}
	}
	for _, sf := range p.Shortfalls {
		if sc.exact[sf.Pool] {
			out.Shortfalls = append(out.Shortfalls, sf)
		}
	}
	return out
}
