package okta

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/internal/testkit"
)

func TestDefaultConfig(t *testing.T) {
	cfg, ok := Type.NewConfig().(*Config)
	if !ok {
		t.Fatalf("Type.NewConfig() is %T", Type.NewConfig())
	}
	if cfg.PageSize != 200 || cfg.RateLimitShare != 0.5 || cfg.RequestTimeout != 30*time.Second ||
		!slices.Equal(cfg.GroupTypes, []string{"OKTA_GROUP", "APP_GROUP"}) {
		t.Errorf("defaults = %+v", cfg)
	}
	if _, err := Type.New(fakeConfig{}, connectors.Options{}); err == nil {
		t.Error("Type.New accepted a foreign config")
	}
	if conn, err := Type.New(DefaultConfig(), connectors.Options{Name: "okta"}); err == nil || conn != nil {
		t.Errorf("Type.New with an invalid config = %v, %v; want a nil connector and an error", conn, err)
	}
	cfg.OrgURL, cfg.APIToken = "https://acme.okta.com", "token"
	conn, err := Type.New(cfg, connectors.Options{Name: "okta"})
	if _, ok := conn.(connectors.Incremental); err != nil || !ok {
		t.Errorf("Type.New = %T, %v; want an Incremental connector", conn, err)
	}
}

type fakeConfig struct{}

func (fakeConfig) Validate(connectors.Options) []error { return nil }

func rsaPEM(t *testing.T, pkcs8 bool) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if pkcs8 {
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func TestValidate(t *testing.T) {
	const token = "00secret-token-value"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	pkcs1, pkcs8 := rsaPEM(t, false), rsaPEM(t, true)

	base := func() *Config {
		c := DefaultConfig()
		c.OrgURL = "https://acme.okta.com"
		c.APIToken = token
		return c
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		paths []string // FieldError paths expected, in order
	}{
		{"token", func(*Config) {}, nil},
		{"trailing slash", func(c *Config) { c.OrgURL += "/" }, nil},
		{"loopback http", func(c *Config) { c.OrgURL = "http://127.0.0.1:8080" }, nil},
		{"private key pkcs1", func(c *Config) { c.APIToken = ""; c.ClientID = "0oa1"; c.PrivateKey = connectors.Secret(pkcs1) }, nil},
		{"private key pkcs8 with scopes", func(c *Config) {
			c.APIToken = ""
			c.ClientID = "0oa1"
			c.PrivateKey = connectors.Secret(pkcs8)
			c.Scopes = []string{"okta.users.read", "okta.groups.manage"}
		}, nil},
		{"app id", func(c *Config) { c.AppID = "0oa1b2c3d4" }, nil},
		{"empty", func(c *Config) { *c = *DefaultConfig() }, []string{"org_url", "api_token"}},
		{"plain http", func(c *Config) { c.OrgURL = "http://acme.okta.com" }, []string{"org_url"}},
		{"path in url", func(c *Config) { c.OrgURL = "https://acme.okta.com/api/v1" }, []string{"org_url"}},
		{"admin url", func(c *Config) { c.OrgURL = "https://acme-admin.okta.com" }, []string{"org_url"}},
		{"both auths", func(c *Config) { c.ClientID = "0oa1"; c.PrivateKey = connectors.Secret(pkcs1) }, []string{"api_token"}},
		{"client id alone", func(c *Config) { c.APIToken = ""; c.ClientID = "0oa1" }, []string{"private_key"}},
		{"key alone", func(c *Config) { c.APIToken = ""; c.PrivateKey = connectors.Secret(pkcs1) }, []string{"client_id"}},
		{"bad key", func(c *Config) { c.APIToken = ""; c.ClientID = "0oa1"; c.PrivateKey = "-----BEGIN NOTHING-----" }, []string{"private_key"}},
		{"scopes with token", func(c *Config) { c.Scopes = []string{"okta.users.read"} }, []string{"scopes"}},
		{"scopes missing groups and apps", func(c *Config) {
			c.APIToken = ""
			c.ClientID = "0oa1"
			c.PrivateKey = connectors.Secret(pkcs1)
			c.AppID = "0oa9"
			c.Scopes = []string{"okta.users.read", ""}
		}, []string{"scopes[1]", "scopes", "scopes"}},
		{"bad app id", func(c *Config) { c.AppID = "../users" }, []string{"app_id"}},
		{"group types", func(c *Config) { c.GroupTypes = []string{"OKTA_GROUP", "TEAM", "OKTA_GROUP"} }, []string{"group_types[1]", "group_types[2]"}},
		{"no group types", func(c *Config) { c.GroupTypes = nil }, []string{"group_types"}},
		{"ca file missing", func(c *Config) { c.CAFile = "nope.pem" }, []string{"ca_file"}},
		{"ca file junk", func(c *Config) { c.CAFile = "junk.pem" }, []string{"ca_file"}},
		{"numbers", func(c *Config) { c.PageSize = 500; c.RateLimitShare = 0; c.RequestTimeout = 0 }, []string{"page_size", "rate_limit_share", "request_timeout"}},
		{"share above 1", func(c *Config) { c.RateLimitShare = 1.5; c.PageSize = 0 }, []string{"page_size", "rate_limit_share"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(c)
			errs := c.Validate(connectors.Options{Name: "okta", BaseDir: dir})
			paths := testkit.FieldPaths(t, errs, token, "PRIVATE KEY-----\nMII")
			for _, err := range errs {
				t.Log(err)
			}
			if !slices.Equal(paths, tt.paths) {
				t.Errorf("paths = %q, want %q (errors: %v)", paths, tt.paths, errs)
			}
		})
	}
}
