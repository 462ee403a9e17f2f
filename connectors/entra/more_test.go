package entra_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/fault"
	"github.com/learnsync/learnsync/internal/testkit"
)

func TestClientCertificateAuth(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, pkcs8 := testkit.SelfSigned(t, 1, key)
	dir := t.TempDir()
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
	if err := os.WriteFile(filepath.Join(dir, "entra.pem"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.SetClientCertificate(&key.PublicKey)

	// A relative path is relative to the config file's directory.
	h := newHarnessIn(t, srv, dir, func(c *entra.Config) {
		c.Auth = entra.AuthClientCertificate
		c.ClientSecret = ""
		c.ClientCertificateFile = "entra.pem"
	})
	res, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll with a certificate: %v", err)
	}
	if len(res.Users) != 5 || srv.TokensIssued() != 1 {
		t.Errorf("users = %d, tokens = %d; want 5 users with one token", len(res.Users), srv.TokensIssued())
	}

	// Another key: the assertion is rejected, terminally.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv.SetClientCertificate(&other.PublicKey)
	h2 := newHarnessIn(t, srv, dir, func(c *entra.Config) {
		c.Auth = entra.AuthClientCertificate
		c.ClientSecret = ""
		c.ClientCertificateFile = "entra.pem"
	})
	if _, err := h2.conn.FetchAll(ctx(t)); !errors.Is(err, connectors.ErrTerminal) || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Errorf("wrong certificate: err = %v, want terminal AADSTS700027", err)
	}
}

// TestRecordedPages feeds pages shaped like real Graph answers (nulls,
// @removed, members of other types, a group split in two) to the SDK.
func TestRecordedPages(t *testing.T) {
	srv := entratest.New(t)
	users, groups := recordedPages(t)
	srv.Inject(fault.Fault{Endpoint: "users/delta", Body: string(users)})
	srv.Inject(fault.Fault{Endpoint: "groups/delta", Body: string(groups)})
	h := newHarness(t, srv, func(c *entra.Config) { c.UserType = entra.UserTypeAll })
	res, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	want := []connectors.User{
		{ExternalID: "2d7b4ba0-5a7d-4f2b-b7f2-0e9e0b0f6f8a", UserName: "AlexW@contoso.com", Email: "AlexW@contoso.com",
			GivenName: "Alex", FamilyName: "Wilber", DisplayName: "Alex Wilber", Status: connectors.StatusInactive},
		{ExternalID: "48d31887-5fad-4d73-a9f5-3c356e68a038", UserName: "megan_partner.example#EXT#@contoso.onmicrosoft.com",
			Email: "megan@partner.example", DisplayName: "Megan Bowen", Status: connectors.StatusActive},
		{ExternalID: "87d349ed-44d7-43e1-9a83-5f2406dee5bd", UserName: "AdeleV@contoso.com", Email: "AdeleV@contoso.com",
			GivenName: "Adele", FamilyName: "Vance", DisplayName: "Adele Vance", Title: "Retail Manager",
			Department: "Retail", EmployeeNumber: "1204", Status: connectors.StatusActive},
	}
	if d := cmp.Diff(want, res.Users); d != "" {
		t.Errorf("users (-want +got):\n%s", d)
	}
	wantMembers := map[string][]string{
		"02bd9fd6-8f93-4758-87c3-1fb73740a315": {"2d7b4ba0-5a7d-4f2b-b7f2-0e9e0b0f6f8a", "48d31887-5fad-4d73-a9f5-3c356e68a038", "87d349ed-44d7-43e1-9a83-5f2406dee5bd"},
		"0f8a3b2c-7c39-4a49-8c3b-0c6c2d6e4b1a": {"2d7b4ba0-5a7d-4f2b-b7f2-0e9e0b0f6f8a"},
	}
	if d := cmp.Diff(wantMembers, res.Members); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}
	if len(res.Groups) != 2 || res.Groups[0].Name != "Retail" {
		t.Errorf("groups = %v, want Retail and Mark 8 (the deleted one left out)", res.Groups)
	}
	if !strings.Contains(res.Cursor, "oEcOySpF_hWYmTIUZBOIfPzcwisr") || !strings.Contains(res.Cursor, "sZwAFZibx-LQOdZIo1hHhmm") {
		t.Errorf("cursor %q does not hold both deltaLinks", res.Cursor)
	}
}

func TestThrottlingBeyondTheBoundFails(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	srv.Inject(fault.Fault{Endpoint: "users/delta", Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}})
	h := newHarness(t, srv, nil)
	start := time.Now()
	_, err := h.conn.FetchAll(ctx(t))
	if err == nil || errors.Is(err, connectors.ErrTerminal) || !strings.Contains(err.Error(), "429") {
		t.Fatalf("err = %v; want a non-terminal 429 error", err)
	}
	fault.CheckAnswer(t, err, fault.Throttled)
	if time.Since(start) > 5*time.Second {
		t.Errorf("waited %v for a Retry-After beyond the bound", time.Since(start))
	}
}

func TestConfigFromYAML(t *testing.T) {
	srv := entratest.New(t)
	cfg := entra.DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(srv.ConfigYAML("") + "request_timeout: 45s\ntransitive_groups: true\n"))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := entra.Config{
		TenantID: srv.TenantID, Auth: entra.AuthClientSecret, ClientID: srv.ClientID,
		ClientSecret: connectors.Secret(srv.ClientSecret), GraphURL: srv.GraphURL, AuthorityHost: srv.AuthorityHost,
		CAFile: srv.CAFile, UserType: entra.UserTypeMember, TransitiveGroups: true, RequestTimeout: 45 * time.Second,
	}
	if d := cmp.Diff(want, *cfg); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
	if errs := cfg.Validate(connectors.Options{Name: "x"}); len(errs) != 0 {
		t.Errorf("Validate: %v", errs)
	}
	// The registry path: Type.NewConfig and Type.New.
	c, err := entra.Type.New(cfg, connectors.Options{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(connectors.Incremental); !ok {
		t.Error("the connector is not Incremental")
	}
	if _, ok := entra.Type.NewConfig().(*entra.Config); !ok {
		t.Error("NewConfig does not return *entra.Config")
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("secret-looking-garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-value-never-printed"
	valid := func() *entra.Config {
		c := entra.DefaultConfig()
		c.TenantID = "00000000-0000-0000-0000-000000000001"
		c.ClientID = "00000000-0000-0000-0000-000000000002"
		c.ClientSecret = secret
		return c
	}
	for _, tc := range []struct {
		name string
		mod  func(c *entra.Config)
		want []string // paths with errors
	}{
		{"valid", func(*entra.Config) {}, nil},
		{"loopback endpoints", func(c *entra.Config) {
			c.GraphURL = "http://127.0.0.1:8080/v1.0"
			c.AuthorityHost = "https://127.0.0.1:8443/"
		}, nil},
		{"empty", func(c *entra.Config) { *c = *entra.DefaultConfig() }, []string{"client_id", "client_secret", "tenant_id"}},
		{"everything wrong", func(c *entra.Config) {
			c.Auth = "password"
			c.TenantID = "common"
			c.GraphURL = "http://graph.example.com/v1.0"
			c.AuthorityHost = "http://127.0.0.1/"
			c.CAFile = "missing.pem"
			c.UserType = "everyone"
			c.RequestTimeout = 0
			c.ServicePrincipalID = "not a guid"
		}, []string{"auth", "authority_host", "ca_file", "client_secret", "graph_url", "request_timeout", "service_principal_id", "tenant_id", "user_type"}},
		{"graph_url without version", func(c *entra.Config) { c.GraphURL = "https://graph.microsoft.com" }, []string{"graph_url"}},
		{"ca_file not PEM", func(c *entra.Config) { c.CAFile = notPEM }, []string{"ca_file"}},
		{"certificate missing", func(c *entra.Config) {
			c.Auth = entra.AuthClientCertificate
		}, []string{"client_certificate_file", "client_secret"}},
		{"certificate not PEM", func(c *entra.Config) {
			c.Auth = entra.AuthClientCertificate
			c.ClientSecret = ""
			c.ClientCertificateFile = notPEM
		}, []string{"client_certificate_file"}},
		{"managed identity needs nothing", func(c *entra.Config) {
			c.Auth = entra.AuthManagedIdentity
			c.TenantID, c.ClientID, c.ClientSecret = "", "", ""
		}, nil},
		{"default takes no client_id", func(c *entra.Config) {
			c.Auth = entra.AuthDefault
			c.ClientSecret = ""
		}, []string{"client_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(c)
			errs := c.Validate(connectors.Options{Name: "x", BaseDir: dir})
			got := testkit.FieldPaths(t, errs, secret, "secret-looking-garbage")
			if d := cmp.Diff(tc.want, got, cmpSorted); d != "" {
				t.Errorf("error paths (-want +got):\n%s\nerrors: %v", d, errs)
			}
		})
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
})
