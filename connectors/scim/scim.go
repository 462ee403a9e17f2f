// Package scim is the source type `scim`: a source whose identity provider
// pushes its users and groups to learnsync's SCIM endpoint
// (/scim/<source>/v2, package scim at the top of the module) instead of
// being fetched. The connector never fetches: the endpoint writes the
// source's mirror, and every run reconciles that mirror as it stands.
package scim

import (
	"context"
	"errors"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Config is the `config` block of a scim source.
type Config struct {
	// Token is the bearer token the identity provider sends (token_file
	// reads it from a file).
	Token connectors.Secret `yaml:"token"`
	// ReconcileDelay is how long the service waits after a write before it
	// reconciles, so that a burst of writes becomes one run.
	ReconcileDelay time.Duration `yaml:"reconcile_delay"`
	// Rate is how many requests a second the token may make on average,
	// Burst how many at once; rate 0 = no limit.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Defaults.
const (
	DefaultReconcileDelay = 2 * time.Second
	DefaultRate           = 1000
	DefaultBurst          = 2000
	// minTokenLength keeps a guessable token out: the endpoint faces the
	// internet.
	minTokenLength = 16
)

// NewConfig returns a Config with its defaults.
func NewConfig() *Config {
	return &Config{ReconcileDelay: DefaultReconcileDelay, Rate: DefaultRate, Burst: DefaultBurst}
}

// Validate implements connectors.Config.
func (c *Config) Validate(connectors.Options) []error {
	var errs []error
	switch {
	case c.Token == "":
		errs = append(errs, connectors.Errorf("token", "required (or token_file): the bearer token the identity provider sends"))
	case len(c.Token.Reveal()) < minTokenLength:
		errs = append(errs, connectors.Errorf("token", "must be at least %d characters", minTokenLength))
	}
	if c.ReconcileDelay < 0 {
		errs = append(errs, connectors.Errorf("reconcile_delay", "must not be negative"))
	}
	if c.Rate < 0 {
		errs = append(errs, connectors.Errorf("rate", "must be 0 (no limit) or more"))
	}
	if c.Burst < 0 {
		errs = append(errs, connectors.Errorf("burst", "must be 0 (the rate) or more"))
	}
	return errs
}

// Connector is a scim source's connector: pushed, never fetched.
type Connector struct {
	cfg *Config
}

var (
	_ connectors.Pushed = (*Connector)(nil)
	_ connectors.Config = (*Config)(nil)
)

// New builds the connector.
func New(cfg *Config, _ connectors.Options) (*Connector, error) {
	return &Connector{cfg: cfg}, nil
}

// Type is the `scim` source type.
var Type = connectors.TypeOf(NewConfig, New)

// Pushed implements connectors.Pushed.
func (c *Connector) Pushed() {}

// Config returns the source's configuration.
func (c *Connector) Config() *Config { return c.cfg }

// ErrPushed is what FetchAll returns: a run never calls it for a pushed
// source.
var ErrPushed = errors.New("a scim source is pushed to, not fetched")

// FetchAll implements connectors.Connector; see ErrPushed.
func (c *Connector) FetchAll(context.Context) (*connectors.Result, error) {
	return nil, ErrPushed
}
