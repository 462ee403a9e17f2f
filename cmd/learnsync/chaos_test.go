package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/learnsync/learnsync/ha"
	"github.com/learnsync/learnsync/internal/pgtest"
)

// The chaos test: three `learnsync run` processes (the built binary) on one
// PostgreSQL directory, a short lease, a file source rewritten every round
// and a SCIM push to a standby every round. Twenty times the leader is
// killed (SIGKILL) or frozen past its lease (SIGSTOP, then SIGCONT), half
// of the times while it applies a big change. Checked: at most one
// instance claims the leadership at any time, terms never overlap, no
// commit falls outside its own term, every change is applied exactly once
// (the audit), the directory converges, and every failover takes at most
// twice the lease.

const (
	chaosLease  = 1500 * time.Millisecond
	chaosRounds = 20
	chaosBase   = 200  // people in the first organisation
	chaosBig    = 1200 // people a big change adds
	chaosToken  = "chaos-push-token-0123456789"
)

// chaosOrg is the file source's organisation and what the audit must show.
type chaosOrg struct {
	path  string
	users []chaosUser
	// creates counts the people that must be created (by match key),
	// updates the given names each person must have been given once.
	creates map[string]bool
	updates map[string][]string
}

type chaosUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Given string `json:"given_name"`
	// Family and Status are constant.
	Family string `json:"family_name"`
	Status string `json:"status"`
}

func (o *chaosOrg) add(t *testing.T, round, n int) {
	for i := range n {
		email := fmt.Sprintf("r%02d-%04d@chaos.example", round, i)
		o.users = append(o.users, chaosUser{ID: fmt.Sprintf("u%02d-%04d", round, i), Email: email, Given: "New", Family: "Chaos", Status: "active"})
		o.creates[email] = true
	}
	o.write(t)
}

// rename gives n people a new given name that says the round.
func (o *chaosOrg) rename(t *testing.T, round, n int) {
	for i := range n {
		u := &o.users[(round*37+i*11)%len(o.users)]
		u.Given = fmt.Sprintf("R%02d-%d", round, i)
		o.updates[u.Email] = append(o.updates[u.Email], u.Given)
	}
	o.write(t)
}

// write replaces the file at once, so that no fetch reads half of it.
func (o *chaosOrg) write(t *testing.T) {
	b, err := json.Marshal(map[string]any{"users": o.users, "groups": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := o.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, o.path); err != nil {
		t.Fatal(err)
	}
}

// want is the given name of every person the directory must hold.
func (o *chaosOrg) want(pushed []string) map[string]string {
	m := make(map[string]string, len(o.users)+len(pushed))
	for _, u := range o.users {
		m[u.Email] = u.Given
	}
	for _, e := range pushed {
		m[e] = "Pushed"
	}
	return m
}

// chaosNode is one instance.
type chaosNode struct {
	name   string
	p      *serviceProcess
	public string // base URL of its SCIM push endpoint
	frozen bool
	dead   bool
}

// chaosCluster runs the three instances and watches their /status.
type chaosCluster struct {
	t        *testing.T
	bin, dir string
	dsn, org string
	db       *sql.DB

	mu    sync.Mutex
	nodes [3]*chaosNode
	gen   int
	// claims records every poll at which more than one instance said it
	// was the leader.
	claims []string
	polls  int
}

func (c *chaosCluster) start(slot int) *chaosNode {
	c.t.Helper()
	c.gen++
	name := fmt.Sprintf("node%d-g%02d", slot, c.gen)
	cfg := filepath.Join(c.dir, name+".yaml")
	body := fmt.Sprintf(`directory: {driver: postgres, dsn: %q}
ha: {lease: %s, instance: %s}
sources:
  - {name: hr, type: file, schedule: "@every 1s", config: {path: %q}}
%slicenses: [{name: basic, all_active: true}]
safety: {max_deactivations: 0, max_deactivation_percent: 0}
server:
  listen: 127.0.0.1:0
  public: {listen: 127.0.0.1:0}
`, c.dsn, chaosLease, name, c.org, scimSource("push", chaosToken, "50ms"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		c.t.Fatal(err)
	}
	p := startProcess(c.t, exec.Command(c.bin, "run", "--config", cfg, "--log-level", "debug"))
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(p.waitLog(`msg="public endpoint started"`, 10*time.Second))
	n := &chaosNode{name: name, p: p, public: "http://" + m[1] + "/scim/push/v2"}
	c.mu.Lock()
	c.nodes[slot] = n
	c.mu.Unlock()
	return n
}

// haDoc is the part of /status the test reads.
type haDoc struct {
	HA struct {
		Instance string `json:"instance"`
		Role     string `json:"role"`
		Epoch    int64  `json:"epoch"`
	} `json:"ha"`
}

var chaosClient = &http.Client{Timeout: 400 * time.Millisecond}

// status asks n for its role; false: it did not answer.
func (c *chaosCluster) status(n *chaosNode) (haDoc, bool) {
	var d haDoc
	resp, err := chaosClient.Get(n.p.base + "/status")
	if err != nil {
		return d, false
	}
	defer resp.Body.Close()
	return d, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&d) == nil
}

// watch polls every instance's /status every 50 ms until ctx ends.
func (c *chaosCluster) watch(ctx context.Context) {
	for ctx.Err() == nil {
		c.mu.Lock()
		nodes := slices.Clone(c.nodes[:])
		c.mu.Unlock()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var leaders []string
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if d, ok := c.status(n); ok && d.HA.Role == ha.RoleLeader {
					mu.Lock()
					leaders = append(leaders, fmt.Sprintf("%s (epoch %d)", d.HA.Instance, d.HA.Epoch))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		c.mu.Lock()
		c.polls++
		if len(leaders) > 1 {
			c.claims = append(c.claims, time.Now().Format("15:04:05.000")+": "+strings.Join(leaders, ", "))
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leader waits for an instance that answers as the leader of an epoch
// after the given one.
func (c *chaosCluster) leader(after int64, timeout time.Duration) (int, int64) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if n.frozen || n.dead {
				continue
			}
			if d, ok := c.status(n); ok && d.HA.Role == ha.RoleLeader && d.HA.Epoch > after {
				return i, d.HA.Epoch
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no new leader (after epoch %d) within %v", after, timeout)
	return 0, 0
}

// people reads the directory's active people: email → given name.
func (c *chaosCluster) people() map[string]string {
	c.t.Helper()
	rows, err := c.db.Query(`SELECT email, given_name FROM people WHERE active = 1`)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var e, g string
		if err := rows.Scan(&e, &g); err != nil {
			c.t.Fatal(err)
		}
		m[e] = g
	}
	return m
}

// converge waits until the directory holds want.
func (c *chaosCluster) converge(want map[string]string, what string) {
	c.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var got map[string]string
	for time.Now().Before(deadline) {
		if got = c.people(); equalMaps(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	missing, wrong := 0, 0
	for e, g := range want {
		switch h, ok := got[e]; {
		case !ok:
			missing++
		case h != g:
			wrong++
		}
	}
	c.t.Fatalf("%s: the directory did not converge: %d people, want %d; %d missing, %d with a wrong name", what, len(got), len(want), missing, wrong)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var applyingChanges = regexp.MustCompile(`msg=applying changes=(\d+)`)

// waitApplying waits for n to log the start of an apply of at least min
// changes, beyond the first skip such lines.
func waitApplying(t *testing.T, n *chaosNode, skip, min int) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		seen := 0
		for _, m := range applyingChanges.FindAllStringSubmatch(n.p.stderr.String(), -1) {
			if k, _ := strconv.Atoi(m[1]); k >= min {
				seen++
			}
		}
		if seen > skip {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// waitLogCount waits for n to log a line containing s more than skip times.
func waitLogCount(t *testing.T, n *chaosNode, s string, skip int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for n.p.count(s) <= skip {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v", n.name, s, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countBig(n *chaosNode) int {
	seen := 0
	for _, m := range applyingChanges.FindAllStringSubmatch(n.p.stderr.String(), -1) {
		if k, _ := strconv.Atoi(m[1]); k >= chaosBig {
			seen++
		}
	}
	return seen
}

func TestHAChaos(t *testing.T) {
	dsn := pgtest.DSN(t)
	bin := buildLearnsync(t)
	dir := t.TempDir()
	c := &chaosCluster{t: t, bin: bin, dir: dir, dsn: dsn, org: filepath.Join(dir, "org.json")}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c.db = db
	org := &chaosOrg{path: c.org, creates: map[string]bool{}, updates: map[string][]string{}}
	org.add(t, 0, chaosBase)
	for i := range c.nodes {
		c.start(i)
	}
	wctx, stopWatch := context.WithCancel(t.Context())
	watched := make(chan struct{})
	go func() { defer close(watched); c.watch(wctx) }()
	defer func() { stopWatch(); <-watched }()

	var pushed []string
	_, epoch := c.leader(0, 3*chaosLease)
	c.converge(org.want(pushed), "the first import")

	var failovers []time.Duration
	hits := 0
	for round := 1; round <= chaosRounds; round++ {
		slot, ep := c.leader(epoch-1, 3*chaosLease)
		epoch = ep
		old := c.nodes[slot]
		freeze, during := round%2 == 0, round%4 >= 2
		// A push to a standby: it takes it, and wakes the leader.
		standby := c.nodes[(slot+1+round%2)%3]
		email := fmt.Sprintf("push-%02d@chaos.example", round)
		woken := old.p.count(`msg="woken by a push on another instance"`)
		pushClient{t: t, base: standby.public, token: chaosToken}.create("/Users", scimUser(email, "Pushed"))
		waitLogCount(t, old, `msg="woken by a push on another instance"`, woken, 2*chaosLease)
		pushed = append(pushed, email)
		org.creates[email] = true

		org.rename(t, round, 5)
		if during {
			skip := countBig(old)
			org.add(t, round, chaosBig)
			if !waitApplying(t, old, skip, chaosBig) {
				t.Fatalf("round %d: %s did not start applying the big change", round, old.name)
			}
		} else {
			c.converge(org.want(pushed), fmt.Sprintf("round %d before the failure", round))
		}
		before := len(c.people())
		sig := syscall.SIGKILL
		if freeze {
			sig = syscall.SIGSTOP
		}
		hit := time.Now()
		failed := old.p.count(`msg="run failed`) + old.p.count(`msg="run refused`) + old.p.count(`msg="run finished"`) + old.p.count(`msg="run abandoned`)
		old.p.signal(sig)
		c.mu.Lock()
		old.frozen, old.dead = freeze, !freeze
		c.mu.Unlock()
		if during && len(c.people()) == before {
			hits++ // the big change had not committed: the failure hit the apply
		}
		next, nep := c.leader(epoch, 4*chaosLease)
		failover := c.termStart(nep).Sub(hit)
		failovers = append(failovers, failover)
		t.Logf("round %d: %s %s%s; %s leads (epoch %d) after %v",
			round, map[bool]string{true: "froze", false: "killed"}[freeze], old.name,
			map[bool]string{true: " while it applied", false: ""}[during], c.nodes[next].name, nep, failover.Round(time.Millisecond))
		if failover > 2*chaosLease {
			t.Errorf("round %d: failover took %v, more than 2 × lease (%v)", round, failover, 2*chaosLease)
		}
		epoch = nep
		// The new leader applies everything while the old one is still
		// frozen or dead.
		c.converge(org.want(pushed), fmt.Sprintf("round %d after the failover", round))
		if freeze {
			old.p.signal(syscall.SIGCONT)
			c.mu.Lock()
			old.frozen = false
			c.mu.Unlock()
			c.waitStandby(old)
			if during {
				c.waitFailedApply(old, failed)
			}
		} else {
			c.start(slot)
		}
	}
	stopWatch()
	<-watched
	c.checkTerms()
	c.checkAudit(org)
	c.converge(org.want(pushed), "the end")
	logFailovers(t, failovers)
	if hits == 0 {
		t.Errorf("no failure hit an apply in progress")
	}
	t.Logf("%d of %d failures during an apply hit it before its commit; %d status polls", hits, chaosRounds/2, c.polls)
	if len(c.claims) > 0 {
		t.Errorf("more than one instance claimed the leadership at once:\n%s", strings.Join(c.claims, "\n"))
	}
}

// termStart is when the term of epoch began.
func (c *chaosCluster) termStart(epoch int64) time.Time {
	c.t.Helper()
	var at time.Time
	if err := c.db.QueryRow(`SELECT started_at FROM learnsync_terms WHERE epoch = $1`, epoch).Scan(&at); err != nil {
		c.t.Fatal(err)
	}
	return at
}

// waitFailedApply waits for a leader resumed in the middle of an apply to
// log that the apply did not commit: it saw it no longer leads and
// abandoned it, the server had ended its transaction (idle in transaction
// past the lease: "bad connection" when the client sees it first), or its
// fence refused the commit.
func (c *chaosCluster) waitFailedApply(n *chaosNode, skip int) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ends []string
		for _, l := range strings.Split(n.p.stderr.String(), "\n") {
			if strings.Contains(l, `msg="run failed`) || strings.Contains(l, `msg="run refused`) || strings.Contains(l, `msg="run finished"`) ||
				strings.Contains(l, `msg="run abandoned`) {
				ends = append(ends, l)
			}
		}
		if len(ends) > skip {
			if l := ends[skip]; !strings.Contains(l, "idle-in-transaction timeout") && !strings.Contains(l, "bad connection") &&
				!strings.Contains(l, "no longer the leader") && !strings.Contains(l, "no longer leads") {
				c.t.Errorf("%s, resumed during its apply, did not fail it: %s", n.name, l)
			}
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s, resumed during its apply, did not end its run within 15s", n.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStandby waits for a resumed leader to see it was deposed.
func (c *chaosCluster) waitStandby(n *chaosNode) {
	c.t.Helper()
	deadline := time.Now().Add(2 * chaosLease)
	for time.Now().Before(deadline) {
		if d, ok := c.status(n); ok && d.HA.Role == ha.RoleStandby {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("%s, resumed, does not step down", n.name)
}

// checkTerms: terms follow each other without overlapping, and every
// commit the fence let through lies within its own term.
func (c *chaosCluster) checkTerms() {
	c.t.Helper()
	ctx := c.t.Context()
	terms, err := ha.Terms(ctx, c.db)
	if err != nil {
		c.t.Fatal(err)
	}
	byEpoch := map[int64]int{}
	for i, tm := range terms {
		byEpoch[tm.Epoch] = i
		if i > 0 && tm.StartedAt.Before(terms[i-1].HeldUntil) {
			c.t.Errorf("term %d (%s) began at %v, before term %d (%s) ended at %v",
				tm.Epoch, tm.Instance, tm.StartedAt, terms[i-1].Epoch, terms[i-1].Instance, terms[i-1].HeldUntil)
		}
	}
	if len(terms) < chaosRounds+1 {
		c.t.Errorf("%d terms, want at least %d", len(terms), chaosRounds+1)
	}
	applies, err := ha.Applies(ctx, c.db)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, a := range applies {
		i, ok := byEpoch[a.Epoch]
		if !ok {
			c.t.Errorf("an apply of %s under epoch %d, which is no term", a.Instance, a.Epoch)
			continue
		}
		tm := terms[i]
		end := tm.HeldUntil
		if i+1 < len(terms) && terms[i+1].StartedAt.Before(end) {
			end = terms[i+1].StartedAt
		}
		if a.Instance != tm.Instance || a.At.Before(tm.StartedAt) || a.At.After(end) {
			c.t.Errorf("an apply of %s under epoch %d at %v, outside its term (%s, %v to %v)",
				a.Instance, a.Epoch, a.At, tm.Instance, tm.StartedAt, end)
		}
	}
	var runs int
	if err := c.db.QueryRow(`SELECT count(*) FROM runs`).Scan(&runs); err != nil {
		c.t.Fatal(err)
	}
	if len(applies) < runs {
		c.t.Errorf("%d runs recorded but only %d fenced applies", runs, len(applies))
	}
}

// checkAudit: every person was created exactly once, and every rename is
// in the audit exactly once.
func (c *chaosCluster) checkAudit(org *chaosOrg) {
	c.t.Helper()
	rows, err := c.db.Query(`SELECT action, after FROM audit_events WHERE object_type = 'person'`)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	created := map[string]int{}
	renamed := map[string]int{} // email + given name
	for rows.Next() {
		var action, after string
		if err := rows.Scan(&action, &after); err != nil {
			c.t.Fatal(err)
		}
		var a struct {
			Key   string `json:"match_key"`
			Given string `json:"given_name"`
		}
		json.Unmarshal([]byte(after), &a)
		switch action {
		case "person.create":
			created[a.Key]++
		case "person.update":
			// The update's after names the changed fields only; the
			// person is in the directory under the name it was given.
			renamed[a.Given]++
		}
	}
	for key, n := range created {
		if n != 1 || !org.creates[key] {
			c.t.Errorf("%s was created %d times (expected: %v)", key, n, org.creates[key])
		}
	}
	for key := range org.creates {
		if created[key] == 0 {
			c.t.Errorf("%s was never created", key)
		}
	}
	for email, names := range org.updates {
		for _, g := range names {
			if renamed[g] != 1 {
				c.t.Errorf("the rename of %s to %s is in the audit %d times, want once", email, g, renamed[g])
			}
		}
	}
}

// logFailovers logs the failover times' min, median and max.
func logFailovers(t *testing.T, d []time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	t.Logf("failover (failure → new term) over %d rounds, lease %v: min %v, median %v, max %v",
		len(s), chaosLease, s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
