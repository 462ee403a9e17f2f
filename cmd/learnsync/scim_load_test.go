package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/directory/dirtest"
)

// Counts of TestSCIMPushLoad: each client makes loadWrites writes (15
// creates, 5 PATCHes, 5 DELETEs) and two requests that must fail.
const (
	loadClients = 20
	loadWrites  = 25
	loadToken   = "load-push-token-0123456789"
)

// pushed is what a client knows it wrote, and was acknowledged, of one user.
type pushed struct {
	id, userName, title string
	active, deleted     bool
}

// loadClient is one client of TestSCIMPushLoad; its userNames are its own.
type loadClient struct {
	n      int
	base   string
	client *http.Client
	users  []*pushed
	errs   []string // what went wrong: a 5xx, an unprovoked 4xx, a failed request
	// halfway is called once half of the writes are made; it returns when
	// the client may go on (the test waits there for a reconcile, so that
	// reconciles always fall between writes, however fast the writes are).
	halfway func()
}

func (l *loadClient) fail(format string, args ...any) {
	l.errs = append(l.errs, fmt.Sprintf("client %d: ", l.n)+fmt.Sprintf(format, args...))
}

// send makes one request and returns its status and body (0 on a failed
// request, which is recorded).
func (l *loadClient) send(method, path, body string) (int, string) {
	req, err := http.NewRequest(method, l.base+path, strings.NewReader(body))
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return 0, ""
	}
	req.Header.Set("Authorization", "Bearer "+loadToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := l.client.Do(req)
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// expect records a failure unless the status is want.
func (l *loadClient) expect(what string, code int, body string, want int) bool {
	if code != want && code != 0 {
		l.fail("%s: status %d, want %d: %s", what, code, want, body)
	}
	return code == want
}

// run makes the client's writes: user i is created at step i when i%5 < 3,
// step i%5 == 3 PATCHes user i-2 (its title; at i%10 == 3 also active
// false), step i%5 == 4 DELETEs user i-4. On purpose it also POSTs an
// existing userName in another case (409) and PATCHes a deleted user (404).
func (l *loadClient) run() {
	byStep := map[int]*pushed{}
	for i := range loadWrites {
		if i == loadWrites/2 && l.halfway != nil {
			l.halfway()
		}
		switch i % 5 {
		case 0, 1, 2:
			u := &pushed{userName: fmt.Sprintf("load%02d-%02d@example.com", l.n, i), active: true}
			code, out := l.send("POST", "/Users", scimUser(u.userName, fmt.Sprintf("L%d", i)))
			if l.expect("POST "+u.userName, code, out, http.StatusCreated) {
				u.id = idField.FindStringSubmatch(out)[1]
				l.users = append(l.users, u)
				byStep[i] = u
			}
		case 3:
			u := byStep[i-2]
			title, active := fmt.Sprintf("Title %d", i), i%10 != 3
			code, out := l.send("PATCH", "/Users/"+u.id, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","path":"title","value":%q},{"op":"replace","path":"active","value":%t}]}`, title, active))
			if l.expect("PATCH "+u.userName, code, out, http.StatusNoContent) {
				u.title, u.active = title, active
			}
		case 4:
			u := byStep[i-4]
			code, out := l.send("DELETE", "/Users/"+u.id, "")
			if l.expect("DELETE "+u.userName, code, out, http.StatusNoContent) {
				u.deleted = true
			}
		}
		switch {
		case i == 10 && byStep[1] != nil:
			code, out := l.send("POST", "/Users", scimUser(strings.ToUpper(byStep[1].userName), "Dup"))
			l.expect("duplicate POST", code, out, http.StatusConflict)
		case i == 20 && byStep[0] != nil && byStep[0].deleted:
			code, out := l.send("PATCH", "/Users/"+byStep[0].id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","path":"title","value":"gone"}]}`)
			l.expect("PATCH of a deleted user", code, out, http.StatusNotFound)
		}
	}
}

// TestSCIMPushLoad runs the service with a scim source whose reconcile_delay
// is short, so that reconciles run while 20 clients push creates, PATCHes
// and DELETEs at once: no 5xx, no 4xx but the provoked ones, every
// acknowledged write there exactly once afterwards, and, once the last
// reconcile ran, the directory has exactly the pushed active people.
func TestSCIMPushLoad(t *testing.T) { dirtest.Each(t, testSCIMPushLoad) }

func testSCIMPushLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	c := newCLI(t)
	// Safety limits off: the deletions must not block a run.
	c.write("learnsync.yaml", fmt.Sprintf(`
sources: [{name: load-push, type: scim, config: {token: %s, reconcile_delay: 20ms}}]
directory: {dsn: learnsync.db}
safety: {max_deactivations: 0, max_deactivation_percent: 0}
server: {listen: "127.0.0.1:0", public: {listen: "127.0.0.1:0"}}
`, loadToken))
	p := startService(t, c.dir, "run", "--config", c.path("learnsync.yaml"))
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(p.waitLog(`msg="public endpoint started"`, 10*time.Second))
	p.waitReady(15 * time.Second)
	base := "http://" + m[1] + "/scim/load-push/v2"
	tr := &http.Transport{MaxIdleConnsPerHost: loadClients}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	clients := make([]*loadClient, loadClients)
	start := time.Now()
	var wg, half sync.WaitGroup
	resume := make(chan struct{})
	half.Add(loadClients)
	for n := range clients {
		clients[n] = &loadClient{n: n, base: base, client: client, halfway: func() { half.Done(); <-resume }}
		wg.Go(clients[n].run)
	}
	half.Wait()
	waitCount(t, p, "trigger=push", 1, 10*time.Second) // a reconcile of the first half
	close(resume)
	wg.Wait()
	waitCount(t, p, "trigger=push", 2, 10*time.Second) // and one of the second
	t.Logf("%d clients, %d writes each: %s; push-triggered runs so far: %d", loadClients, loadWrites,
		time.Since(start).Round(time.Millisecond), p.count("trigger=push"))
	var all []*pushed
	for _, l := range clients {
		for _, e := range l.errs {
			t.Error(e)
		}
		all = append(all, l.users...)
	}
	checkPushed(t, pushClient{t: t, base: base, token: loadToken}, all)
	checkDirectory(t, c, all)
	for _, bad := range []string{"result=blocked", "result=failed", "level=ERROR"} {
		if p.count(bad) > 0 {
			t.Errorf("the log has %q", bad)
		}
	}
}

// waitCount waits until the service's log has s at least n times.
func waitCount(t *testing.T, p *serviceProcess, s string, n int, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); p.count(s) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the log has %q %d times after %s, want %d", s, p.count(s), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkPushed reads every acknowledged user back, by id and by a filter on
// its userName, and the whole list: each one there once, as last written;
// the deleted ones gone.
func checkPushed(t *testing.T, pc pushClient, all []*pushed) {
	t.Helper()
	type user struct {
		ID, UserName, Title string
		Active              bool
	}
	var list struct {
		TotalResults int
		Resources    []user
	}
	present := 0
	for _, u := range all {
		code, out := pc.do("GET", "/Users/"+u.id, "")
		if u.deleted {
			if code != http.StatusNotFound {
				t.Errorf("GET deleted %s: %d, want 404", u.userName, code)
			}
		} else if got := (user{}); code != http.StatusOK || json.Unmarshal([]byte(out), &got) != nil ||
			got.UserName != u.userName || got.Title != u.title || got.Active != u.active {
			t.Errorf("GET %s: %d %s, want %+v", u.userName, code, out, *u)
		}
		code, out = pc.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+u.userName+`"`), "")
		want := 1
		if u.deleted {
			want = 0
		} else {
			present++
		}
		if code != http.StatusOK || json.Unmarshal([]byte(out), &list) != nil || list.TotalResults != want ||
			(want == 1 && list.Resources[0].ID != u.id) {
			t.Errorf("filter userName eq %s: %d %s, want %d result(s) with id %s", u.userName, code, out, want, u.id)
		}
	}
	code, out := pc.do("GET", "/Users?count=1000", "")
	if code != http.StatusOK || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("list: %d %s", code, out)
	}
	names := map[string]int{}
	for _, r := range list.Resources {
		names[strings.ToLower(r.UserName)]++
	}
	for n, k := range names {
		if k != 1 {
			t.Errorf("userName %s listed %d times", n, k)
		}
	}
	if list.TotalResults != present || len(list.Resources) != present {
		t.Errorf("list: %d users (%d on the page), want %d", list.TotalResults, len(list.Resources), present)
	}
}

// checkDirectory waits until the export's active people are exactly the
// pushed users that are there and active.
func checkDirectory(t *testing.T, c *cli, all []*pushed) {
	t.Helper()
	var want []string
	for _, u := range all {
		if !u.deleted && u.active {
			want = append(want, u.userName)
		}
	}
	slices.Sort(want)
	if len(want) != loadClients*7 {
		t.Fatalf("%d pushed active users, want %d", len(want), loadClients*7)
	}
	active := func(d exportDoc) []string {
		var got []string
		for _, u := range d.Users {
			if u.Active {
				got = append(got, strings.ToLower(u.Email))
			}
		}
		slices.Sort(got)
		return got
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := active(c.export())
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("export: %d active people, want %d (the pushed active users)", len(got), len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
