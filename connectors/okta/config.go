package okta

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Group types Okta knows; group_types picks among them.
const (
	GroupTypeOkta    = "OKTA_GROUP"
	GroupTypeApp     = "APP_GROUP"
	GroupTypeBuiltIn = "BUILT_IN"
)

// MaxPageSize is the largest page Okta's users search accepts.
const MaxPageSize = 200

// Config is the `config` block of a source of type okta.
type Config struct {
	// OrgURL is the Okta org, e.g. https://acme.okta.com.
	OrgURL string `yaml:"org_url"`
	// APIToken is an SSWS API token. Either it or ClientID + PrivateKey.
	APIToken connectors.Secret `yaml:"api_token"`
	// ClientID and PrivateKey select OAuth 2.0 with a private key (an API
	// service app). PrivateKey is an RSA key in PEM form (PKCS#1 or PKCS#8);
	// the loader fills it from private_key_file.
	ClientID   string            `yaml:"client_id"`
	PrivateKey connectors.Secret `yaml:"private_key"`
	// Scopes are requested with the private key; empty means the read scopes
	// the connector needs.
	Scopes []string `yaml:"scopes"`
	// AppID limits the users to those assigned to this Okta app, directly
	// or through a group.
	AppID string `yaml:"app_id"`
	// GroupTypes are the Okta group types to read.
	GroupTypes []string `yaml:"group_types"`
	// CAFile holds extra PEM roots, relative to the config file.
	CAFile string `yaml:"ca_file"`
	// PageSize is the limit of each list request (1–200).
	PageSize int `yaml:"page_size"`
	// RateLimitShare is the share of each endpoint family's rate limit this
	// source may use, in (0, 1].
	RateLimitShare float64 `yaml:"rate_limit_share"`
	// RequestTimeout bounds one HTTP attempt.
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig() *Config {
	return &Config{
		GroupTypes:     []string{GroupTypeOkta, GroupTypeApp},
		PageSize:       MaxPageSize,
		RateLimitShare: 0.5,
		RequestTimeout: 30 * time.Second,
	}
}

// Okta object ids are short alphanumeric strings; app_id is put into a URL
// path by the SDK without escaping, so anything else is refused.
var oktaID = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// Validate returns every problem of c at once. Secrets never appear in the
// messages.
func (c *Config) Validate(opts connectors.Options) []error {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, connectors.Errorf(path, format, args...))
	}

	switch {
	case c.OrgURL == "":
		fail("org_url", "is required (for example https://acme.okta.com)")
	default:
		if err := connectors.CheckURL(c.OrgURL); err != nil {
			fail("org_url", "%v", err)
		} else if u, _ := url.Parse(c.OrgURL); (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			fail("org_url", "must be the org's base URL without a path, query or credentials (for example https://acme.okta.com)")
		} else if strings.Contains(u.Hostname(), "-admin.") {
			fail("org_url", "use the org URL, not the admin console URL (drop \"-admin\")")
		}
	}

	hasToken := c.APIToken != ""
	hasOAuth := c.ClientID != "" || c.PrivateKey != ""
	switch {
	case hasToken && hasOAuth:
		fail("api_token", "set either api_token or client_id with private_key, not both")
	case !hasToken && !hasOAuth:
		fail("api_token", "is required unless client_id and private_key (or private_key_file) are set")
	case hasOAuth:
		if c.ClientID == "" {
			fail("client_id", "is required with private_key")
		}
		if c.PrivateKey == "" {
			fail("private_key", "is required with client_id (set private_key or private_key_file)")
		} else if _, err := rsaKeyPEM(c.PrivateKey.Reveal()); err != nil {
			fail("private_key", "%v", err)
		}
	}
	if hasToken && strings.ContainsAny(c.APIToken.Reveal(), " \t\r\n") {
		fail("api_token", "contains white space (copy the token alone, without \"SSWS\")")
	}

	if len(c.Scopes) > 0 && !hasOAuth {
		fail("scopes", "only apply with client_id and private_key")
	}
	if hasOAuth && len(c.Scopes) > 0 {
		for i, s := range c.Scopes {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t") {
				fail(indexPath("scopes", i), "must be one scope name without spaces")
			}
		}
		for _, need := range requiredScopes(c.AppID) {
			if !hasScope(c.Scopes, need) {
				fail("scopes", "must include %s (or the matching .manage scope)", need)
			}
		}
	}

	if c.AppID != "" && !oktaID.MatchString(c.AppID) {
		fail("app_id", "%q is not an Okta app id (letters and digits, like 0oa1b2c3d4)", c.AppID)
	}

	if len(c.GroupTypes) == 0 {
		fail("group_types", "must name at least one of %s, %s, %s", GroupTypeOkta, GroupTypeApp, GroupTypeBuiltIn)
	}
	seen := map[string]bool{}
	for i, t := range c.GroupTypes {
		switch t {
		case GroupTypeOkta, GroupTypeApp, GroupTypeBuiltIn:
		default:
			fail(indexPath("group_types", i), "%q is not one of %s, %s, %s", t, GroupTypeOkta, GroupTypeApp, GroupTypeBuiltIn)
			continue
		}
		if seen[t] {
			fail(indexPath("group_types", i), "%s is listed twice", t)
		}
		seen[t] = true
	}

	if c.CAFile != "" {
		if _, err := connectors.NewHTTPClient(connectors.ResolvePath(opts.BaseDir, c.CAFile), 0); err != nil {
			fail("ca_file", "%v", err)
		}
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		fail("page_size", "must be between 1 and %d, got %d", MaxPageSize, c.PageSize)
	}
	if !(c.RateLimitShare > 0 && c.RateLimitShare <= 1) {
		fail("rate_limit_share", "must be more than 0 and at most 1, got %g", c.RateLimitShare)
	}
	if c.RequestTimeout <= 0 {
		fail("request_timeout", "must be positive, got %s", c.RequestTimeout)
	}
	return errs
}

func indexPath(key string, i int) string {
	return key + "[" + strconv.Itoa(i) + "]"
}

// requiredScopes are the OAuth scopes a fetch needs.
func requiredScopes(appID string) []string {
	s := []string{"okta.users.read", "okta.groups.read"}
	if appID != "" {
		s = append(s, "okta.apps.read")
	}
	return s
}

// hasScope reports whether scopes grant need; a .manage scope includes the
// matching .read scope.
func hasScope(scopes []string, need string) bool {
	manage := strings.TrimSuffix(need, ".read") + ".manage"
	return slices.Contains(scopes, need) || slices.Contains(scopes, manage)
}

// rsaKeyPEM parses an RSA private key in PEM form (PKCS#1 or PKCS#8) and
// returns it as PKCS#1 PEM, the only form the SDK's signer reads. Errors
// never quote the key.
func rsaKeyPEM(s string) (string, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return "", errors.New("is not a PEM-encoded private key")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return "", errors.New("is not a valid PKCS#1 RSA private key")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return "", errors.New("is not a valid PKCS#8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return "", errors.New("must be an RSA key (Okta signs client assertions with RS256)")
		}
		key = rk
	case "ENCRYPTED PRIVATE KEY":
		return "", errors.New("is encrypted; give the key without a passphrase")
	default:
		return "", errors.New("PEM block is " + block.Type + ", want RSA PRIVATE KEY or PRIVATE KEY")
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})), nil
}
