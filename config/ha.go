package config

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// HA is the ha block: several instances on one PostgreSQL directory, one
// of them the leader (see package ha). Set when the block is present.
type HA struct {
	// Instance names this instance among the others; empty: the host name
	// and the pid.
	Instance string `yaml:"instance"`
	// Lease is how long the leader's lease lasts without renewal: a
	// standby takes over within twice this after the leader dies. 0:
	// DefaultLease.
	Lease time.Duration `yaml:"lease"`

	// Enabled is true when the configuration has an ha block.
	Enabled bool `yaml:"-"`
	// Keys are the keys the block sets, for the errors that refuse it.
	Keys []string `yaml:"-"`
}

// DefaultLease is the default of ha.lease; MinLease is the shortest allowed.
const (
	DefaultLease = 15 * time.Second
	MinLease     = time.Second
)

// noteHA records whether doc has an ha block, and its keys.
func (c *Config) noteHA(doc *yaml.Node) {
	n := mappingValue(doc, "ha")
	if n == nil || n.Tag == "!!null" {
		return
	}
	c.HA.Enabled = true
	for i := 0; i+1 < len(n.Content); i += 2 {
		c.HA.Keys = append(c.HA.Keys, n.Content[i].Value)
	}
}

func (c *Config) validateHA(d *decoder) {
	if !c.HA.Enabled {
		return
	}
	if c.Directory.Driver != "postgres" {
		why := "high availability needs directory.driver: postgres; a " + c.Directory.Driver +
			" directory is one machine's (its file lock keeps a second learnsync out)"
		if len(c.HA.Keys) == 0 {
			d.fail("ha", "%s", why)
		}
		for _, k := range c.HA.Keys {
			d.fail("ha."+k, "%s", why)
		}
		return
	}
	if c.HA.Lease == 0 {
		c.HA.Lease = DefaultLease
	}
	if c.HA.Lease < MinLease {
		d.fail("ha.lease", "must be at least %s, got %s", MinLease, c.HA.Lease)
	}
	if c.HA.Instance != strings.TrimSpace(c.HA.Instance) || strings.ContainsAny(c.HA.Instance, "\n\r\t") {
		d.fail("ha.instance", "must not have surrounding spaces or control characters, got %q", c.HA.Instance)
	}
}
