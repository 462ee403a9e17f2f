// Package oktatest is a fake Okta org for tests: a TLS server that speaks
// the Management API's wire format closely enough for okta-sdk-golang/v2.
//
// What it reproduces: SSWS tokens (401 E0000011 for a wrong one) and OAuth
// 2.0 private-key client credentials; Link headers for self and next as
// separate header lines with opaque `after` cursors; `search` (all
// statuses) and `filter` (DEPROVISIONED hidden unless the filter names a
// status) on users; the plain users listing hiding DEPROVISIONED users;
// groups with type, lastUpdated and lastMembershipUpdated filters; group
// members; app users (direct and through groups) and app groups; Date and
// X-Rate-Limit-* on every answer; a 429 with errorCode E0000047 once a
// family's budget is spent; Okta's JSON error bodies. Tests change the org
// while it runs, move its clock, inject failures and count requests.
//
//	srv := oktatest.New(t)
//	id := srv.AddPerson("ada@example.com", "Ada", "Lovelace", "ACTIVE")
//	g := srv.AddGroup(oktatest.Group{Name: "Engineering"})
//	srv.AddMember(g.ID, id)
//	// org_url: srv.URL(), api_token: srv.Token, ca_file: srv.CACertFile(t)
package oktatest

import (
	"cmp"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// User statuses of Okta.
const (
	StatusStaged          = "STAGED"
	StatusProvisioned     = "PROVISIONED"
	StatusActive          = "ACTIVE"
	StatusRecovery        = "RECOVERY"
	StatusPasswordExpired = "PASSWORD_EXPIRED"
	StatusLockedOut       = "LOCKED_OUT"
	StatusSuspended       = "SUSPENDED"
	StatusDeprovisioned   = "DEPROVISIONED"
)

// Statuses lists every user status Okta has.
var Statuses = []string{StatusStaged, StatusProvisioned, StatusActive, StatusRecovery,
	StatusPasswordExpired, StatusLockedOut, StatusSuspended, StatusDeprovisioned}

// Group types of Okta.
const (
	GroupTypeOkta    = "OKTA_GROUP"
	GroupTypeApp     = "APP_GROUP"
	GroupTypeBuiltIn = "BUILT_IN"
)

// Rate-limit families; the first path segment after /api/v1, or "oauth".
const (
	FamilyUsers  = "users"
	FamilyGroups = "groups"
	FamilyApps   = "apps"
	FamilyOAuth  = "oauth"
)

// User is a user of the fake org.
type User struct {
	ID            string
	Status        string
	Created       time.Time
	Activated     time.Time
	StatusChanged time.Time
	LastUpdated   time.Time
	// Profile holds login, email, firstName, lastName and any other
	// attribute; it is sent as is.
	Profile map[string]any
	// OmitID sends the record without its id, as a malformed record.
	OmitID bool
}

// Group is a group of the fake org.
type Group struct {
	ID                    string
	Type                  string // OKTA_GROUP unless set
	Name                  string
	Description           string
	Created               time.Time
	LastUpdated           time.Time
	LastMembershipUpdated time.Time
}

type app struct {
	id     string
	label  string
	users  map[string]time.Time // user id → assigned
	groups map[string]time.Time // group id → assigned
}

type bucket struct {
	used  int
	reset time.Time
}

type fault struct {
	path     string
	from, to int
	status   int
}

// Request is one request the server answered.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Status int
}

// Server is a fake Okta org. Its methods are safe for concurrent use.
type Server struct {
	// Token is the SSWS API token the org accepts.
	Token string

	ts *httptest.Server

	mu        sync.Mutex
	offset    time.Duration
	seq       int64
	users     map[string]*User
	order     []string // user ids, sorted; nil when stale
	groups    map[string]*Group
	members   map[string]map[string]bool
	apps      map[string]*app
	limits    map[string]int
	window    time.Duration
	buckets   map[string]*bucket
	faults    []fault
	injected  []*Fault
	counts    map[string]int
	total     int
	log       []Request
	latency   time.Duration
	oauth     *oauthClient
	tokens    map[string][]string
	directApp bool
	caFile    string
}

// DefaultLimits are the per-minute limits of each family, as on common
// Okta plans.
var DefaultLimits = map[string]int{FamilyUsers: 600, FamilyGroups: 500, FamilyApps: 100, FamilyOAuth: 600}

// New starts a fake org that is closed when tb ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		Token:   "00fake" + randomString(36),
		users:   make(map[string]*User),
		groups:  make(map[string]*Group),
		members: make(map[string]map[string]bool),
		apps:    make(map[string]*app),
		limits:  maps.Clone(DefaultLimits),
		window:  time.Minute,
		buckets: make(map[string]*bucket),
		counts:  make(map[string]int),
		tokens:  make(map[string][]string),
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Clients that hang up (tests of timeouts, the end of a test) are no
	// news worth logging.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.ts.StartTLS()
	tb.Cleanup(s.ts.Close)
	return s
}

// URL is the org URL, like https://127.0.0.1:43121.
func (s *Server) URL() string { return s.ts.URL }

// Certificate is the server's self-signed certificate.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// Client is an HTTP client that trusts the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// CACertFile writes the server's certificate as PEM into a temporary
// directory of tb and returns its path, for a config's ca_file.
func (s *Server) CACertFile(tb testing.TB) string {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caFile != "" {
		return s.caFile
	}
	p := filepath.Join(tb.TempDir(), "okta-ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatalf("oktatest: write CA file: %v", err)
	}
	s.caFile = p
	return p
}

// Close shuts the server down (New does it when the test ends).
func (s *Server) Close() { s.ts.Close() }

// Now is the org's clock: the real time plus whatever Advance added. It
// stamps lastUpdated and is sent as Date.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Server) now() time.Time { return time.Now().Add(s.offset) }

// stamp is now at Okta's millisecond resolution.
func (s *Server) stamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Advance moves the org's clock forward (or back, for d < 0).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// SetRateLimit sets a family's limit per window (see DefaultLimits).
func (s *Server) SetRateLimit(family string, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[family] = limit
	delete(s.buckets, family)
}

// SetRateWindow sets the length of the rate-limit windows (one minute by
// default; whole seconds). Short windows keep 429 tests fast.
func (s *Server) SetRateWindow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.window = max(d.Round(time.Second), time.Second)
	clear(s.buckets)
}

// FailRequests makes requests to path answer status with an Okta error
// body: counting from now, the nth request (1 = the next one) and the
// count−1 after it. A count of 0 or less fails every request from the nth on.
func (s *Server) FailRequests(path string, nth, count, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.counts[path] + max(nth, 1)
	to := from + count - 1
	if count <= 0 {
		to = int(^uint(0) >> 1)
	}
	s.faults = append(s.faults, fault{path: path, from: from, to: to, status: status})
}

// ClearFailures removes every failure set with FailRequests.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Requests counts the requests to exactly path (like "/api/v1/users"),
// whatever their answer, since the start or ResetRequests.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

// TotalRequests counts every request since the start or ResetRequests.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RequestLog returns the requests answered since the start or
// ResetRequests, in order.
func (s *Server) RequestLog() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// ResetRequests zeroes the counts and the log. Failures set with
// FailRequests keep counting from where they were set.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, n := range s.counts {
		for i := range s.faults {
			if s.faults[i].path == p {
				s.faults[i].from -= n
				s.faults[i].to -= n
			}
		}
	}
	clear(s.counts)
	s.total = 0
	s.log = nil
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// family names the rate-limit bucket of a path.
func family(path string) string {
	if strings.HasPrefix(path, "/oauth2/") {
		return FamilyOAuth
	}
	rest, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return "other"
	}
	rest, _, _ = strings.Cut(rest, "/")
	return rest
}

// serve runs every request through the org's gates (auth, rate limit,
// injected failures) and then the endpoint.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	latency := s.latency
	path := r.URL.Path
	s.counts[path]++
	s.total++
	n := s.counts[path]
	f := s.dueFault(path)
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}
	rw := &recorder{ResponseWriter: w}
	s.answer(rw, r, n, f)
	s.mu.Lock()
	s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Status: rw.status})
	s.mu.Unlock()
}

// answer gives the request its answer, or the injected fault f.
func (s *Server) answer(w *recorder, r *http.Request, n int, f *Fault) {
	if f == nil {
		s.handle(w, r, n, 0)
		return
	}
	if f.Delay > 0 && !f.Stall {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case f.Stall:
		rec := httptest.NewRecorder()
		s.handle(rec, r, n, f.Status)
		writeStalled(w, r, rec, f.Delay)
	case f.Reset:
		w.status = -1
		resetConn(w.ResponseWriter)
	case f.HTML:
		writeProxyPage(w, f.Status)
	case f.Empty || f.Body != "":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(cmp.Or(f.Status, http.StatusOK))
		_, _ = w.Write([]byte(f.Body))
	case f.Truncate:
		rec := httptest.NewRecorder()
		s.handle(rec, r, n, f.Status)
		writeTruncated(w, rec)
	default:
		s.handle(w, r, n, f.Status)
	}
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// handle answers a request, the nth to its path; a status other than 0
// answers Okta's error for it once the rate limit is counted.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := r.URL.Path
	fam := family(path)
	now := s.now()
	h := w.Header()
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	h.Set("Content-Type", "application/json")
	h.Set("X-Okta-Request-Id", randomString(20))

	// Rate limit: every answer carries the family's budget.
	limit := s.limits[fam]
	if limit <= 0 {
		limit = 1200
	}
	b := s.buckets[fam]
	if b == nil || !now.Before(b.reset) {
		reset := now.Add(s.window).Truncate(time.Second)
		if reset.Before(now.Add(s.window)) {
			reset = reset.Add(time.Second)
		}
		b = &bucket{reset: reset}
		s.buckets[fam] = b
	}
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	if b.used >= limit {
		h.Set("X-Rate-Limit-Remaining", "0")
		writeError(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
		return
	}
	b.used++
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(limit-b.used))
	if status != 0 {
		if fam == FamilyOAuth && (status == http.StatusBadRequest || status == http.StatusUnauthorized) {
			oauthError(w, status, "invalid_client", "Client authentication failed.")
			return
		}
		writeStatusError(w, status)
		return
	}

	if fam == FamilyOAuth {
		if r.Method == http.MethodPost && path == "/oauth2/v1/token" {
			s.token(w, r, now)
			return
		}
		writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+path+" (Path)")
		return
	}
	if !s.authorized(w, r, fam) {
		return
	}
	for _, f := range s.faults {
		if f.path == path && n >= f.from && n <= f.to {
			writeStatusError(w, f.status)
			return
		}
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	s.route(w, r)
}

// authorized checks SSWS or Bearer credentials and, for Bearer, the scope
// of the family.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, fam string) bool {
	auth := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(auth, "SSWS "); ok {
		if tok == s.Token {
			return true
		}
	} else if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		if scopes, known := s.tokens[tok]; known {
			need := "okta." + fam + ".read"
			manage := "okta." + fam + ".manage"
			if slices.Contains(scopes, need) || slices.Contains(scopes, manage) {
				return true
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(
				`Bearer authorization_uri="%s/oauth2/v1/authorize", realm="%s", scope="%s", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="%s"`,
				s.ts.URL, s.ts.URL, need, r.URL.Path))
			writeError(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
			return false
		}
	}
	writeError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
	return false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "users":
		s.listUsers(w, r)
	case len(parts) == 2 && parts[0] == "users":
		u, ok := s.users[parts[1]]
		if !ok {
			writeNotFound(w, parts[1])
			return
		}
		writeJSON(w, s.userJSON(u))
	case len(parts) == 1 && parts[0] == "groups":
		s.listGroups(w, r)
	case len(parts) == 2 && parts[0] == "groups":
		g, ok := s.groups[parts[1]]
		if !ok {
			writeNotFound(w, parts[1])
			return
		}
		writeJSON(w, s.groupJSON(g))
	case len(parts) == 3 && parts[0] == "groups" && parts[2] == "users":
		s.listGroupUsers(w, r, parts[1])
	case len(parts) == 3 && parts[0] == "apps" && parts[2] == "users":
		s.listAppUsers(w, r, parts[1])
	case len(parts) == 3 && parts[0] == "apps" && parts[2] == "groups":
		s.listAppGroups(w, r, parts[1])
	default:
		writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.URL.Path+" (Path)")
	}
}

func writeNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+id+" (Object)")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Okta's error body.
func writeError(w http.ResponseWriter, status int, code, summary string, causes ...string) {
	cs := make([]map[string]string, len(causes))
	for i, c := range causes {
		cs[i] = map[string]string{"errorSummary": c}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errorCode":    code,
		"errorSummary": summary,
		"errorLink":    code,
		"errorId":      "oae" + randomString(22),
		"errorCauses":  cs,
	})
}

// writeStatusError writes the error Okta sends with status.
func writeStatusError(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusBadRequest:
		writeError(w, status, "E0000001", "Api validation failed")
	case http.StatusUnauthorized:
		writeError(w, status, "E0000011", "Invalid token provided")
	case http.StatusForbidden:
		writeError(w, status, "E0000006", "You do not have permission to perform the requested action")
	case http.StatusNotFound:
		writeError(w, status, "E0000007", "Not found: Resource not found")
	case http.StatusTooManyRequests:
		w.Header().Set("X-Rate-Limit-Remaining", "0")
		writeError(w, status, "E0000047", "API call exceeded rate limit due to too many requests.")
	case http.StatusInternalServerError:
		writeError(w, status, "E0000009", "Internal Server Error")
	case http.StatusServiceUnavailable:
		writeError(w, status, "E0000010", "Service is in read only mode")
	default:
		writeError(w, status, "E0000009", http.StatusText(status))
	}
}
