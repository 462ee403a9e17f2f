package config

import (
	"net"
	"os"
	"strconv"

	"github.com/learnsync/learnsync/connectors"
)

// Public is server.public: the second listener, the one identity providers
// and applications reach, which serves only the SCIM endpoints. Off while
// Listen is empty.
type Public struct {
	// Listen is its host:port.
	Listen string `yaml:"listen"`
	// TLSCertFile and TLSKeyFile are a PEM certificate (chain) and key;
	// both or neither. They are read again on SIGHUP.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// BehindProxy allows plain HTTP on a non-loopback address, for a
	// reverse proxy that terminates TLS; the resources' locations then
	// follow X-Forwarded-Proto and X-Forwarded-Host.
	BehindProxy bool `yaml:"behind_proxy"`
	// ReadToken opens the read view of the directory (/scim/v2) to
	// applications; empty: the read view is off.
	ReadToken connectors.Secret `yaml:"read_token"`
}

// TLS reports whether the public listener serves HTTPS.
func (p Public) TLS() bool { return p.TLSCertFile != "" }

// CertPath and KeyPath resolve the TLS files against the config's directory.
func (c *Config) CertPath() string {
	return connectors.ResolvePath(c.BaseDir, c.Server.Public.TLSCertFile)
}

// KeyPath resolves tls_key_file against the config's directory.
func (c *Config) KeyPath() string {
	return connectors.ResolvePath(c.BaseDir, c.Server.Public.TLSKeyFile)
}

func (c *Config) validatePublic(d *decoder) {
	p := c.Server.Public
	const at = "server.public"
	if p.Listen == "" {
		if p.TLSCertFile != "" || p.TLSKeyFile != "" || p.BehindProxy || p.ReadToken != "" {
			d.fail(at+".listen", "required when other server.public keys are set")
		}
		return
	}
	host, port, err := net.SplitHostPort(p.Listen)
	if err != nil {
		d.fail(at+".listen", "%q is not host:port", p.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.fail(at+".listen", "%q: bad port", p.Listen)
	}
	if p.Listen == c.Server.Listen && port != "0" {
		d.fail(at+".listen", "must differ from server.listen (the ops endpoint)")
	}
	switch {
	case (p.TLSCertFile == "") != (p.TLSKeyFile == ""):
		d.fail(at, "tls_cert_file and tls_key_file go together")
	case p.TLSCertFile != "":
		for _, f := range [][2]string{{"tls_cert_file", c.CertPath()}, {"tls_key_file", c.KeyPath()}} {
			if _, err := os.Stat(f[1]); err != nil {
				d.fail(at+"."+f[0], "%s: file not found", f[1])
			}
		}
	case !IsLoopback(host) && !p.BehindProxy:
		d.fail(at+".listen", "%q is not a loopback address and has no TLS: set tls_cert_file and tls_key_file, "+
			"or behind_proxy: true when a reverse proxy terminates TLS", p.Listen)
	}
}
