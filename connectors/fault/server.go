package fault

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// Server is what the fake IdP servers share beyond their IdP: a TLS
// listener, a CA file that trusts it, the injected faults and the request
// log. A fake embeds it.
type Server struct {
	Injector
	// URL is the server's base, https://127.0.0.1:port.
	URL string
	// CAFile is a PEM file with the server's certificate, for ca_file.
	CAFile string

	ts *httptest.Server
}

// Start starts a TLS server for the fake named name, with h's answers and
// the faults injected into it, writes its certificate to
// <name>-ca.pem in a temporary directory of tb and stops it when tb ends.
func Start(tb testing.TB, name string, h Handler) *Server {
	tb.Helper()
	s := &Server{}
	s.ts = httptest.NewUnstartedServer(s.Serve(h))
	// Clients that hang up (tests of timeouts, dropped connections, the
	// end of a test) and refused handshakes (a client without ca_file) are
	// no news worth logging.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.ts.StartTLS()
	tb.Cleanup(s.ts.Close)
	s.URL = s.ts.URL
	s.CAFile = filepath.Join(tb.TempDir(), name+"-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, ca, 0o600); err != nil {
		tb.Fatalf("%s: write CA file: %v", name, err)
	}
	return s
}

// Client is an HTTP client that trusts the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Certificate is the server's self-signed certificate.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// Close shuts the server down (Start has it done when the test ends).
func (s *Server) Close() { s.ts.Close() }
