package connectors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// NewHTTPClient returns an HTTP client that trusts the system roots plus the
// PEM certificates in caFile (if not empty). TLS verification cannot be turned
// off: custom roots are the only way to talk to a private CA or a TLS proxy.
func NewHTTPClient(caFile string, timeout time.Duration) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// CheckURL validates a base URL: it must be absolute and https, except that
// plain http is allowed for loopback hosts (tests, local proxies).
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: plain http is only allowed for loopback hosts; use https", raw)
	default:
		return fmt.Errorf("%q: scheme must be https", raw)
	}
}

// IsLoopback reports whether host is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Backoff is an exponential backoff with full jitter.
type Backoff struct {
	// Attempts is how many times an operation is tried in all (>= 1).
	Attempts int
	// Base is the first wait; each later wait doubles, up to Max.
	Base time.Duration
	Max  time.Duration
}

// DefaultBackoff tries 4 times over about 7 seconds.
var DefaultBackoff = Backoff{Attempts: 4, Base: 500 * time.Millisecond, Max: 8 * time.Second}

// Delay returns the wait before retry number n (n = 1 for the first retry).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base << (n - 1)
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	// Full jitter keeps several learnsync instances from retrying in step.
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Budget paces requests so that this process uses at most Share of each
// endpoint family's rate limit, as reported by the API's rate-limit headers.
// The remaining budget is shared with every other integration of the
// customer's tenant, so Budget stops as soon as the family's remaining
// requests fall to the part reserved for others, and waits for the reset.
type Budget struct {
	Share float64
	// MaxWait bounds one wait; a reset further away than this is treated as
	// this far (clock skew, bogus headers).
	MaxWait time.Duration
	Now     func() time.Time

	mu       sync.Mutex
	families map[string]budgetState
}

type budgetState struct {
	limit, remaining int
	reset            time.Time
}

// Observe records the rate-limit headers of one answer for a family.
func (b *Budget) Observe(family string, limit, remaining int, reset time.Time) {
	if limit <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.families == nil {
		b.families = make(map[string]budgetState)
	}
	b.families[family] = budgetState{limit: limit, remaining: remaining, reset: reset}
}

// Reserve returns how long to wait before the next request of family. It
// counts the request against the known remaining budget.
func (b *Budget) Reserve(family string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.families[family]
	if !ok {
		return 0
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	share := b.Share
	if share <= 0 || share > 1 {
		share = 1
	}
	reserved := int(float64(st.limit) * (1 - share))
	if st.remaining > reserved {
		st.remaining--
		b.families[family] = st
		return 0
	}
	wait := st.reset.Sub(now())
	if wait < 0 {
		wait = 0
	}
	if b.MaxWait > 0 && wait > b.MaxWait {
		wait = b.MaxWait
	}
	// After the reset the family's budget is unknown until the next answer;
	// let one request through to learn it.
	delete(b.families, family)
	return wait + 100*time.Millisecond
}

// Wait blocks until a request of family may be sent and reports the wait to
// hooks. It returns ctx's error if ctx ends first.
func (b *Budget) Wait(ctx context.Context, family string, hooks Hooks) error {
	d := b.Reserve(family)
	if d <= 0 {
		return ctx.Err()
	}
	hooks.OnThrottled(family, d)
	return Sleep(ctx, d)
}

// ResolvePath makes a relative path from a connector's config relative to
// the config file's directory.
func ResolvePath(baseDir, p string) string {
	if p == "" || filepath.IsAbs(p) || baseDir == "" {
		return p
	}
	return filepath.Join(baseDir, p)
}

// CertificateError reports whether err is a TLS certificate that cannot be
// trusted: an unknown authority (no ca_file?), a wrong host name, an expired
// certificate. Retrying cannot fix it, so connectors fail at once, as for a
// terminal error, instead of backing off.
func CertificateError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		host     x509.HostnameError
		invalid  x509.CertificateInvalidError
		verifyTL *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &verifyTL)
}

// DescribeNetError says in an admin's words why a request got no answer:
// a timeout (naming timeout, the connector's request_timeout), a reset or
// closed connection, a refused connection (with hint, e.g. "is org_url
// right?"). The request's URL is left out: it may hold tokens (delta links,
// an OAuth client assertion).
func DescribeNetError(err error, timeout time.Duration, hint string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timed out: no complete answer within request_timeout (%s)", timeout)
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server or a proxy"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		return "the server or a proxy closed the connection without a complete answer"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (" + hint + ")"
	}
	return err.Error()
}
