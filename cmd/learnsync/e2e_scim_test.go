package main

import (
	"github.com/learnsync/learnsync/directory/dirtest"

	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/internal/testkit"
)

const (
	entraToken = "entra-push-token-0123456789"
	oktaToken  = "okta-push-token-0123456789"
)

// pushClient sends SCIM requests to one scim source of a running service.
type pushClient struct {
	t     *testing.T
	base  string
	token string
}

func (c pushClient) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

var idField = regexp.MustCompile(`"id":"([^"]+)"`)

// create posts a resource and returns its id.
func (c pushClient) create(endpoint, body string) string {
	c.t.Helper()
	code, out := c.do("POST", endpoint, body)
	if code != http.StatusCreated {
		c.t.Fatalf("POST %s: %d %s", endpoint, code, out)
	}
	return idField.FindStringSubmatch(out)[1]
}

func scimUser(email, given string) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"active":true,
		"name":{"givenName":%q,"familyName":"Push"},"emails":[{"primary":true,"type":"work","value":%q}]}`, email, given, email)
}

// waitExport polls `learnsync export` until ok holds.
func waitExport(t *testing.T, c *cli, what string, ok func(exportDoc) bool) exportDoc {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		doc := c.export()
		if ok(doc) {
			return doc
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s; export: %+v", what, doc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// person returns the exported person with email, or nil.
func (d exportDoc) personByEmail(email string) *struct {
	Active     bool
	Licenses   []string
	Identities int
} {
	for _, u := range d.Users {
		if strings.EqualFold(u.Email, email) {
			return &struct {
				Active     bool
				Licenses   []string
				Identities int
			}{u.Active, u.Licenses, len(u.Identities)}
		}
	}
	return nil
}

// TestEndToEndSCIMPush runs the service with two scim sources and a pulled
// Okta source: Entra pushes people and a group a license rule names (seats
// granted), deactivates a holder with active "False" (the seat goes to the
// one waiting, in the same reconcile), and Okta pushes a person the pulled
// Okta source has too (one person, two identities).
func TestEndToEndSCIMPush(t *testing.T) { dirtest.Each(t, testEndToEndSCIMPush) }

func testEndToEndSCIMPush(t *testing.T) {
	srv := oktatest.New(t)
	srv.AddPerson("carol@example.com", "Carol", "Pulled", oktatest.StatusActive)
	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = srv.Token
	t.Setenv("OKTA_API_TOKEN", srv.Token)
	c.write("learnsync.yaml", "directory: {dsn: learnsync.db}\nsources:\n"+scimSource("entra-push", entraToken, "50ms")+
		scimSource("okta-push", oktaToken, "50ms")+fmt.Sprintf(`%slicenses:
  - name: learning-pro
    seats: 1
    groups: ["entra-push/Learners"]
safety: {max_deactivation_percent: 70}
server:
  listen: 127.0.0.1:0
  public: {listen: 127.0.0.1:0}
`, oktaSource(t, srv)))
	p := startService(t, c.dir, "run", "--config", c.path("learnsync.yaml"))
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(p.waitLog(`msg="public endpoint started"`, 10*time.Second))
	p.waitReady(15 * time.Second)
	entra := pushClient{t: t, base: "http://" + m[1] + "/scim/entra-push/v2", token: entraToken}
	okta := pushClient{t: t, base: "http://" + m[1] + "/scim/okta-push/v2", token: oktaToken}

	ada := entra.create("/Users", scimUser("ada@example.com", "Ada"))
	bob := entra.create("/Users", scimUser("bob@example.com", "Bob"))
	entra.create("/Groups", `{"displayName":"Learners","members":[{"value":"`+ada+`"},{"value":"`+bob+`"}]}`)
	doc := waitExport(t, c, "seat granted", func(d exportDoc) bool {
		a := d.personByEmail("ada@example.com")
		return a != nil && slices.Contains(a.Licenses, "learning-pro")
	})
	if d := doc.group("entra-push", "Learners"); d < 0 || len(doc.Groups[d].Members) != 2 {
		t.Errorf("group entra-push/Learners: %+v", doc.Groups)
	}
	if b := doc.personByEmail("bob@example.com"); b == nil || len(b.Licenses) != 0 {
		t.Errorf("bob should wait for the seat: %+v", b)
	}

	code, out := entra.do("PATCH", "/Users/"+ada, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	if code != http.StatusNoContent {
		t.Fatalf("PATCH active: %d %s", code, out)
	}
	doc = waitExport(t, c, "holder deactivated", func(d exportDoc) bool {
		a := d.personByEmail("ada@example.com")
		return a != nil && !a.Active
	})
	if b := doc.personByEmail("bob@example.com"); b == nil || !slices.Contains(b.Licenses, "learning-pro") {
		t.Errorf("the seat did not go to bob in the run that deactivated ada: %+v", b)
	}
	if a := doc.personByEmail("ada@example.com"); len(a.Licenses) != 0 {
		t.Errorf("ada keeps a seat: %+v", a)
	}

	okta.create("/Users", scimUser("carol@example.com", "Carol"))
	waitExport(t, c, "one person with two identities", func(d exportDoc) bool {
		carol := d.personByEmail("carol@example.com")
		return carol != nil && carol.Identities == 2
	})
	n := 0
	for _, u := range c.export().Users {
		if strings.EqualFold(u.Email, "carol@example.com") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d people for carol, want 1", n)
	}

	fams := p.metrics()
	if v := testkit.MetricValue(t, fams, "learnsync_scim_requests_total", "source=entra-push", "resource=Users", "method=POST", "status=201"); v != 2 {
		t.Errorf("learnsync_scim_requests_total{entra-push,Users,POST,201} = %v, want 2", v)
	}
	if _, ok := fams["learnsync_scim_request_duration_seconds"]; !ok {
		t.Error("no learnsync_scim_request_duration_seconds")
	}
	for _, tok := range []string{entraToken, oktaToken, srv.Token} {
		if strings.Contains(p.stderr.String(), tok) {
			t.Error("a token appears in the log")
		}
	}
	if !strings.Contains(p.stderr.String(), `msg="scim request" source=entra-push method=PATCH`) {
		t.Error("no request log line")
	}
	// A push is reconciled incrementally: from the change log its write
	// left, not by a full reconcile.
	if !strings.Contains(p.stderr.String(), `trigger=push reconcile=incremental result=ok`) {
		t.Error("no push-triggered run was incremental")
	}

	// run --once reconciles the pushed mirrors as they stand: nothing to do.
	p.signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("service exit code %d", code)
	}
	c.runOnce(0)
	if mode, result := (&secretGuard{c: c}).sourceMode("entra-push"); mode != "" || result != "unchanged" {
		t.Errorf("run --once: entra-push mode %q result %q, want unchanged", mode, result)
	}
}

// scimSource is the config entry of a scim source.
func scimSource(name, token, delay string) string {
	return fmt.Sprintf("  - name: %s\n    type: scim\n    config: {token: %s, reconcile_delay: %s}\n", name, token, delay)
}

// TestEndToEndSCIMPushBlocked: pushes that would deactivate more people than
// the safety limits allow are accepted into the source's mirror (the IdP
// gets its 204), but the reconcile they ask for is blocked and recorded,
// and the directory keeps everyone until an admin applies the plan.
func TestEndToEndSCIMPushBlocked(t *testing.T) { dirtest.Each(t, testEndToEndSCIMPushBlocked) }

func testEndToEndSCIMPushBlocked(t *testing.T) {
	c := newCLI(t)
	// One reconcile for the whole burst of PATCHes below: they are sent
	// within milliseconds, well inside the delay.
	c.write("learnsync.yaml", "directory: {dsn: learnsync.db}\nsources:\n"+scimSource("entra-push", entraToken, "1s")+`
safety: {max_deactivations: 0, max_deactivation_percent: 50}
server:
  listen: 127.0.0.1:0
  public: {listen: 127.0.0.1:0}
`)
	p := startService(t, c.dir, "run", "--config", c.path("learnsync.yaml"))
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(p.waitLog(`msg="public endpoint started"`, 10*time.Second))
	p.waitReady(15 * time.Second)
	entra := pushClient{t: t, base: "http://" + m[1] + "/scim/entra-push/v2", token: entraToken}

	var ids []string
	for _, name := range []string{"ann", "ben", "cat", "dov"} {
		ids = append(ids, entra.create("/Users", scimUser(name+"@example.com", name)))
	}
	activeCount := func(d exportDoc) int {
		n := 0
		for _, u := range d.Users {
			if u.Active {
				n++
			}
		}
		return n
	}
	waitExport(t, c, "four people", func(d exportDoc) bool { return activeCount(d) == 4 })

	for _, id := range ids[:3] { // 3 of 4: 75 % > 50 %
		code, out := entra.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
		if code != http.StatusNoContent {
			t.Fatalf("PATCH active: %d %s", code, out)
		}
	}
	line := p.waitLog("result=blocked", 15*time.Second)
	if !strings.Contains(line, "trigger=push") || !strings.Contains(line, "deactivated=3") {
		t.Errorf("blocked run: %s", line)
	}
	// The push was accepted: the source's resource says what the IdP sent.
	if code, out := entra.do("GET", "/Users/"+ids[0], ""); code != http.StatusOK || !strings.Contains(out, `"active":false`) {
		t.Errorf("GET after the PATCH: %d %s", code, out)
	}
	if n := activeCount(c.export()); n != 4 {
		t.Errorf("%d active people after the blocked run, want all 4", n)
	}
	p.signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("service exit code %d", code)
	}
	// The plan is still refused, until an admin applies it once.
	c.mustRun(3, "run", "--once")
	c.mustRun(0, "run", "--once", "--allow-mass-deactivation")
	if n := activeCount(c.export()); n != 1 {
		t.Errorf("%d active people after --allow-mass-deactivation, want 1", n)
	}
}
