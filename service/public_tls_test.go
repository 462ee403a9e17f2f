package service

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/learnsync/learnsync/config"
	scimsource "github.com/learnsync/learnsync/connectors/scim"
	"github.com/learnsync/learnsync/internal/testkit"
)

// testCert is a self-signed ECDSA certificate for 127.0.0.1 in PEM.
type testCert struct {
	der          []byte // the certificate, as the server presents it
	certPEM, key []byte
	pool         *x509.CertPool // trusts only this certificate
	serial       int64
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, keyDER := testkit.SelfSigned(t, serial, key)
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	return testCert{
		der:     der,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pool:    pool,
		serial:  serial,
	}
}

// writePair writes a certificate and a key (not necessarily its own) to
// the files the configuration names.
func writePair(t *testing.T, certFile, keyFile string, cert, key []byte) {
	t.Helper()
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The public listener serves SCIM over TLS 1.2 or later with the
// configured pair, refuses TLS 1.1, and a reload (as on SIGHUP) swaps in a
// new pair; a pair whose key does not match is refused and the previous
// certificate stays in use.
func TestPublicTLSServesAndReloadsCertificate(t *testing.T) {
	const token = "idp-token-0123456789abcdef"
	certDir := t.TempDir()
	certFile, keyFile := filepath.Join(certDir, "public.crt"), filepath.Join(certDir, "public.key")
	a, b := newTestCert(t, 1), newTestCert(t, 2)
	writePair(t, certFile, keyFile, a.certPEM, a.key)

	cfgFor := func(dir string) *config.Config {
		idp := testSource("idp", "@every 1h", "@every 24h")
		idp.Connector = &scimsource.Config{Token: token, ReconcileDelay: time.Second}
		cfg := testConfig(dir, idp)
		cfg.Server.Public.Listen = "127.0.0.1:0"
		cfg.Server.Public.TLSCertFile = certFile
		cfg.Server.Public.TLSKeyFile = keyFile
		return cfg
	}
	h := newHarness(t, cfgFor, newFakeSource("idp"))
	ln := h.startPublic()
	url := "https://" + ln.Addr().String() + "/scim/idp/v2/ServiceProviderConfig"

	// get asks for the source's ServiceProviderConfig on a new connection
	// from a client that trusts pool and speaks at most maxVersion (0: any).
	// The client offers TLS 1.0 and up, so that the server, not the
	// client's defaults, turns an old version down.
	get := func(pool *x509.CertPool, maxVersion uint16) (*http.Response, error) {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion},
			DisableKeepAlives: true,
		}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp, nil
	}
	// presents checks that a client trusting want gets a SCIM answer over
	// TLS 1.2+ with want's certificate.
	presents := func(when string, want testCert) {
		t.Helper()
		resp, err := get(want.pool, 0)
		if err != nil {
			t.Fatalf("%s: a client trusting certificate %d: %v", when, want.serial, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: GET ServiceProviderConfig = %d", when, resp.StatusCode)
		}
		if resp.TLS == nil {
			t.Fatalf("%s: the answer came without TLS", when)
		}
		if v := resp.TLS.Version; v < tls.VersionTLS12 {
			t.Errorf("%s: negotiated %s, want TLS 1.2 or later", when, tls.VersionName(v))
		}
		if pc := resp.TLS.PeerCertificates; len(pc) == 0 || !bytes.Equal(pc[0].Raw, want.der) {
			t.Errorf("%s: the server did not present certificate %d", when, want.serial)
		}
	}
	// reload makes the service read its configuration again, as SIGHUP
	// does, and waits until it is done.
	ok := h.svc.metrics.reloads.WithLabelValues("ok")
	reload := func() {
		t.Helper()
		before := testutil.ToFloat64(ok)
		h.setNext(cfgFor(h.cfg.BaseDir), nil)
		h.reload <- struct{}{}
		eventually(t, "the reload", func() bool { return testutil.ToFloat64(ok) == before+1 })
	}

	presents("with certificate A", a)
	if resp, err := get(a.pool, tls.VersionTLS11); err == nil {
		t.Errorf("a TLS 1.1 client got an answer (%d, %s)", resp.StatusCode, tls.VersionName(resp.TLS.Version))
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("a TLS 1.1 client: %v, want the server's protocol version alert", err)
	}
	if _, err := get(b.pool, 0); err == nil {
		t.Error("a client that trusts only B accepted the server before the reload")
	}

	writePair(t, certFile, keyFile, b.certPEM, b.key)
	reload()
	if !strings.Contains(h.logs.String(), "public endpoint: TLS certificate reloaded") {
		t.Errorf("no log of the certificate reload:\n%s", h.logs.String())
	}
	presents("after the reload with B", b)
	if _, err := get(a.pool, 0); err == nil {
		t.Error("a client that trusts only A still accepted the server after the reload with B")
	}

	// B's certificate with A's key: the pair does not load.
	writePair(t, certFile, keyFile, b.certPEM, a.key)
	reload()
	logs := h.logs.String()
	if !strings.Contains(logs, "public endpoint: the TLS certificate stays as it was") ||
		!strings.Contains(logs, "private key does not match public key") {
		t.Errorf("no log of the refused pair:\n%s", logs)
	}
	presents("after a reload with a mismatched pair", b)
}
