package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
	"github.com/learnsync/learnsync/directory"
)

// TestSecretsNeverShow gives learnsync a secret for each IdP (from the
// environment and from a _file), runs every command at every log level and
// in both log formats, with the right secrets and with wrong ones, runs the
// service, and looks for the secrets everywhere: stdout, stderr, the run
// records and audit events, the export, /status and /metrics, and every file
// learnsync wrote.
func TestSecretsNeverShow(t *testing.T) {
	o := oktatest.New(t)
	o.AddPerson("ann@corp.example", "Ann", "Lee", oktatest.StatusActive)
	e := entratest.New(t)
	e.AddUser(entratest.User{UserPrincipalName: "bo@corp.example", Mail: "bo@corp.example", GivenName: "Bo", Surname: "E"})
	ol := onelogintest.New(t)
	ol.AddUser(onelogintest.User{Username: "cy", Email: "cy@corp.example", Firstname: "Cy", Lastname: "O", Status: 1, State: 1})

	c := newCLI(t)
	wrong := map[string]string{
		"OKTA_API_TOKEN":         "00WRONG-okta-token-0123456789",
		"ONELOGIN_CLIENT_SECRET": "wrong-onelogin-secret-0123456789",
	}
	wrongEntra := "wrong-entra-secret-0123456789"
	g := &secretGuard{c: c, secrets: []string{o.Token, e.ClientSecret, ol.ClientSecret,
		wrong["OKTA_API_TOKEN"], wrong["ONELOGIN_CLIENT_SECRET"], wrongEntra}}
	secretFile := c.write("entra-secret", e.ClientSecret+"\n")
	entraBlock := strings.Replace(e.ConfigYAML("      "), "client_secret: "+e.ClientSecret, "client_secret_file: "+secretFile, 1)
	if !strings.Contains(entraBlock, "client_secret_file") {
		t.Fatalf("could not template the secret file in:\n%s", entraBlock)
	}
	c.write("learnsync.yaml", threeIdPConfig(t, o, entraBlock, ol, `licenses:
  - {name: basic, all_active: true}
server: {listen: "127.0.0.1:0"}
`))
	c.env["OKTA_API_TOKEN"] = o.Token
	c.env["ONELOGIN_CLIENT_SECRET"] = ol.ClientSecret

	for _, format := range []string{"text", "json"} {
		for _, level := range []string{"debug", "info", "warn", "error"} {
			args := []string{"--log-format", format, "--log-level", level}
			g.mustRun(0, append([]string{"validate"}, args...)...)
			g.mustRun(0, append([]string{"run", "--once"}, args...)...)
			g.mustRun(0, append([]string{"plan", "--output", "json"}, args...)...)
			g.mustRun(0, append([]string{"plan"}, args...)...)
		}
	}
	if ex := g.export(); len(ex.Users) != 3 {
		t.Fatalf("export has %d users, want 3", len(ex.Users))
	}

	// Wrong secrets: the errors name the sources, never the secrets.
	c.env["OKTA_API_TOKEN"] = wrong["OKTA_API_TOKEN"]
	c.env["ONELOGIN_CLIENT_SECRET"] = wrong["ONELOGIN_CLIENT_SECRET"]
	c.write("entra-secret", wrongEntra)
	_, errs := g.mustRun(1, "run", "--once", "--log-level", "debug", "--log-format", "json")
	for _, src := range []string{"okta", "entra", "onelogin"} {
		if !strings.Contains(errs, `"source":"`+src+`"`) {
			t.Errorf("the log does not name the failed source %s:\n%s", src, errs)
		}
	}
	g.mustRun(1, "plan", "--log-level", "debug")
	g.mustRun(0, "status")
	g.mustRun(0, "status", "--output", "json")

	// The run records and audit events, read from the database itself.
	ctx := context.Background()
	store, err := directory.Open(ctx, c.path("learnsync.db"), directory.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := store.Runs(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	g.check("run records", fmt.Sprintf("%+v", runs))
	evs, err := store.AuditEvents(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatal("no audit events to check")
	}
	g.check("audit events", fmt.Sprintf("%+v", evs))
	store.Close()

	// The service: /status, /metrics, its log.
	c.env["OKTA_API_TOKEN"] = o.Token
	c.env["ONELOGIN_CLIENT_SECRET"] = ol.ClientSecret
	c.write("entra-secret", e.ClientSecret)
	t.Setenv("OKTA_API_TOKEN", o.Token)
	t.Setenv("ONELOGIN_CLIENT_SECRET", ol.ClientSecret)
	p := startService(t, c.dir, "run", "--config", c.path("learnsync.yaml"), "--log-level", "debug")
	p.waitReady(30 * time.Second)
	for _, path := range []string{"/status", "/metrics", "/readyz", "/healthz"} {
		code, body := p.get(path)
		if code != 200 {
			t.Errorf("GET %s = %d", path, code)
		}
		g.check("GET "+path, string(body))
	}
	p.signal(syscall.SIGTERM)
	if code := p.exitCode(30 * time.Second); code != 0 {
		t.Errorf("service exit code %d", code)
	}
	g.check("the service's log", p.stderr.String())

	// Every file learnsync wrote, the database first; the database is private.
	for _, name := range []string{"learnsync.db", "learnsync.db.lock"} {
		fi, err := os.Stat(filepath.Join(c.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", name, fi.Mode().Perm())
		}
	}
	g.secrets = g.secrets[:0]
	for _, s := range []string{o.Token, ol.ClientSecret, wrong["OKTA_API_TOKEN"], wrong["ONELOGIN_CLIENT_SECRET"], wrongEntra} {
		g.secrets = append(g.secrets, s)
	}
	g.checkFiles() // the entra secret file itself holds the entra secret, by design
}

// TestTLSVerificationCannotBeTurnedOff: no connector has a switch to skip
// certificate checks (the keys people try are unknown keys), and a source
// whose server is not trusted fails instead of going on unverified.
func TestTLSVerificationCannotBeTurnedOff(t *testing.T) {
	o := oktatest.New(t)
	o.AddPerson("ann@corp.example", "Ann", "Lee", oktatest.StatusActive)
	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = o.Token
	for _, typ := range []string{"okta", "entra", "onelogin"} {
		for _, key := range []string{"insecure_skip_verify", "tls_insecure", "skip_tls_verify", "verify_tls", "insecure"} {
			c.write("learnsync.yaml", fmt.Sprintf("directory: {dsn: x.db}\nsources:\n  - {name: s, type: %s, config: {%s: true}}\n", typ, key))
			out, _ := c.mustRun(2, "validate")
			if !strings.Contains(out, "sources[0].config."+key+": unknown key") {
				t.Errorf("%s accepts %s:\n%s", typ, key, out)
			}
		}
	}
	// Without ca_file, the fake's private CA is not trusted: the fetch fails
	// (at once, naming the certificate), nothing is created.
	c.write("learnsync.yaml", fmt.Sprintf("directory: {dsn: learnsync.db}\nsources:\n  - {name: okta, type: okta, config: {org_url: %q, api_token: \"${OKTA_API_TOKEN}\"}}\n", o.URL()))
	start := time.Now()
	_, errs := c.mustRun(1, "run", "--once")
	if !strings.Contains(errs, "certificate") {
		t.Errorf("an untrusted server's error does not say why:\n%s", errs)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("an untrusted certificate was retried for %v", took)
	}
}
