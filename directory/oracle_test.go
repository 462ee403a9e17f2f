package directory_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/directory/dirtest"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/rules"
	"github.com/learnsync/learnsync/rules/rulestest"
)

// The differential oracle: random sequences of changes to several sources,
// and after every step the incremental plan must equal the plan of a full
// reconcile of the same inputs. LEARNSYNC_ORACLE_STEPS and
// LEARNSYNC_ORACLE_SEED run a longer or another pass.

// oracleSource is a fake source that keeps every version of itself and
// answers a cursor (a version) with what changed since.
type oracleSource struct {
	whole    bool // answers like a file: a full result whenever it changed
	versions []oracleVersion
	// onFetch, if set, is called once by the next fetch: a push that lands
	// during a run.
	onFetch func()
}

func (s *oracleSource) fetching() {
	if f := s.onFetch; f != nil {
		s.onFetch = nil
		f()
	}
}

type oracleVersion struct {
	users   map[string]connectors.User
	groups  map[string]connectors.Group
	members map[string][]string
}

func (s *oracleSource) cur() oracleVersion { return s.versions[len(s.versions)-1] }

func (s *oracleSource) FetchAll(ctx context.Context) (*connectors.Result, error) {
	s.fetching()
	if s.whole {
		// As the file source does: the stored hashes are read meanwhile.
		connectors.ReadingWhole(ctx)
	}
	v := s.cur()
	r := &connectors.Result{Full: true, Cursor: strconv.Itoa(len(s.versions) - 1), Members: map[string][]string{}}
	for _, id := range slices.Sorted(maps.Keys(v.users)) {
		r.Users = append(r.Users, v.users[id])
	}
	for _, id := range slices.Sorted(maps.Keys(v.groups)) {
		r.Groups = append(r.Groups, v.groups[id])
		r.Members[id] = v.members[id]
	}
	if s.whole && len(s.versions)%2 == 0 {
		// Every other version comes with its hashes, as the file source's.
		for i := range r.Users {
			r.UserHashes = append(r.UserHashes, connectors.UserHash(&r.Users[i]))
		}
		for i, g := range r.Groups {
			r.GroupHashes = append(r.GroupHashes, connectors.GroupHash(&r.Groups[i], slices.Values(r.Members[g.ExternalID])))
		}
	}
	return r, nil
}

func (s *oracleSource) ReadsWhole() bool { return s.whole }

func (s *oracleSource) FetchChanges(ctx context.Context, cursor string) (*connectors.Result, error) {
	s.fetching()
	n, err := strconv.Atoi(cursor)
	if err != nil || n >= len(s.versions) {
		return s.FetchAll(ctx)
	}
	old, v := s.versions[n], s.cur()
	if s.whole {
		if n == len(s.versions)-1 {
			return &connectors.Result{Cursor: cursor}, nil
		}
		return s.FetchAll(ctx)
	}
	r := &connectors.Result{Cursor: strconv.Itoa(len(s.versions) - 1), Members: map[string][]string{}}
	for _, id := range slices.Sorted(maps.Keys(v.users)) {
		if o, ok := old.users[id]; !ok || o != v.users[id] {
			r.Users = append(r.Users, v.users[id])
		}
	}
	for _, id := range slices.Sorted(maps.Keys(old.users)) {
		if _, ok := v.users[id]; !ok {
			r.DeletedUsers = append(r.DeletedUsers, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(v.groups)) {
		if o, ok := old.groups[id]; !ok || o != v.groups[id] || !slices.Equal(old.members[id], v.members[id]) {
			r.Groups = append(r.Groups, v.groups[id])
			r.Members[id] = v.members[id]
		}
	}
	for _, id := range slices.Sorted(maps.Keys(old.groups)) {
		if _, ok := v.groups[id]; !ok {
			r.DeletedGroups = append(r.DeletedGroups, id)
		}
	}
	return r, nil
}

// oracleOrg mutates the sources at random.
type oracleOrg struct {
	rnd     *rand.Rand
	sources []*oracleSource
	emails  int
	// attrs gives users raw attributes for rules (TestIncrementalOracleRules).
	attrs bool
}

// randomAttrs are raw attributes for the rules of the oracle: a kind
// (contractors are out of scope), a department, sometimes neither (the
// rules fail on those).
func (o *oracleOrg) randomAttrs() string {
	if !o.attrs {
		return ""
	}
	switch o.rnd.IntN(6) {
	case 0:
		return `{}`
	case 1:
		return `{"kind":"contractor","dept":"D1"}`
	}
	return fmt.Sprintf(`{"kind":"employee","dept":"D%d"}`, o.rnd.IntN(3))
}

func (o *oracleOrg) clone(v oracleVersion) oracleVersion {
	n := oracleVersion{users: maps.Clone(v.users), groups: maps.Clone(v.groups), members: map[string][]string{}}
	for k, m := range v.members {
		n.members[k] = slices.Clone(m)
	}
	return n
}

// freeEmail returns an email no user of v has: one account an email per
// source (duplicates fall back to full, which tests nothing).
func (o *oracleOrg) freeEmail(v oracleVersion) string {
	used := map[string]bool{}
	for _, u := range v.users {
		used[u.Email] = true
	}
	for range 50 {
		e := fmt.Sprintf("p%d@example.com", o.rnd.IntN(o.emails))
		if !used[e] {
			return e
		}
	}
	return fmt.Sprintf("p%d@example.com", o.emails+o.rnd.IntN(1000))
}

var oracleStatuses = []connectors.Status{connectors.StatusActive, connectors.StatusActive, connectors.StatusActive, connectors.StatusInactive}

// step changes a few things in one or more sources.
func (o *oracleOrg) step() {
	for _, s := range o.sources {
		if o.rnd.IntN(3) == 0 {
			continue
		}
		v := o.clone(s.cur())
		for range 1 + o.rnd.IntN(4) {
			o.change(&v)
		}
		s.versions = append(s.versions, v)
	}
}

func (o *oracleOrg) change(v *oracleVersion) {
	r := o.rnd
	uid := fmt.Sprintf("u%d", r.IntN(30))
	gid := fmt.Sprintf("g%d", r.IntN(5))
	u, exists := v.users[uid]
	switch k := r.IntN(10); {
	case k < 2 || !exists: // create or recreate
		v.users[uid] = connectors.User{ExternalID: uid, Email: o.freeEmail(*v), UserName: uid, GivenName: "N" + strconv.Itoa(r.IntN(3)),
			Status: oracleStatuses[r.IntN(len(oracleStatuses))], Attrs: o.randomAttrs()}
	case k == 2: // delete
		delete(v.users, uid)
		for g, m := range v.members {
			v.members[g] = slices.DeleteFunc(m, func(id string) bool { return id == uid })
		}
	case k == 3: // email change: a new match key
		u.Email = o.freeEmail(*v)
		v.users[uid] = u
	case k == 4: // status change
		u.Status = oracleStatuses[r.IntN(len(oracleStatuses))]
		v.users[uid] = u
	case k == 5: // profile change
		u.Title = "T" + strconv.Itoa(r.IntN(4))
		if o.attrs && r.IntN(2) == 0 {
			u.Attrs = o.randomAttrs()
		}
		v.users[uid] = u
	case k == 6: // a group appears, is renamed or goes
		if _, ok := v.groups[gid]; ok && r.IntN(3) == 0 {
			delete(v.groups, gid)
			delete(v.members, gid)
		} else {
			v.groups[gid] = connectors.Group{ExternalID: gid, Name: fmt.Sprintf("G%d", r.IntN(4))}
		}
	default: // membership churn
		if _, ok := v.groups[gid]; !ok {
			v.groups[gid] = connectors.Group{ExternalID: gid, Name: fmt.Sprintf("G%d", r.IntN(4))}
		}
		m := v.members[gid]
		if i := slices.Index(m, uid); i >= 0 {
			m = slices.Delete(m, i, i+1)
		} else {
			m = append(m, uid)
			slices.Sort(m)
		}
		v.members[gid] = m
	}
}

func oracleEnv(t *testing.T, name string, def int64) int64 {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

func TestIncrementalOracle(t *testing.T) {
	steps := int(oracleEnv(t, "LEARNSYNC_ORACLE_STEPS", 150))
	seed := oracleEnv(t, "LEARNSYNC_ORACLE_SEED", 1)
	if os.Getenv("LEARNSYNC_ORACLE_SEED") == "" && os.Getenv("LEARNSYNC_ORACLE_STEPS") != "" {
		seed = time.Now().UnixNano()
	}
	dirtest.Each(t, func(t *testing.T) {
		for _, pass := range []int64{seed, seed + 1} {
			runOracle(t, pass, steps, false)
		}
	})
}

// TestIncrementalOracleRules is the oracle with rules as expressions: a
// scope.when and a map over raw attributes that change, and license rules
// over the person's attributes and groups.
func TestIncrementalOracleRules(t *testing.T) {
	steps := int(oracleEnv(t, "LEARNSYNC_ORACLE_STEPS", 150))
	seed := oracleEnv(t, "LEARNSYNC_ORACLE_SEED", 1)
	dirtest.Each(t, func(t *testing.T) {
		for _, pass := range []int64{seed, seed + 1} {
			runOracle(t, pass, steps, true)
		}
	})
}

// withRules adds the oracle's rules to e.
func withRules(t *testing.T, e *reconcile.Engine) {
	for i := range e.Sources {
		r := &e.Sources[i].Rules
		r.When = rulestest.User(t, `user.?kind.orValue("employee") != "contractor"`, rules.Bool)
		r.Map = map[string]*rules.Rule{"department": rulestest.User(t, `user.dept`, rules.String)}
		e.Rules.Sources[i] = *r
	}
	e.Rules.Licenses = append(e.Rules.Licenses,
		reconcile.LicenseRule{Name: "d1", When: rulestest.Person(t, `person.department == "D1"`)},
		reconcile.LicenseRule{Name: "g2", Seats: 30, Groups: []string{"G0"}, When: rulestest.Person(t, `"b/G2" in person.groups || person.department == "D0"`)},
	)
}

func runOracle(t *testing.T, seed int64, steps int, withExprs bool) {
	ctx := context.Background()
	store, err := directory.OpenDriver(ctx, dirtest.Backend(t), dirtest.Target(t, dirtest.Backend(t)), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	o := &oracleOrg{rnd: rand.New(rand.NewPCG(uint64(seed), 7)), emails: 45}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &reconcile.Engine{Store: store, Now: func() time.Time { return now }, LockWait: -1,
		Rules: reconcile.Rules{MatchOn: "email", DeleteAfter: 48 * time.Hour, Licenses: []reconcile.LicenseRule{
			{Name: "pro", Seats: 6, Groups: []string{"G1", "b/G2"}},
			{Name: "basic", AllActive: true},
			{Name: "lab", Seats: 40, Groups: []string{"G3"}},
		}}}
	if seed%2 == 0 {
		e.Rules.Licenses = append(e.Rules.Licenses, reconcile.LicenseRule{Name: "all", Seats: 25, AllActive: true})
		// The paths of a large directory on this small one: the
		// directory read in two parts, the first import's mirrors
		// written before its plan.
		e.LargeRun = 1
	}
	// a reads whole (a file), b and c answer deltas (IdPs), d is pushed
	// (SCIM): its mirror and change log are written between the runs and
	// during them.
	var push *oraclePush
	for i, name := range []string{"a", "b", "c", "d"} {
		s := &oracleSource{whole: i == 0, versions: []oracleVersion{{users: map[string]connectors.User{}, groups: map[string]connectors.Group{}, members: map[string][]string{}}}}
		o.sources = append(o.sources, s)
		var conn connectors.Connector = s
		switch name {
		case "b", "c":
			conn = deltaOnly{s}
		case "d":
			conn, push = pushedConn{}, &oraclePush{store: store, source: name, s: s}
		}
		rules := reconcile.SourceRules{Name: name, SyncGroups: []string{"G0", "G1", "G2"}}
		if seed%2 == 1 && name != "c" {
			// Scope groups on a file, an IdP and a pushed source: who a
			// source describes changes with its groups' members and names.
			rules.ScopeGroups = []string{"G0", "G3"}
		}
		e.Rules.Sources = append(e.Rules.Sources, rules)
		e.Sources = append(e.Sources, reconcile.Source{Rules: rules, Connector: conn})
	}
	if withExprs {
		o.attrs = true
		withRules(t, e)
	}
	modes := map[string]int{}
	for step := 0; step < steps; step++ {
		o.step()
		if err := push.push(ctx, o.rnd.IntN(2) == 0); err != nil {
			t.Fatalf("seed %d step %d: push: %v", seed, step, err)
		}
		now = now.Add(time.Duration(o.rnd.IntN(20)) * time.Hour)
		inc, err := e.Run(ctx, reconcile.RunOptions{DryRun: true})
		if err != nil {
			t.Fatalf("seed %d step %d: incremental plan: %v", seed, step, err)
		}
		full, err := e.Run(ctx, reconcile.RunOptions{DryRun: true, FullReconcile: true})
		if err != nil {
			t.Fatalf("seed %d step %d: full plan: %v", seed, step, err)
		}
		modes[inc.Run.Reconcile+" "+inc.Run.FullReason]++
		if diff := cmp.Diff(full.Plan, inc.Plan, cmpopts.EquateEmpty()); diff != "" {
			if os.Getenv("ORACLE_DEBUG") != "" {
				for i, s := range o.sources {
					v := s.cur()
					t.Logf("source %d users %v\ngroups %v\nmembers %v", i, v.users, v.groups, v.members)
					if len(s.versions) > 1 {
						p := s.versions[len(s.versions)-2]
						t.Logf("prev members %v groups %v", p.members, p.groups)
					}
				}
				ex, _ := store.Export(ctx)
				t.Logf("export %+v", ex)
			}
			t.Fatalf("seed %d step %d (LEARNSYNC_ORACLE_SEED=%d): %s plan differs from the full plan (-full +incremental):\n%s",
				seed, step, seed, inc.Run.Reconcile, diff)
		}
		// Apply one of them: mostly incrementally.
		opts := reconcile.RunOptions{FullReconcile: o.rnd.IntN(5) == 0}
		var pushErr error
		if o.rnd.IntN(3) == 0 {
			// A push lands during the run, after it read the change log:
			// it stays for the next run.
			d := o.sources[3]
			v := o.clone(d.cur())
			o.change(&v)
			d.versions = append(d.versions, v)
			o.sources[1].onFetch = func() { pushErr = push.push(ctx, false) }
		}
		if _, err := e.Run(ctx, opts); err != nil {
			t.Fatalf("seed %d step %d: apply: %v", seed, step, err)
		}
		o.sources[1].fetching() // not fetched: it lands after the run
		if pushErr != nil {
			t.Fatalf("seed %d step %d: push during the run: %v", seed, step, pushErr)
		}
		directory.CheckCounts(t, store, fmt.Sprintf("seed %d step %d", seed, step))
	}
	t.Logf("seed %d, %d steps: %v", seed, steps, modes)
	if modes["incremental "] == 0 {
		t.Errorf("seed %d: no step was planned incrementally: %v", seed, modes)
	}
}

// deltaOnly hides ReadsWhole: an IdP-like source.
type deltaOnly struct{ s *oracleSource }

func (d deltaOnly) FetchAll(ctx context.Context) (*connectors.Result, error) {
	return d.s.FetchAll(ctx)
}
func (d deltaOnly) FetchChanges(ctx context.Context, c string) (*connectors.Result, error) {
	return d.s.FetchChanges(ctx, c)
}
