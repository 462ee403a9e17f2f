package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/learnsync/learnsync/connectors"
)

// An incremental run plans only what its fetches can affect, with the same
// Desire and Diff as a full run, on a scoped input: the people the changed
// records touch (with everyone they merge with), the groups whose members
// change, the license pools those touch. It relies on the directory being
// at the plan of its mirrors before the run (Marks.Converged), and falls
// back to a full reconcile whenever it cannot be sure to compute the same
// plan. See docs/DESIGN.md, "Incremental reconcile".

// fullReason says why the run must be a full reconcile before anything is
// fetched, or "" when it may be incremental.
func (c *cycle) fullReason(ctx context.Context, cursors map[string]string) (string, error) {
	e := c.e
	ss, ok := e.Store.(ScopedStore)
	if !ok {
		return "the store reads only whole", nil
	}
	marks, err := ss.Marks(ctx)
	if err != nil {
		return "", err
	}
	c.marks = marks
	// Read the change logs before any mirror: what a later push changes
	// stays pending for the next run.
	if c.pushed, err = ss.MirrorChanges(ctx, c.pushedSources()); err != nil {
		return "", err
	}
	switch {
	case c.opts.FullReconcile:
		return "--full", nil
	case marks == nil || marks.FullAt.IsZero():
		return "no full reconcile recorded", nil
	case !marks.Converged:
		return "the last run did not converge (a source was frozen)", nil
	case marks.RulesHash != RulesHash(e.Rules):
		c.refetchForRules()
		return "the rules changed", nil
	case e.FullEvery > 0 && !c.now.Before(marks.FullAt.Add(e.FullEvery)):
		return "reconcile.full_every is due", nil
	case mapsMatchAttribute(e.Rules) != "":
		return "source " + mapsMatchAttribute(e.Rules) + " maps the match attribute", nil
	}
	for _, src := range e.Sources {
		name := src.Rules.Name
		mode := c.opts.Fetch[name]
		if mode == FetchNone || connectors.IsPushed(src.Connector) {
			continue
		}
		if _, inc := src.Connector.(connectors.Incremental); !inc || cursors[name] == "" || mode == FetchFull {
			if !readsWhole(src.Connector) {
				return "full fetch of " + name, nil
			}
		}
	}
	return "", nil
}

// pushedSources names the sources whose mirrors their pushes write.
func (c *cycle) pushedSources() []string {
	var out []string
	for _, src := range c.e.Sources {
		if connectors.IsPushed(src.Connector) {
			out = append(out, src.Rules.Name)
		}
	}
	return out
}

// consumed are the change-log entries a committed run deletes: every
// pending entry it read, whether it planned incrementally or fully (a full
// run reads the mirrors after the log).
func (c *cycle) consumed() map[string]int64 {
	out := map[string]int64{}
	for name, ch := range c.pushed {
		out[name] = ch.Seq
	}
	return out
}

func readsWhole(c connectors.Connector) bool {
	s, ok := c.(connectors.Snapshot)
	return ok && s.ReadsWhole()
}

// nextMarks are the marks a committed run leaves.
func (c *cycle) nextMarks() *Marks {
	next := &Marks{}
	if c.marks != nil {
		*next = *c.marks
	}
	next.Converged = c.run.Result == ResultOK
	if c.run.Reconcile == ModeFull && next.Converged {
		next.FullAt, next.RulesHash = c.now, RulesHash(c.e.Rules)
	}
	return next
}

// incremental runs the rest of the cycle incrementally. It returns a
// non-empty fallback when the run must be a full reconcile after all; the
// fetches are then used as they are.
func (c *cycle) incremental(ctx context.Context, fetches []fetched) (*Outcome, string, error) {
	ss := c.e.Store.(ScopedStore)
	sc := newScope(c, ss)
	for i, f := range fetches {
		if f.err != nil {
			return nil, "source " + f.name + " failed", nil
		}
		if why, err := sc.addSource(ctx, c.e.Sources[i], f); why != "" || err != nil {
			return nil, why, err
		}
	}
	due, err := sc.deleteDue(ctx)
	if err != nil {
		return nil, "", err
	}
	if !sc.changed && len(due) == 0 {
		// Nothing changed: the plan is empty unless somebody waits for a
		// seat (the plan reports them).
		if err := ss.LoadScope(ctx, nil, sc.st); err != nil {
			return nil, "", err
		}
		waiting := false
		for _, p := range sc.st.Pools {
			waiting = waiting || p.Waiting > 0
		}
		if !waiting {
			out, err := c.unchanged(ctx, fetches)
			return out, "", err
		}
	}
	if why, err := sc.build(ctx, due); why != "" || err != nil {
		return nil, why, err
	}
	plan, why, err := sc.plan(ctx)
	if why != "" || err != nil {
		return nil, why, err
	}
	// No fallback now: the fetched results (for a source that reads whole,
	// the whole of it) may go before the commit.
	for i := range fetches {
		fetches[i].result = nil
	}
	c.planDone()
	c.run.Reconcile = ModeIncremental
	for _, f := range fetches {
		c.run.Sources = append(c.run.Sources, sc.sourceRun(f))
	}
	c.planned = plan
	c.run.Summary = plan.Summary()
	c.run.Problems = c.e.capProblems(c.problems)
	out, err := c.record(ctx, c.check())
	return out, "", err
}

// unchanged ends a run in which no source changed and nothing is due: it
// reads nothing more and writes nothing, not even its run record
// (Outcome.NoChange; the service counts such cycles itself).
func (c *cycle) unchanged(ctx context.Context, fetches []fetched) (*Outcome, error) {
	run := c.run
	run.Reconcile, run.Result = ModeIncremental, ResultOK
	for _, f := range fetches {
		sr := SourceRun{Name: f.name, Mode: f.mode, Duration: f.took, Result: SourceOK}
		if f.mode == "" {
			sr.Result = SourceUnchanged
		} else {
			sr.Requests, sr.Problems = f.result.Requests, len(f.result.Problems)
		}
		run.Sources = append(run.Sources, sr)
	}
	active, _, err := c.e.Store.(ScopedStore).Counts(ctx)
	if err != nil {
		return nil, err
	}
	c.planned = &Plan{ActiveBefore: active}
	out := &Outcome{Run: run, Plan: c.planned, NoChange: true}
	run.EndedAt = c.e.now()
	run.PlanTook = run.EndedAt.Sub(c.fetchedAt)
	if !c.opts.DryRun {
		c.e.logRun(c.log, run)
	}
	return out, nil
}

// snapshotDelta turns the full result of a source that reads whole into a
// delta against the stored mirror, by the rows' content hashes: only the
// rows that differ are read and written. stored, when set, is the read of
// the stored hashes started during the fetch; the result's own hashes are
// used when it has them. fresh reports that the store holds no row of the
// source (a first import): every row of the result is then new, and the
// delta shares the result's lists rather than copy them (a million users
// at 1M people; docs/PERFORMANCE.md, "Round seven").
func snapshotDelta(ctx context.Context, ss ScopedStore, source string, r *connectors.Result, stored *promise[storedHashes]) (d *connectors.Result, fresh bool, err error) {
	var hs storedHashes
	if stored != nil {
		hs, err = stored.wait()
	} else {
		hs.users, hs.groups, err = ss.MirrorHashes(ctx, source)
	}
	if err != nil {
		return nil, false, err
	}
	fresh = len(hs.users) == 0 && len(hs.groups) == 0
	d = &connectors.Result{Cursor: r.Cursor, Problems: r.Problems, Requests: r.Requests, Members: map[string][]string{}}
	// Each stored hash met is deleted: those left are the rows the source
	// no longer has.
	userHash := func(i int) int64 {
		if len(r.UserHashes) == len(r.Users) {
			return r.UserHashes[i]
		}
		return UserHash(&r.Users[i])
	}
	d.Users = differing(r.Users, func(i int) bool {
		id := r.Users[i].ExternalID
		h, ok := hs.users[id]
		if ok {
			delete(hs.users, id)
		}
		return !ok || h != userHash(i)
	})
	d.DeletedUsers = slices.Sorted(maps.Keys(hs.users))
	groupHash := func(i int) int64 {
		if len(r.GroupHashes) == len(r.Groups) {
			return r.GroupHashes[i]
		}
		return GroupHash(&r.Groups[i], slices.Values(r.Members[r.Groups[i].ExternalID]))
	}
	d.Groups = differing(r.Groups, func(i int) bool {
		id := r.Groups[i].ExternalID
		h, ok := hs.groups[id]
		if ok {
			delete(hs.groups, id)
		}
		return !ok || h != groupHash(i)
	})
	for i := range d.Groups {
		id := d.Groups[i].ExternalID
		d.Members[id] = r.Members[id]
		if d.Members[id] == nil {
			d.Members[id] = []string{}
		}
	}
	d.DeletedGroups = slices.Sorted(maps.Keys(hs.groups))
	return d, fresh, nil
}

// differing returns the records for which differs(i) holds, in order: the
// records themselves when all do (a result is handed over, its lists are
// not changed after), else an exact-size copy. differs is called once with
// each index, in order.
func differing[T any](records []T, differs func(i int) bool) []T {
	var idx []int32
	for i := range records {
		if differs(i) {
			idx = append(idx, int32(i))
		}
	}
	if len(idx) == len(records) {
		return records
	}
	if len(idx) == 0 {
		return nil
	}
	out := make([]T, len(idx))
	for k, i := range idx {
		out[k] = records[i]
	}
	return out
}

// touchedIDs returns the users and groups a delta names.
func touchedIDs(r *connectors.Result) (users, groups map[string]bool) {
	users, groups = map[string]bool{}, map[string]bool{}
	for i := range r.Users {
		users[r.Users[i].ExternalID] = true
	}
	for _, id := range r.DeletedUsers {
		users[id] = true
	}
	for i := range r.Groups {
		groups[r.Groups[i].ExternalID] = true
	}
	for _, id := range r.DeletedGroups {
		groups[id] = true
	}
	for id := range r.Members {
		groups[id] = true
	}
	for _, ms := range [][]connectors.Membership{r.AddedMembers, r.RemovedMembers} {
		for _, m := range ms {
			groups[m.GroupID] = true
		}
	}
	return users, groups
}

// signature is what of a user decides their memberships and seats: their
// match attribute and status (and the source's scope.when: whenMoved).
// "" for no user.
func signature(matchOn string, u *connectors.User) string {
	if u == nil {
		return ""
	}
	v := u.Email
	if matchOn == "user_name" {
		v = u.UserName
	}
	return fmt.Sprintf("%s\x00%s", v, u.Status)
}

func sortedSet[K comparable](m map[K]bool, less func(a, b K) int) []K {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, less)
	return out
}
