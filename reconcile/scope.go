package reconcile

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/learnsync/learnsync/connectors"
)

// scope is the scoped input of an incremental run: partial mirrors and a
// partial state that hold everything the plan of the affected people,
// groups and pools depends on.
type scope struct {
	c  *cycle
	ss ScopedStore
	// mirrors are partial: the touched rows (updated by the fetches) and the
	// rows the closure read.
	mirrors map[string]*Mirror
	// touched are the users each fetch named: their rows in mirrors are the
	// truth, whatever the store holds.
	touched map[string]map[string]bool
	// touchedGroups are the groups each fetch named, likewise.
	touchedGroups map[string]map[string]bool
	// changed says some fetch changed a row or a cursor.
	changed bool
	// runs are the source records of the fetches, by source.
	runs map[string]SourceRun

	// groups are the groups whose memberships the run plans.
	groups map[GroupRef]bool
	keys   map[string]bool
	st     *State
	// exact are the pools planned whole: everyone eligible is in scope.
	exact map[string]bool

	pendingKeys  []string
	pendingRefs  []IdentityRef
	pendingIDs   []int64
	pendingUsers map[string][]string
	// grouped are the users whose groups ruleGroups read.
	grouped map[IdentityRef]bool
	// rescoped are, by source, the users that joined or left one of the
	// source's scope groups: whether the source describes them at all may
	// change, and with it all their memberships.
	rescoped map[string][]string
}

func newScope(c *cycle, ss ScopedStore) *scope {
	return &scope{
		c: c, ss: ss, mirrors: map[string]*Mirror{}, touched: map[string]map[string]bool{}, runs: map[string]SourceRun{},
		touchedGroups: map[string]map[string]bool{},
		groups:        map[GroupRef]bool{}, keys: map[string]bool{}, st: NewState(), exact: map[string]bool{},
		pendingUsers: map[string][]string{}, rescoped: map[string][]string{},
	}
}

// maxScopeShare: a scope holding more of the directory than this share is
// planned fully (a full reconcile reads faster than many small queries).
const maxScopeShare = 0.3

func (sc *scope) matchOn() string { return sc.c.e.Rules.MatchOn }

func (sc *scope) addKey(k string) {
	if k != "" && !sc.keys[k] {
		sc.keys[k] = true
		sc.pendingKeys = append(sc.pendingKeys, k)
	}
}

func (sc *scope) addID(id int64) {
	if _, ok := sc.st.People[id]; !ok {
		sc.pendingIDs = append(sc.pendingIDs, id)
	}
}

// addUser asks for a mirror user to be read, unless it is already held.
func (sc *scope) addUser(source, id string) {
	m := sc.mirrors[source]
	if m == nil || sc.touched[source][id] {
		return
	}
	if _, ok := m.Users[id]; !ok {
		sc.pendingUsers[source] = append(sc.pendingUsers[source], id)
	}
}

// addSource applies one fetch to the partial mirror of its source.
func (sc *scope) addSource(ctx context.Context, src Source, f fetched) (string, error) {
	name := src.Rules.Name
	if ch := sc.c.pushed[name]; ch != nil && f.mode == "" {
		return sc.addPushed(ctx, name, ch)
	}
	if f.mode == "" {
		m, err := sc.ss.MirrorPart(ctx, name, nil, nil)
		if m != nil {
			sc.mirrors[name] = m
		}
		sc.runs[name] = SourceRun{Name: name, Result: SourceUnchanged}
		return "", err
	}
	r, full := f.result, f.result.Full
	if full {
		if !readsWhole(src.Connector) {
			return "full fetch of " + name, nil
		}
		var err error
		r, err = f.delta, f.deltaErr
		if r == nil && err == nil {
			r, _, err = snapshotDelta(ctx, sc.ss, name, f.result, nil)
		}
		if err != nil {
			return "", err
		}
	}
	users, groups := touchedIDs(r)
	if len(r.DeletedUsers) > 0 {
		with, err := sc.ss.MirrorGroupsWith(ctx, name, r.DeletedUsers)
		if err != nil {
			return "", err
		}
		for _, g := range with {
			groups[g] = true
		}
	}
	m, err := sc.ss.MirrorPart(ctx, name, slices.Collect(maps.Keys(users)), slices.Collect(maps.Keys(groups)))
	if err != nil {
		return "", err
	}
	if m == nil {
		return "no mirror of " + name, nil
	}
	cursor, old := m.Cursor, maps.Clone(m.Users)
	// The members a group loses lose what it gave them: they are in scope.
	for _, set := range m.Members {
		for _, uid := range set {
			sc.pendingUsers[name] = append(sc.pendingUsers[name], uid)
		}
	}
	before := scopeMembers(src.Rules, m)
	d := m.Update(r, sc.c.now)
	sc.rescoped[name] = scopeChanged(before, scopeMembers(src.Rules, m))
	if full {
		d.Full, m.FullAt = true, sc.c.now
	}
	sc.mirrors[name], sc.touched[name], sc.touchedGroups[name] = m, users, maps.Clone(groups)
	if d.Rows() > 0 || d.Cursor != cursor || full {
		sc.changed = true
		sc.c.deltas = append(sc.c.deltas, d)
	}
	sr := SourceRun{Name: name, Mode: f.mode, Duration: f.took, Result: SourceOK, Rows: d.Rows(), Requests: f.result.Requests, Problems: len(f.result.Problems)}
	sc.runs[name] = sr
	for _, p := range f.result.Problems {
		sc.c.problems = append(sc.c.problems, Problem{Source: name, Object: p.Object, Reason: p.Reason})
	}
	return "", sc.touch(ctx, name, users, groups, old)
}

// addPushed puts in scope what the pushes to a source changed since the
// last applied run, as addSource does a fetched delta. The pushes wrote the
// mirror already: its rows are the new side. The old side is the
// directory's: the people linked to the users (their match keys), the
// members of the groups, and the members the groups lost, which the change
// log names. The groups of every user it names are in scope.
func (sc *scope) addPushed(ctx context.Context, name string, ch *MirrorChanges) (string, error) {
	m, err := sc.ss.MirrorPart(ctx, name, ch.Users, ch.Groups)
	if err != nil {
		return "", err
	}
	if m == nil {
		return "no mirror of " + name, nil
	}
	users, groups := map[string]bool{}, map[string]bool{}
	for _, id := range ch.Users {
		users[id] = true
	}
	for _, id := range ch.Groups {
		groups[id] = true
	}
	sc.mirrors[name], sc.touched[name], sc.touchedGroups[name] = m, users, maps.Clone(groups)
	sc.changed = true
	sc.runs[name] = SourceRun{Name: name, Result: SourceUnchanged} // not fetched, as in a full run
	if src := sc.sourceRules(name); len(src.ScopeGroups) > 0 {
		// The old names of the groups are gone: any of them may have been
		// a scope group. The members they lost are in the log's users.
		moved := map[string]bool{}
		for _, gid := range ch.Groups {
			for _, uid := range m.Members[gid] {
				moved[uid] = true
			}
		}
		sc.rescoped[name] = slices.Sorted(maps.Keys(moved))
	}
	// No old rows: every user that exists counts as moved, so that all its
	// groups are in scope; a deleted user's groups are in the log.
	return "", sc.touch(ctx, name, users, groups, nil)
}

// touch puts what a fetch touched in scope: the old and new match keys of
// its users, and every group whose memberships may change: the touched
// groups and those of users whose match key or status changed.
func (sc *scope) touch(ctx context.Context, name string, users, groups map[string]bool, old map[string]*connectors.User) error {
	m := sc.mirrors[name]
	moved := slices.Clone(sc.rescoped[name])
	for _, id := range moved {
		sc.addUser(name, id)
	}
	for id := range users {
		o, n := old[id], m.Users[id]
		for _, u := range []*connectors.User{o, n} {
			if u != nil {
				sc.addKey(MatchKey(sc.matchOn(), u))
			}
		}
		sc.pendingRefs = append(sc.pendingRefs, IdentityRef{Source: name, ExternalID: id})
		if (signature(sc.matchOn(), o) != signature(sc.matchOn(), n) || sc.whenMoved(name, o, n)) && !slices.Contains(sc.rescoped[name], id) {
			moved = append(moved, id)
		}
	}
	if len(moved) > 0 {
		with, err := sc.ss.MirrorGroupsWith(ctx, name, moved)
		if err != nil {
			return err
		}
		var load []string
		for _, g := range with {
			if _, ok := m.Groups[g]; !ok && !groups[g] {
				load = append(load, g)
			}
			groups[g] = true
		}
		if err := sc.merge(ctx, name, nil, load); err != nil {
			return err
		}
	}
	for g := range groups {
		sc.groups[GroupRef{Source: name, ExternalID: g}] = true
		for _, uid := range m.Members[g] {
			sc.addUser(name, uid)
		}
	}
	return nil
}

// merge reads mirror rows into the partial mirror of a source; rows it
// holds already stay as they are.
func (sc *scope) merge(ctx context.Context, source string, users, groups []string) error {
	if len(users) == 0 && len(groups) == 0 {
		return nil
	}
	part, err := sc.ss.MirrorPart(ctx, source, users, groups)
	if err != nil || part == nil {
		return err
	}
	m := sc.mirrors[source]
	for id, u := range part.Users {
		if _, ok := m.Users[id]; !ok && !sc.touched[source][id] {
			m.Users[id] = u
			sc.addKey(MatchKey(sc.matchOn(), u))
			sc.pendingRefs = append(sc.pendingRefs, IdentityRef{Source: source, ExternalID: id})
		}
	}
	for id, g := range part.Groups {
		if _, ok := m.Groups[id]; !ok && !sc.touchedGroups[source][id] {
			m.Groups[id] = g
			if mem := part.Members[id]; mem != nil {
				m.Members[id] = mem
			}
		}
	}
	return nil
}

// deleteDue returns the people whose delete_after period is over.
func (sc *scope) deleteDue(ctx context.Context) ([]int64, error) {
	if sc.c.e.Rules.DeleteAfter <= 0 {
		return nil, nil
	}
	return sc.ss.DeleteDue(ctx, sc.c.now.Add(-sc.c.e.Rules.DeleteAfter))
}

// build completes the scope: the pool groups, the directory's side of
// the scoped groups, then the closure over match keys, identities and
// people.
func (sc *scope) build(ctx context.Context, due []int64) (string, error) {
	for _, id := range due {
		sc.addID(id)
	}
	if err := sc.poolGroups(ctx); err != nil {
		return "", err
	}
	if err := sc.scopeGroups(ctx); err != nil {
		return "", err
	}
	refs := sortedSet(sc.groups, compareGroupRef)
	if err := sc.ss.LoadScope(ctx, refs, sc.st); err != nil {
		return "", err
	}
	for _, g := range sc.st.Groups {
		for _, id := range sc.st.Members[g.ID] {
			sc.addID(id)
		}
	}
	for name, p := range sc.st.Pools {
		if p.Waiting > 0 {
			if why, err := sc.makeExact(ctx, name); why != "" || err != nil {
				return why, err
			}
		}
	}
	return sc.close(ctx)
}

func compareGroupRef(a, b GroupRef) int {
	return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.ExternalID, b.ExternalID))
}

// poolGroups reads the groups license rules name, with their members, so
// that the eligibility of everyone in scope is exact.
func (sc *scope) poolGroups(ctx context.Context) error {
	var names []string
	for _, l := range sc.c.e.Rules.Licenses {
		for _, ref := range l.Groups {
			names = append(names, ref)
			if _, name, ok := strings.Cut(ref, "/"); ok {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	named, err := sc.ss.MirrorGroupsNamed(ctx, names)
	if err != nil {
		return err
	}
	for _, src := range sortedKeys(named) {
		if sc.mirrors[src] != nil {
			if err := sc.merge(ctx, src, nil, named[src]); err != nil {
				return err
			}
		}
	}
	return nil
}

// sourceRules returns the rules of a source by name.
func (sc *scope) sourceRules(name string) SourceRules {
	for _, src := range sc.c.e.Rules.Sources {
		if src.Name == name {
			return src
		}
	}
	return SourceRules{}
}

// scopeGroups reads the scope groups of the sources that have them, with
// their members, so that who is in a source's scope is exact for every
// user in the scope of the run.
func (sc *scope) scopeGroups(ctx context.Context) error {
	for _, src := range sc.c.e.Rules.Sources {
		if len(src.ScopeGroups) == 0 || sc.mirrors[src.Name] == nil {
			continue
		}
		named, err := sc.ss.MirrorGroupsNamed(ctx, src.ScopeGroups)
		if err != nil {
			return err
		}
		if err := sc.merge(ctx, src.Name, nil, named[src.Name]); err != nil {
			return err
		}
	}
	return nil
}

// scopeMembers returns the members of the scope groups a mirror holds, by
// group, or nil for a source without scope groups.
func scopeMembers(src SourceRules, m *Mirror) map[string][]string {
	if len(src.ScopeGroups) == 0 {
		return nil
	}
	out := map[string][]string{}
	for gid, g := range m.Groups {
		if slices.Contains(src.ScopeGroups, g.Name) {
			out[gid] = m.Members[gid]
		}
	}
	return out
}

// scopeChanged returns the users who are members of a scope group on one
// side only: those of a group that became or stopped being a scope group
// (created, deleted, renamed), and those a scope group gained or lost.
func scopeChanged(before, after map[string][]string) []string {
	moved := map[string]bool{}
	for _, side := range [2][2]map[string][]string{{before, after}, {after, before}} {
		for gid, list := range side[0] {
			other, ok := side[1][gid]
			for _, uid := range list {
				if _, in := slices.BinarySearch(other, uid); !ok || !in {
					moved[uid] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(moved))
}

// makeExact puts everyone eligible for a pool, and every holder, in scope,
// so that its waiting list is planned as a full run plans it.
func (sc *scope) makeExact(ctx context.Context, pool string) (string, error) {
	if sc.exact[pool] {
		return "", nil
	}
	for _, l := range sc.c.e.Rules.Licenses {
		if l.Name == pool && (l.AllActive || whenOnly(l)) {
			return "pool " + pool + " (" + RuleLabel(l) + ") is short of seats", nil
		}
	}
	sc.exact[pool] = true
	holders, err := sc.ss.PoolHolders(ctx, pool)
	if err != nil {
		return "", err
	}
	for _, id := range holders {
		sc.addID(id)
	}
	// The pool's groups are in the partial mirrors (poolGroups): every
	// member of one of them may be eligible. Extra users are harmless.
	for _, name := range sortedKeys(sc.mirrors) {
		m := sc.mirrors[name]
		for gid := range m.Groups {
			if sc.poolGroup(pool, name, m.Groups[gid].Name) {
				for _, uid := range m.Members[gid] {
					sc.addUser(name, uid)
				}
			}
		}
	}
	return "", nil
}

// poolGroup reports whether a group of a source feeds a pool.
func (sc *scope) poolGroup(pool, source, group string) bool {
	for _, l := range sc.c.e.Rules.Licenses {
		if l.Name != pool {
			continue
		}
		for _, ref := range l.Groups {
			if ref == group || ref == source+"/"+group {
				return true
			}
		}
	}
	return false
}

// close reads, until nothing new turns up, the mirror users of every match
// key in scope, the people with those keys or linked to those users, and
// those people's identities and their users.
func (sc *scope) close(ctx context.Context) (string, error) {
	active, _, err := sc.ss.Counts(ctx)
	if err != nil {
		return "", err
	}
	limit := max(1000, int(float64(active)*maxScopeShare))
	for len(sc.pendingKeys)+len(sc.pendingRefs)+len(sc.pendingIDs)+len(sc.pendingUsers) > 0 {
		if len(sc.keys) > limit || len(sc.st.People) > limit {
			return "the changes touch too much of the directory", nil
		}
		users := sc.pendingUsers
		sc.pendingUsers = map[string][]string{}
		for _, src := range sortedKeys(users) {
			if err := sc.merge(ctx, src, users[src], nil); err != nil {
				return "", err
			}
		}
		keys, refs := sc.pendingKeys, sc.pendingRefs
		sc.pendingKeys, sc.pendingRefs = nil, nil
		if len(keys) > 0 {
			byKey, err := sc.ss.MirrorUsersByKey(ctx, sc.matchOn(), keys)
			if err != nil {
				return "", err
			}
			for src, ids := range byKey {
				for _, id := range ids {
					sc.addUser(src, id)
				}
			}
		}
		if len(keys)+len(refs) > 0 {
			ids, err := sc.ss.PeopleFor(ctx, keys, refs)
			if err != nil {
				return "", err
			}
			for _, id := range ids {
				sc.addID(id)
			}
		}
		if err := sc.loadPeople(ctx); err != nil {
			return "", err
		}
	}
	return "", nil
}

func (sc *scope) loadPeople(ctx context.Context) error {
	ids := sc.pendingIDs
	sc.pendingIDs = nil
	var fresh []int64
	for _, id := range ids {
		if _, ok := sc.st.People[id]; !ok {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	slices.Sort(fresh)
	fresh = slices.Compact(fresh)
	if err := sc.ss.LoadPeople(ctx, fresh, sc.st); err != nil {
		return err
	}
	for _, id := range fresh {
		if p := sc.st.People[id]; p != nil {
			sc.addKey(p.Key)
		}
	}
	isFresh := make(map[int64]bool, len(fresh))
	for _, id := range fresh {
		isFresh[id] = true
	}
	for ref, id := range sc.st.Identities {
		if isFresh[id] {
			sc.addUser(ref.Source, ref.ExternalID)
		}
	}
	return nil
}

// sourceRun is the record of one source in an incremental run.
func (sc *scope) sourceRun(f fetched) SourceRun {
	sr, ok := sc.runs[f.name]
	if !ok {
		sr = SourceRun{Name: f.name, Mode: f.mode, Duration: f.took, Result: SourceUnchanged}
	}
	return sr
}
