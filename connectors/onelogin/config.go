package onelogin

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Config is the `config` block of a source of type onelogin.
type Config struct {
	// APIURL is the account's API host: https://<subdomain>.onelogin.com or
	// the regional https://api.us.onelogin.com / https://api.eu.onelogin.com.
	APIURL string `yaml:"api_url"`
	// ClientID and ClientSecret are an API credential pair with the
	// "Read users" (or "Read All") scope.
	ClientID     string            `yaml:"client_id"`
	ClientSecret connectors.Secret `yaml:"client_secret"`
	// CAFile is a PEM file of extra roots to trust (a TLS proxy, tests).
	// Relative paths are relative to the config file.
	CAFile string `yaml:"ca_file"`
	// PageSize is the `limit` of each list request. OneLogin documents at
	// most 100 per page for API v2 lists.
	PageSize int `yaml:"page_size"`
	// RequestTimeout bounds one HTTP request, body included.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// RateLimitShare is the part of the account's hourly API budget
	// learnsync may use; the rest is left to the account's other
	// integrations.
	RateLimitShare float64 `yaml:"rate_limit_share"`
}

// Defaults and bounds of Config.
const (
	DefaultPageSize       = 100
	MaxPageSize           = 100
	DefaultRequestTimeout = 30 * time.Second
	DefaultRateLimitShare = 0.5
)

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() *Config {
	return &Config{
		PageSize:       DefaultPageSize,
		RequestTimeout: DefaultRequestTimeout,
		RateLimitShare: DefaultRateLimitShare,
	}
}

// Validate returns every problem of the block at once. Paths are relative to
// the block; no message contains the client secret.
func (c *Config) Validate(opts connectors.Options) []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, connectors.Errorf(path, format, args...))
	}
	switch u, err := url.Parse(c.APIURL); {
	case strings.TrimSpace(c.APIURL) == "":
		add("api_url", "required (https://<subdomain>.onelogin.com or https://api.us.onelogin.com)")
	case err == nil && u.User != nil:
		// Never echo a URL that carries credentials.
		add("api_url", "must not contain a user name or password")
	case err == nil && (u.RawQuery != "" || u.Fragment != ""):
		add("api_url", "must not have a query or fragment")
	default:
		if err := connectors.CheckURL(c.APIURL); err != nil {
			add("api_url", "%v", err)
		}
	}
	if strings.TrimSpace(c.ClientID) == "" {
		add("client_id", "required")
	}
	if strings.TrimSpace(c.ClientSecret.Reveal()) == "" {
		add("client_secret", "required (or client_secret_file)")
	}
	if c.CAFile != "" {
		p := connectors.ResolvePath(opts.BaseDir, c.CAFile)
		if st, err := os.Stat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				add("ca_file", "file not found: %s", p)
			} else {
				add("ca_file", "%v", err)
			}
		} else if st.IsDir() {
			add("ca_file", "%s is a directory", p)
		}
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		add("page_size", "must be between 1 and %d, got %d", MaxPageSize, c.PageSize)
	}
	if c.RequestTimeout <= 0 {
		add("request_timeout", "must be positive, got %s", c.RequestTimeout)
	}
	if !(c.RateLimitShare > 0 && c.RateLimitShare <= 1) {
		add("rate_limit_share", "must be greater than 0 and at most 1, got %g", c.RateLimitShare)
	}
	return errs
}
