// Package scim serves SCIM 2.0 (RFC 7643, RFC 7644): the push endpoint
// where identity providers (Entra ID, Okta, OneLogin) provision the users
// and groups of a scim source, at /scim/<source>/v2.
//
// The resources are the identity provider's view, stored as pushed (see
// Store); each accepted write also changes the source's mirror, from which
// the reconciler builds the directory like for any source. Parsing of
// filters, paths and attribute lists is package scim/filter; list paging,
// attribute selection and the error answers (list.go, error.go) work on
// plain JSON objects so that other views can share them.
package scim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/internal/httplog"
)

// Source is one scim source the handler serves.
type Source struct {
	// Name is the source's name: its base URL is /scim/<Name>/v2.
	Name string
	// Token is the bearer token its identity provider sends.
	Token connectors.Secret
	// Rate is how many requests a second the token may make on average,
	// Burst how many at once; Rate 0 means no limit.
	Rate  float64
	Burst int
}

// Options configure a Handler.
type Options struct {
	Store Store
	// Logger gets one line per request (method, path, status, source).
	Logger *slog.Logger
	// Written is called after every accepted write, with the source's name:
	// the service reconciles after it.
	Written func(source string)
	// Observe is called after every request, for metrics. resource is
	// Users, Groups or the discovery endpoint's name.
	Observe func(source, resource, method string, status int, took time.Duration)
	// TrustForwarded uses X-Forwarded-Proto and X-Forwarded-Host for the
	// resources' locations (behind a reverse proxy).
	TrustForwarded bool
	// Now is the clock of the rate limits; nil is time.Now.
	Now func() time.Time
}

// Handler serves /scim/<source>/v2/... for every configured scim source.
type Handler struct {
	opts    Options
	log     *slog.Logger
	sources atomic.Pointer[map[string]*source]
	mu      sync.Mutex    // serialises SetSources
	writing chan struct{} // a token of 1: the write transaction in progress (see update)
}

// source is a served source with its token's digest and rate budget.
type source struct {
	Source
	digest [32]byte
	bucket *bucket
}

// NewHandler returns a handler for sources.
func NewHandler(opts Options, sources []Source) *Handler {
	h := &Handler{opts: opts, log: opts.Logger, writing: make(chan struct{}, 1)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.opts.Now == nil {
		h.opts.Now = time.Now
	}
	h.SetSources(sources)
	return h
}

// SetSources replaces the sources served (after a configuration reload). A
// source whose rate did not change keeps its budget.
func (h *Handler) SetSources(list []Source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := map[string]*source{}
	if p := h.sources.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*source, len(list))
	for _, s := range list {
		src := &source{Source: s, digest: sha256.Sum256([]byte(s.Token.Reveal()))}
		if o, ok := old[s.Name]; ok && o.Rate == s.Rate && o.Burst == s.Burst {
			src.bucket = o.bucket
		} else if s.Rate > 0 {
			src.bucket = newBucket(s.Rate, s.Burst, h.opts.Now())
		}
		next[s.Name] = src
	}
	h.sources.Store(&next)
}

// request is one request being served.
type request struct {
	w        http.ResponseWriter
	r        *http.Request
	src      *source
	resource string // Users, Groups, ServiceProviderConfig, ...
	id       string
	base     string // the source's base URL
}

// ServeHTTP routes, authenticates, limits and serves a request. A panic
// becomes a 500 SCIM error and a log line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveGuarded(h.log, w, r, h.serve, h.finish)
}

// serveGuarded serves r with serve, turns a panic into a 500 SCIM error and
// a log line, and hands the status sent and the time taken to finish.
func serveGuarded(log *slog.Logger, w http.ResponseWriter, r *http.Request, serve func(*request), finish func(*request, int, time.Duration)) {
	start := time.Now()
	sw := &httplog.StatusWriter{ResponseWriter: w}
	req := &request{w: sw, r: r}
	defer func() {
		if p := recover(); p != nil {
			answerPanic(log, sw, r, p)
		}
		finish(req, sw.Status, time.Since(start))
	}()
	serve(req)
}

// serve routes, authenticates and limits a push request.
func (h *Handler) serve(req *request) {
	sw, r := req.w, req.r
	name, rest, ok := splitPath(r.URL.Path)
	if !ok {
		writeError(sw, &Error{Status: http.StatusNotFound, Detail: "not a SCIM endpoint: the base URL is /scim/<source>/v2"})
		return
	}
	srcs := *h.sources.Load()
	src := srcs[name]
	if src == nil || !authorized(r, src) {
		// No hint whether the source or the token was wrong.
		writeError(sw, &Error{Status: http.StatusUnauthorized, Detail: "authentication failed"})
		return
	}
	req.src = src
	if wait, ok := src.bucket.take(h.opts.Now()); !ok {
		writeError(sw, &Error{Status: http.StatusTooManyRequests, Detail: "too many requests for this token",
			RetryAfter: int(wait/time.Second) + 1})
		return
	}
	req.base = h.baseURL(r, name)
	h.route(req, rest)
}

// finish logs and observes a request.
func (h *Handler) finish(req *request, status int, took time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	name := ""
	if req.src != nil {
		name = req.src.Name
	}
	h.log.Info("scim request", "source", name, "method", req.r.Method, "path", req.r.URL.Path, "status", status,
		"took", took.Round(time.Microsecond))
	if h.opts.Observe != nil && name != "" {
		h.opts.Observe(name, req.resource, req.r.Method, status, took)
	}
}

// splitPath cuts /scim/<source>/v2/<rest> (v2 in any case, trailing
// slashes ignored).
func splitPath(p string) (source string, rest []string, ok bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "scim") || !strings.EqualFold(parts[2], "v2") {
		return "", nil, false
	}
	var out []string
	for _, s := range parts[3:] {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.ToLower(parts[1]), out, true
}

// authorized compares the bearer token in constant time (digests, so that
// not even the length leaks).
func authorized(r *http.Request, src *source) bool {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(strings.TrimSpace(auth), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || src.Token == "" {
		return false
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(d[:], src.digest[:]) == 1
}

func (h *Handler) baseURL(r *http.Request, name string) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if h.opts.TrustForwarded {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
			host = fh
		}
	}
	return scheme + "://" + host + "/scim/" + name + "/v2"
}

// route dispatches on the resource and the method.
func (h *Handler) route(req *request, rest []string) {
	if len(rest) == 0 {
		writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
		return
	}
	method := req.r.Method
	switch strings.ToLower(rest[0]) {
	case "users", "groups":
		req.resource = "Users"
		typ := TypeUser
		if strings.EqualFold(rest[0], "groups") {
			req.resource, typ = "Groups", TypeGroup
		}
		if len(rest) > 2 {
			writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
			return
		}
		if len(rest) == 2 {
			req.id = rest[1]
		}
		h.resourceMethod(req, typ, method)
	case "serviceproviderconfig", "serviceconfiguration", "resourcetypes", "schemas":
		req.resource = discoveryName(rest[0])
		if method != http.MethodGet {
			writeError(req.w, &Error{Status: http.StatusMethodNotAllowed, Detail: "discovery endpoints are read-only"})
			return
		}
		serveDiscovery(req, rest)
	default:
		writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
	}
}

func (h *Handler) resourceMethod(req *request, typ, method string) {
	switch {
	case req.id == "" && method == http.MethodGet:
		h.list(req, typ)
	case req.id == "" && method == http.MethodPost:
		h.create(req, typ)
	case req.id != "" && method == http.MethodGet:
		h.get(req, typ)
	case req.id != "" && method == http.MethodPut:
		h.replace(req, typ)
	case req.id != "" && method == http.MethodPatch:
		h.patch(req, typ)
	case req.id != "" && method == http.MethodDelete:
		h.delete(req, typ)
	default:
		writeError(req.w, &Error{Status: http.StatusMethodNotAllowed, Detail: method + " is not supported here"})
	}
}

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// bucket is a token bucket: rate tokens a second, at most burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	if burst < 1 {
		burst = max(1, int(rate))
	}
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take spends a token, or says how long until one is there. A nil bucket
// has no limit.
func (b *bucket) take(now time.Time) (time.Duration, bool) {
	if b == nil {
		return 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second)), false
}
