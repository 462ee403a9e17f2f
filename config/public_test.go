package config_test

import (
	"strings"
	"testing"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
	scimsource "github.com/learnsync/learnsync/connectors/scim"
)

func TestPublic(t *testing.T) {
	base := `
directory: {dsn: x.db}
sources:
  - name: hr
    type: file
    config:
      path: org.json
`
	for _, tc := range []struct {
		name, doc string
		want      []string // error substrings; none: valid
	}{
		{"off", "", nil},
		{"loopback plain", "server: {public: {listen: 127.0.0.1:8443}}", nil},
		{"remote behind a proxy", "server: {public: {listen: 0.0.0.0:8443, behind_proxy: true}}", nil},
		{"remote without TLS", "server: {public: {listen: 0.0.0.0:8443}}",
			[]string{`server.public.listen: "0.0.0.0:8443" is not a loopback address and has no TLS`}},
		{"cert without key", "server: {public: {listen: 0.0.0.0:8443, tls_cert_file: org.json}}",
			[]string{"server.public: tls_cert_file and tls_key_file go together"}},
		{"missing cert files", "server: {public: {listen: 0.0.0.0:8443, tls_cert_file: no.crt, tls_key_file: no.key}}",
			[]string{"server.public.tls_cert_file: ", "server.public.tls_key_file: "}},
		{"keys without listen", "server: {public: {behind_proxy: true}}",
			[]string{"server.public.listen: required"}},
		{"same as the ops endpoint", "server: {listen: 127.0.0.1:9750, public: {listen: 127.0.0.1:9750}}",
			[]string{"server.public.listen: must differ"}},
		{"bad port", "server: {public: {listen: 127.0.0.1:99999}}", []string{"server.public.listen: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, base+tc.doc, nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSCIMSourceConfig(t *testing.T) {
	reg := connectors.Registry{"scim": scimsource.Type}
	doc := func(cfg string) string {
		return "directory: {dsn: x.db}\nsources:\n  - name: push\n    type: scim\n    config: " + cfg + "\n"
	}
	cfg := mustParseWith(t, reg, doc(`{token: "${TOK}"}`), env("TOK", "0123456789abcdefXYZ"))
	c := cfg.Sources[0].Connector.(*scimsource.Config)
	if c.Token.Reveal() != "0123456789abcdefXYZ" || c.ReconcileDelay != scimsource.DefaultReconcileDelay || c.Rate != scimsource.DefaultRate {
		t.Errorf("config = %+v", c)
	}
	for _, tc := range []struct{ cfg, want string }{
		{"{}", "sources[0].config.token: required"},
		{"{token: short}", "sources[0].config.token: must be at least 16 characters"},
		{"{token: 0123456789abcdefXYZ, reconcile_delay: -1s}", "sources[0].config.reconcile_delay: must not be negative"},
		{"{token: 0123456789abcdefXYZ, rate: -1}", "sources[0].config.rate: "},
	} {
		_, err := config.Parse([]byte(doc(tc.cfg)), t.TempDir(), reg, env())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.cfg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789abcdefXYZ") {
			t.Errorf("the token shows in %v", err)
		}
	}
}

func mustParseWith(t *testing.T, reg connectors.Registry, doc string, lookup func(string) (string, bool)) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), t.TempDir(), reg, lookup)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}
