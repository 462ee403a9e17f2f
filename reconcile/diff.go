package reconcile

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Diff compares the desired state with the directory's actual state and
// returns the plan that turns one into the other. It does no I/O and changes
// neither argument.
//
// The rules it applies, in order:
//   - a desired person is the actual person with the same match key, else the
//     one linked to one of their identities (the match key changed);
//   - a person inactive everywhere who is not in the directory is not created;
//   - a person with no active identity left is deactivated (memberships and
//     licenses removed, profile kept) and deleted once deactivated longer than
//     the delete_after period;
//   - a person with an identity in a frozen source loses nothing: no
//     deactivation, deletion, membership removal or license revocation;
//   - holders keep their seats while they qualify; seats freed in this run go
//     to waiting people in a stable order (first seen, then user name).
func Diff(d *Desired, s *State) *Plan {
	df := differ{d: d, s: s, p: &Plan{}}
	df.index()
	df.people()
	// Groups and memberships on one side, seats on the other: both only
	// read what people() decided, and each writes its own part of the plan.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		df.licenses()
	}()
	df.groups()
	df.members()
	wg.Wait()
	df.sort()
	return df.p
}

type differ struct {
	d *Desired
	s *State
	p *Plan

	byKey map[string]*Person
	// ident holds each person's first identity, moreIdents the others of
	// the few people with several: a slice a person would cost twice the
	// memory of a large directory's identities. ident is indexed by person
	// id when the ids are dense, as the directory's are (a table of a
	// million entries costs twice its slots in a map); identMap holds them
	// otherwise. See firstIdent.
	ident      []IdentityRef
	identMap   map[int64]IdentityRef
	moreIdents map[int64][]IdentityRef
	// maxID is the largest person id of the state, denseIDs whether the
	// ids are dense enough for tables indexed by id (see idFlags).
	maxID     int64
	denseIDs  bool
	protected map[int64]bool
	// target maps a desired key to the person it becomes (ID 0 for a
	// person the plan creates); see targetOf. The references are those the
	// plan's memberships and seats share, allocated from refs.
	target map[string]*PersonRef
	refs   []PersonRef
	// flipped holds the existing people whose active state the plan
	// changes, with the new one (activeAfter): a map of everyone would
	// be 30 MB at 1M people for the few who change.
	flipped map[int64]bool
	deleted map[int64]bool
	// renamed holds the new match key of people whose key changes.
	renamed map[int64]string
}

func (df *differ) index() {
	s := df.s
	df.byKey = make(map[string]*Person, len(s.People))
	for id, per := range s.People {
		df.byKey[per.Key] = per
		if per.Active {
			df.p.ActiveBefore++
		}
		df.maxID = max(df.maxID, id)
	}
	for _, id := range s.Identities {
		df.maxID = max(df.maxID, id)
	}
	df.denseIDs = df.maxID <= 2*int64(max(len(s.People), len(s.Identities)))+1024
	if df.denseIDs {
		df.ident = make([]IdentityRef, df.maxID+1)
	} else {
		df.identMap = make(map[int64]IdentityRef, len(s.Identities))
	}
	df.moreIdents = make(map[int64][]IdentityRef)
	df.protected = make(map[int64]bool)
	for ref, id := range s.Identities {
		if _, ok := df.firstIdent(id); ok {
			df.moreIdents[id] = append(df.moreIdents[id], ref)
		} else if df.identMap != nil {
			df.identMap[id] = ref
		} else {
			df.ident[id] = ref
		}
		if _, frozen := df.d.Frozen[ref.Source]; frozen {
			df.protected[id] = true
		}
	}
	df.target = make(map[string]*PersonRef, len(df.d.People))
	df.refs = make([]PersonRef, 0, len(df.d.People))
	df.flipped = make(map[int64]bool)
	df.deleted = make(map[int64]bool)
	df.renamed = make(map[int64]string)
}

// identsOf returns the identities the directory links to a person (nil for
// none), in no particular order, appended to buf.
func (df *differ) identsOf(id int64, buf []IdentityRef) []IdentityRef {
	first, ok := df.firstIdent(id)
	if !ok {
		return nil
	}
	return append(append(buf, first), df.moreIdents[id]...)
}

// idFlags is a set of person ids: a table indexed by id when the state's
// ids are dense, as the directory's are, a map otherwise. A map of a
// million ids costs 20 MB and twice that while it grows; the table 1 MB.
type idFlags struct {
	dense  []bool
	sparse map[int64]bool
}

func (df *differ) newFlags() *idFlags {
	if df.denseIDs {
		return &idFlags{dense: make([]bool, df.maxID+1)}
	}
	return &idFlags{sparse: map[int64]bool{}}
}

func (f *idFlags) has(id int64) bool {
	if f.sparse != nil {
		return f.sparse[id]
	}
	return id >= 0 && id < int64(len(f.dense)) && f.dense[id]
}

func (f *idFlags) add(id int64) {
	if f.sparse == nil && (id < 0 || id >= int64(len(f.dense))) {
		// Beyond the state's ids: the set becomes a map.
		f.sparse = make(map[int64]bool)
		for i, ok := range f.dense {
			if ok {
				f.sparse[int64(i)] = true
			}
		}
		f.dense = nil
	}
	if f.sparse != nil {
		f.sparse[id] = true
		return
	}
	f.dense[id] = true
}

func (f *idFlags) clear() {
	clear(f.dense)
	clear(f.sparse)
}

// firstIdent returns the first identity of a person, false for none. In
// the dense table a zero IdentityRef is none: every identity has a source
// and an id.
func (df *differ) firstIdent(id int64) (IdentityRef, bool) {
	if df.identMap != nil {
		ref, ok := df.identMap[id]
		return ref, ok
	}
	if id < 0 || id >= int64(len(df.ident)) {
		return IdentityRef{}, false
	}
	ref := df.ident[id]
	return ref, ref != IdentityRef{}
}

// targetOf returns the person a desired key becomes, nil for none.
func (df *differ) targetOf(key string) (*PersonRef, bool) {
	ref, ok := df.target[key]
	return ref, ok
}

// setTarget makes id (0 for a person the plan creates) the person key
// becomes. The reference comes from a block of them: one allocation for a
// large plan instead of one per person. A full block is left to the
// references into it, never grown.
func (df *differ) setTarget(key string, id int64) *PersonRef {
	if len(df.refs) == cap(df.refs) {
		df.refs = make([]PersonRef, 0, max(64, cap(df.refs)))
	}
	df.refs = append(df.refs, PersonRef{ID: id, Key: key})
	ref := &df.refs[len(df.refs)-1]
	df.target[key] = ref
	return ref
}

// noTarget is the reference of a key without a target: as a zero
// PersonRef, which a MemberChange held before it shared references.
var noTarget = &PersonRef{}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (df *differ) deleteDue(per *Person) bool {
	return !df.d.DeleteBefore.IsZero() && !per.Active && !per.DeactivatedAt.IsZero() &&
		per.DeactivatedAt.Time().Before(df.d.DeleteBefore) && !df.protected[per.ID]
}

func identityDiff(have, want []IdentityRef) (link, unlink []IdentityRef) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			link = append(link, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			unlink = append(unlink, h)
		}
	}
	sortIdentities(link)
	sortIdentities(unlink)
	return link, unlink
}

func sortIdentities(refs []IdentityRef) {
	slices.SortFunc(refs, func(a, b IdentityRef) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.ExternalID, b.ExternalID))
	})
}

// CreatedFields lists the non-empty attributes of a new person's profile as
// changes from nothing, for showing a create.
func (c *PersonChange) CreatedFields() []FieldChange {
	return profileDiff(&Profile{}, &c.Profile)
}

// profileDiff takes pointers: profiles passed by value would escape to the
// heap (profileFields reads them through funcs), two copies a person.
func profileDiff(old, new *Profile) []FieldChange {
	var out []FieldChange
	for _, f := range profileFields {
		if o, n := *f.get(old), *f.get(new); o != n {
			out = append(out, FieldChange{Field: f.name, Old: o, New: n})
		}
	}
	return out
}

func (df *differ) people() {
	d, s := df.d, df.s
	keys := sortedKeys(d.People)
	claimed := df.newFlags()
	for _, key := range keys {
		if per := df.byKey[key]; per != nil {
			df.setTarget(key, per.ID)
			claimed.add(per.ID)
		}
	}
	// The match key of a known identity changed (a new email): same person.
	for _, key := range keys {
		if _, ok := df.target[key]; ok {
			continue
		}
		for _, ref := range d.People[key].Identities {
			id, ok := s.Identities[ref]
			if !ok || claimed.has(id) {
				continue
			}
			if _, taken := d.People[s.People[id].Key]; taken {
				continue
			}
			df.setTarget(key, id)
			claimed.add(id)
			break
		}
	}
	if len(s.People) == 0 && len(df.p.People) == 0 {
		// A first import: (nearly) everyone is created. Growing the slice
		// by appends would hold up to twice the plan's people at once.
		df.p.People = make([]PersonChange, 0, len(keys))
	}
	for _, key := range keys {
		dp := d.People[key]
		target, exists := df.targetOf(key)
		if !exists {
			if !dp.Active {
				continue // never active, never created
			}
			df.setTarget(key, 0)
			// A create carries the profile, not a field list: a first import
			// of a large directory would otherwise hold ten strings more per
			// person. CreatedFields gives the list when it is shown.
			df.p.People = append(df.p.People, PersonChange{
				Op: OpCreate, Person: PersonRef{Key: key}, Profile: dp.Profile, Link: dp.Identities,
			})
			continue
		}
		ref := *target
		per := s.People[ref.ID]
		c := PersonChange{Person: ref, Profile: dp.Profile}
		var oldKey string
		if per.Key != key {
			oldKey = per.Key
			df.renamed[per.ID] = key
		}
		var buf [2]IdentityRef
		var unlink []IdentityRef
		c.Link, unlink = identityDiff(df.identsOf(per.ID, buf[:0]), dp.Identities)
		c.Edit = NewPersonEdit(oldKey, profileDiff(&per.Profile, &dp.Profile), unlink)
		active := per.Active
		switch {
		case per.Active && !dp.Active && !df.protected[per.ID]:
			c.Op, active = OpDeactivate, false
		case !per.Active && dp.Active:
			c.Op, active = OpReactivate, true
		case df.deleteDue(per):
			c = PersonChange{Op: OpDelete, Person: ref, Profile: per.Profile}
			df.deleted[per.ID] = true
		case c.Edit != nil || len(c.Link) > 0:
			c.Op = OpUpdate
		}
		df.setActive(per, active)
		if c.Op != 0 {
			df.p.People = append(df.p.People, c)
		}
	}
	if len(df.p.People) == 0 {
		df.p.People = nil // as without the capacity above
	}
	df.undescribed(claimed)
}

// undescribed plans the people no source describes any more.
func (df *differ) undescribed(claimed *idFlags) {
	for _, key := range sortedKeys(df.byKey) {
		per := df.byKey[key]
		if claimed.has(per.ID) {
			continue
		}
		ref := PersonRef{ID: per.ID, Key: per.Key}
		if df.protected[per.ID] {
			continue
		}
		unlink := df.identsOf(per.ID, nil) // a fresh slice: the plan keeps it
		sortIdentities(unlink)
		switch {
		case per.Active:
			df.setActive(per, false)
			df.p.People = append(df.p.People, PersonChange{Op: OpDeactivate, Person: ref, Profile: per.Profile, Edit: NewPersonEdit("", nil, unlink)})
		case df.deleteDue(per):
			df.deleted[per.ID] = true
			df.p.People = append(df.p.People, PersonChange{Op: OpDelete, Person: ref, Profile: per.Profile})
		case len(unlink) > 0:
			df.p.People = append(df.p.People, PersonChange{Op: OpUpdate, Person: ref, Profile: per.Profile, Edit: NewPersonEdit("", nil, unlink)})
		}
	}
}

func (df *differ) groups() {
	d, s := df.d, df.s
	for _, ref := range sortedGroupRefs(d.Groups) {
		dg := d.Groups[ref]
		g := s.Groups[ref]
		if g == nil {
			df.p.Groups = append(df.p.Groups, GroupChange{Op: OpCreate, Group: ref, Name: dg.Name, Description: dg.Description})
			continue
		}
		var fields []FieldChange
		if g.Name != dg.Name {
			fields = append(fields, FieldChange{Field: "name", Old: g.Name, New: dg.Name})
		}
		if g.Description != dg.Description {
			fields = append(fields, FieldChange{Field: "description", Old: g.Description, New: dg.Description})
		}
		if len(fields) > 0 {
			df.p.Groups = append(df.p.Groups, GroupChange{Op: OpUpdate, Group: ref, ID: g.ID, Name: dg.Name, Description: dg.Description, Fields: fields})
		}
	}
	for _, ref := range sortedGroupRefs(s.Groups) {
		if _, ok := d.Groups[ref]; ok {
			continue
		}
		if _, frozen := d.Frozen[ref.Source]; frozen {
			continue
		}
		g := s.Groups[ref]
		df.p.Groups = append(df.p.Groups, GroupChange{Op: OpDelete, Group: ref, ID: g.ID, Name: g.Name, Description: g.Description})
	}
}

func sortedGroupRefs[V any](m map[GroupRef]V) []GroupRef {
	refs := make([]GroupRef, 0, len(m))
	for r := range m {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b GroupRef) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.ExternalID, b.ExternalID))
	})
	return refs
}

func (df *differ) members() {
	d, s := df.d, df.s
	deletedGroups := make(map[GroupRef]bool)
	for _, c := range df.p.Groups {
		if c.Op == OpDelete {
			deletedGroups[c.Group] = true
		}
	}
	if len(s.Members) == 0 && len(df.p.Members) == 0 {
		// A first import: every desired membership is added.
		n := 0
		for _, dg := range d.Groups {
			n += len(dg.Members)
		}
		if n > 0 {
			df.p.Members = make([]MemberChange, 0, n)
		}
	}
	// want holds the ids of a group's desired members, sorted, to find
	// the members to remove; one buffer serves every group (a table a
	// group would be 100 MB of garbage at 1M people). A group with no
	// members yet (every group of a first import) needs none.
	var want []int64
	for _, ref := range sortedGroupRefs(d.Groups) {
		dg := d.Groups[ref]
		adds, removes := &MemberGroup{Ref: ref, Name: dg.Name, Op: OpAdd}, &MemberGroup{Ref: ref, Name: dg.Name, Op: OpRemove}
		var have []int64
		if g := s.Groups[ref]; g != nil {
			have = s.Members[g.ID]
		}
		want = want[:0]
		for _, key := range dg.Members {
			t, ok := df.targetOf(key)
			if !ok {
				t = noTarget
			}
			if t.ID == 0 {
				df.p.Members = append(df.p.Members, MemberChange{Group: adds, Person: t})
				continue
			}
			if len(have) > 0 {
				want = append(want, t.ID)
			}
			if _, ok := slices.BinarySearch(have, t.ID); !ok {
				df.p.Members = append(df.p.Members, MemberChange{Group: adds, Person: t})
			}
		}
		slices.Sort(want)
		for _, id := range have {
			if _, ok := slices.BinarySearch(want, id); ok || df.protected[id] || df.deleted[id] {
				continue
			}
			df.p.Members = append(df.p.Members, MemberChange{Group: removes, Person: &PersonRef{ID: id, Key: df.keyOf(id)}})
		}
	}
	// Groups that stay only because their source is frozen keep their
	// members, but people deactivated by other sources leave them.
	for ref, g := range s.Groups {
		if _, desired := d.Groups[ref]; desired || deletedGroups[ref] {
			continue
		}
		removes := &MemberGroup{Ref: ref, Name: g.Name, Op: OpRemove}
		for _, id := range s.Members[g.ID] {
			if !df.activeAfter(id) && !df.protected[id] && !df.deleted[id] {
				df.p.Members = append(df.p.Members, MemberChange{Group: removes, Person: &PersonRef{ID: id, Key: df.keyOf(id)}})
			}
		}
	}
}

// setActive records whether per is active after the plan.
func (df *differ) setActive(per *Person, active bool) {
	if active != per.Active {
		df.flipped[per.ID] = active
	}
}

// activeAfter says whether the existing person id is active after the plan.
func (df *differ) activeAfter(id int64) bool {
	if active, ok := df.flipped[id]; ok {
		return active
	}
	per := df.s.People[id]
	return per != nil && per.Active
}

// keyOf returns the key a person has after the plan.
func (df *differ) keyOf(id int64) string {
	if k, ok := df.renamed[id]; ok {
		return k
	}
	return df.s.People[id].Key
}

// waiter is someone who qualifies for a pool and has no seat yet.
type waiter struct {
	ref       *PersonRef
	firstSeen time.Time
	userName  string
}

func (df *differ) licenses() {
	configured := make(map[string]bool)
	for _, pool := range df.d.Pools {
		configured[pool.Name] = true
		df.pool(pool)
	}
	df.removedPools(configured)
}

// candidates returns the ids of the existing people who qualify for a pool
// and everyone who does, as waiters. Keys are renamed by the plan; seat
// holders are found by ID.
func (df *differ) candidates(pool DesiredPool) (*idFlags, []waiter) {
	n := len(pool.Eligible)
	if pool.AllActive {
		n = len(df.d.People)
	}
	ids := df.newFlags()
	all := make([]waiter, 0, n)
	pool.eligible(df.d, func(key string) {
		t, ok := df.targetOf(key)
		if !ok {
			return
		}
		w := waiter{ref: t, userName: df.d.People[key].UserName}
		if t.ID != 0 {
			ids.add(t.ID)
			w.firstSeen = df.s.People[t.ID].FirstSeen.Time()
		} else {
			// New people are seen after everyone already known.
			w.firstSeen = time.Unix(1<<62, 0)
		}
		all = append(all, w)
	})
	df.held(pool, ids)
	return ids, all
}

// seat is a seat a holder keeps.
type seat struct {
	id      int64
	granted Instant
}

// keptSeats revokes the seats of holders who no longer qualify, and the most
// recent grants when the pool shrank, and returns the seats that stay.
func (df *differ) keptSeats(pool DesiredPool, qualifies *idFlags) []seat {
	held := df.s.Assignments[pool.Name]
	// Most seats stay: sized for all of them rather than grown (a million
	// seats of an all_active pool).
	kept := make([]seat, 0, len(held))
	for id, granted := range held {
		if df.protected[id] || (!df.deleted[id] && df.activeAfter(id) && qualifies.has(id)) {
			kept = append(kept, seat{id, granted})
			continue
		}
		if df.deleted[id] {
			continue // the seat goes with the person
		}
		reason := "no longer qualifies"
		if pool.Rule != "" {
			reason += " (" + pool.Rule + ")"
		}
		if !df.activeAfter(id) {
			reason = "deactivated"
		}
		df.p.Licenses = append(df.p.Licenses, LicenseChange{Op: OpRevoke, Pool: pool.Name, Person: &PersonRef{ID: id, Key: df.keyOf(id)}, Reason: reason})
	}
	if pool.Seats > 0 && len(kept) > pool.Seats {
		// The pool shrank: the most recent grants give their seats back.
		slices.SortFunc(kept, func(a, b seat) int {
			return cmp.Or(cmp.Compare(b.granted, a.granted), cmp.Compare(df.keyOf(b.id), df.keyOf(a.id)))
		})
		for _, st := range kept[:len(kept)-pool.Seats] {
			df.p.Licenses = append(df.p.Licenses, LicenseChange{Op: OpRevoke, Pool: pool.Name, Person: &PersonRef{ID: st.id, Key: df.keyOf(st.id)}, Reason: "pool has fewer seats"})
		}
		kept = kept[len(kept)-pool.Seats:]
	}
	return kept
}

// pool plans one configured pool: revocations, then grants to the waiting
// people in a stable order while seats last, the shortfall and the pool
// record.
func (df *differ) pool(pool DesiredPool) {
	qualifies, candidates := df.candidates(pool)
	kept := df.keptSeats(pool, qualifies)
	// qualifies is done with: its table holds the seated instead of a
	// second one.
	seated := qualifies
	seated.clear()
	for _, st := range kept {
		seated.add(st.id)
	}
	// The waiting are filtered in place: an all_active pool of a large
	// directory has a candidate a person.
	waiting := candidates[:0]
	for _, c := range candidates {
		if c.ref.ID == 0 || !seated.has(c.ref.ID) {
			waiting = append(waiting, c)
		}
	}
	slices.SortFunc(waiting, func(a, b waiter) int {
		return cmp.Or(a.firstSeen.Compare(b.firstSeen), cmp.Compare(a.userName, b.userName), cmp.Compare(a.ref.Key, b.ref.Key))
	})
	assigned := len(kept)
	grants := len(waiting)
	if pool.Seats > 0 {
		grants = min(grants, max(pool.Seats-assigned, 0))
	}
	df.p.Licenses = slices.Grow(df.p.Licenses, grants)
	for len(waiting) > 0 && (pool.Seats == 0 || assigned < pool.Seats) {
		df.p.Licenses = append(df.p.Licenses, LicenseChange{Op: OpGrant, Pool: pool.Name, Person: waiting[0].ref, Reason: pool.Rule})
		waiting = waiting[1:]
		assigned++
	}
	if len(waiting) > 0 {
		sf := Shortfall{Pool: pool.Name, Seats: pool.Seats, Assigned: assigned, Waiting: len(waiting)}
		for _, w := range waiting[:min(len(waiting), 10)] {
			sf.Next = append(sf.Next, w.ref.Key)
		}
		df.p.Shortfalls = append(df.p.Shortfalls, sf)
	}
	pc := PoolChange{Pool: pool.Name, Seats: pool.Seats, Assigned: assigned, Waiting: len(waiting)}
	if old := df.s.Pools[pool.Name]; old == nil {
		pc.Op = OpCreate
	} else if old.Seats != pool.Seats || old.Waiting != len(waiting) {
		pc.Op, pc.OldSeats, pc.OldWaiting = OpUpdate, old.Seats, old.Waiting
	}
	if pc.Op != 0 {
		df.p.Pools = append(df.p.Pools, pc)
	}
}

// removedPools revokes every seat of the pools no longer configured and
// deletes their records.
func (df *differ) removedPools(configured map[string]bool) {
	s := df.s
	for _, name := range sortedKeys(s.Pools) {
		if configured[name] {
			continue
		}
		for id := range s.Assignments[name] {
			if !df.deleted[id] {
				df.p.Licenses = append(df.p.Licenses, LicenseChange{Op: OpRevoke, Pool: name, Person: &PersonRef{ID: id, Key: df.keyOf(id)}, Reason: "pool removed from the configuration"})
			}
		}
		old := s.Pools[name]
		df.p.Pools = append(df.p.Pools, PoolChange{Op: OpDelete, Pool: name, OldSeats: old.Seats, OldWaiting: old.Waiting})
	}
}

func (df *differ) sort() {
	p := df.p
	slices.SortStableFunc(p.People, func(a, b PersonChange) int { return cmp.Compare(a.Person.Key, b.Person.Key) })
	slices.SortFunc(p.Members, func(a, b MemberChange) int {
		return cmp.Or(cmp.Compare(a.Group.Ref.Source, b.Group.Ref.Source), cmp.Compare(a.Group.Ref.ExternalID, b.Group.Ref.ExternalID),
			cmp.Compare(a.Person.Key, b.Person.Key), cmp.Compare(a.Op(), b.Op()))
	})
	slices.SortFunc(p.Licenses, func(a, b LicenseChange) int {
		return cmp.Or(cmp.Compare(a.Pool, b.Pool), cmp.Compare(b.Op, a.Op), cmp.Compare(a.Person.Key, b.Person.Key))
	})
}
