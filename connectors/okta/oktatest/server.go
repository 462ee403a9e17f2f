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
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/fault"
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

	person *Person // the profile of a user of AddPeopleFunc, until it changes
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

// Server is a fake Okta org. Its methods are safe for concurrent use. The
// embedded fault.Server injects faults (Fault.Endpoint is a URL path) and
// counts the requests by URL path.
type Server struct {
	*fault.Server
	// Token is the SSWS API token the org accepts.
	Token string

	mu        sync.Mutex
	offset    time.Duration
	seq       int64
	users     map[string]*User
	order     []*User // in id order; nil when stale
	byTime    []*User // in (lastUpdated, id) order
	groups    map[string]*Group
	gorder    []*Group            // in id order; nil when stale
	gtime     []*Group            // in order of last change; nil when stale
	members   map[string][]string // group id → member ids, sorted
	apps      map[string]*app
	limits    map[string]int
	window    time.Duration
	buckets   map[string]*bucket
	latency   time.Duration
	oauth     *oauthClient
	tokens    map[string][]string
	directApp bool
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
		order:   []*User{},
		groups:  make(map[string]*Group),
		members: make(map[string][]string),
		apps:    make(map[string]*app),
		limits:  maps.Clone(DefaultLimits),
		window:  time.Minute,
		buckets: make(map[string]*bucket),
		tokens:  make(map[string][]string),
	}
	s.Server = fault.Start(tb, "okta", fault.Handler{
		Answer: func(w http.ResponseWriter, r *http.Request) { s.handle(w, r, nil) },
		Error:  s.handle,
	})
	return s
}

// URL is the org URL, like https://127.0.0.1:43121.
func (s *Server) URL() string { return s.Server.URL }

// CACertFile returns the path of a PEM file with the server's certificate,
// for a config's ca_file.
func (s *Server) CACertFile(tb testing.TB) string {
	tb.Helper()
	return s.CAFile
}

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

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
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

// handle answers a request; a fault answers Okta's error for its status
// once the rate limit is counted. Both wait the latency first.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, f *fault.Fault) {
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}
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
	if f != nil {
		if fam == FamilyOAuth && (f.Status == http.StatusBadRequest || f.Status == http.StatusUnauthorized) {
			oauthError(w, f.Status, cmp.Or(f.Code, "invalid_client"), cmp.Or(f.Message, "Client authentication failed."))
			return
		}
		writeStatusError(w, f.Status, f.Code, f.Message)
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
				s.Server.URL, s.Server.URL, need, r.URL.Path))
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
		writeOne(w, s.users, parts[1], s.userJSON)
	case len(parts) == 1 && parts[0] == "groups":
		s.listGroups(w, r)
	case len(parts) == 2 && parts[0] == "groups":
		writeOne(w, s.groups, parts[1], s.groupJSON)
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

// writeOne answers the object with id, or Okta's 404.
func writeOne[T any](w http.ResponseWriter, objects map[string]*T, id string, render func(*T) map[string]any) {
	o, ok := objects[id]
	if !ok {
		writeNotFound(w, id)
		return
	}
	writeJSON(w, render(o))
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
	fault.WriteJSON(w, status, "application/json", map[string]any{
		"errorCode":    code,
		"errorSummary": summary,
		"errorLink":    code,
		"errorId":      "oae" + randomString(22),
		"errorCauses":  cs,
	})
}

// statusErrors are the error codes and summaries Okta sends with a status.
var statusErrors = map[int][2]string{
	http.StatusBadRequest:          {"E0000001", "Api validation failed"},
	http.StatusUnauthorized:        {"E0000011", "Invalid token provided"},
	http.StatusForbidden:           {"E0000006", "You do not have permission to perform the requested action"},
	http.StatusNotFound:            {"E0000007", "Not found: Resource not found"},
	http.StatusTooManyRequests:     {"E0000047", "API call exceeded rate limit due to too many requests."},
	http.StatusInternalServerError: {"E0000009", "Internal Server Error"},
	http.StatusServiceUnavailable:  {"E0000010", "Service is in read only mode"},
}

// writeStatusError writes the error Okta sends with status, or one with
// code and summary where they are set.
func writeStatusError(w http.ResponseWriter, status int, code, summary string) {
	e, ok := statusErrors[status]
	if !ok {
		e = [2]string{"E0000009", http.StatusText(status)}
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("X-Rate-Limit-Remaining", "0")
	}
	writeError(w, status, cmp.Or(code, e[0]), cmp.Or(summary, e[1]))
}
