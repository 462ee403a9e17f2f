package scim

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/internal/httplog"
	"github.com/learnsync/learnsync/scim/filter"
)

// The read view: /scim/v2 serves the learning directory itself (the
// reconciled people with their groups and licenses) to applications,
// read-only, with its own token. It shares the paging, attribute selection
// and error answers of the push endpoint, not its resources: those are the
// identity providers' view.

// ReadSource is the source label of the read view in logs and metrics; the
// parentheses keep it apart from every source name.
const ReadSource = "(directory)"

// ReadStore is what the read view needs of the learning directory. Filters
// are translated to SQL by the store; an attribute it cannot filter on is
// an *Error (400 invalidFilter).
type ReadStore interface {
	// ReadUsers reads a page of people in id order and how many match.
	ReadUsers(ctx context.Context, q ReadQuery) (*ReadPage, error)
	// ReadGroups reads a page of groups in id order and how many match.
	ReadGroups(ctx context.Context, q ReadQuery) (*ReadPage, error)
}

// ReadQuery narrows a read: Filter (nil for all), then Offset and Limit.
type ReadQuery struct {
	Filter        filter.Expr
	Offset, Limit int
	// NoMembers skips the members of groups (excludedAttributes=members).
	NoMembers bool
}

// ReadPage is one page of people or groups and the number in the whole list.
type ReadPage struct {
	Total  int
	Users  []DirUser
	Groups []DirGroup
}

// DirUser is a person of the directory.
type DirUser struct {
	ID                         int64
	UserName, Email            string
	GivenName, FamilyName      string
	DisplayName, Title         string
	Department, EmployeeNumber string
	CostCenter, Manager        string
	Active                     bool
	Created, Modified          time.Time
	Groups                     []DirRef
	Entitlements               []string // the pools the person holds a seat of
}

// DirGroup is a group of the directory; its display name is source/name.
type DirGroup struct {
	ID                int64
	Source, Name      string
	ExternalID        string
	Created, Modified time.Time
	Members           []DirRef
}

// DirRef is a member or a group: its id and how it is displayed.
type DirRef struct {
	ID      int64
	Display string
}

// ReadOptions configure a ReadHandler.
type ReadOptions struct {
	Store ReadStore
	// Logger gets one line per request.
	Logger *slog.Logger
	// Observe is called after every request, with source ReadSource.
	Observe func(source, resource, method string, status int, took time.Duration)
	// TrustForwarded uses X-Forwarded-Proto and X-Forwarded-Host for
	// locations.
	TrustForwarded bool
}

// ReadHandler serves the read view at /scim/v2. Without a token it is off:
// every request is 404.
type ReadHandler struct {
	opts  ReadOptions
	log   *slog.Logger
	token atomic.Pointer[source]
}

// NewReadHandler returns the read view, opened by token (off when empty).
func NewReadHandler(opts ReadOptions, token connectors.Secret) *ReadHandler {
	h := &ReadHandler{opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.SetToken(token)
	return h
}

// SetToken replaces the token (after a reload); empty turns the view off.
func (h *ReadHandler) SetToken(token connectors.Secret) {
	if token == "" {
		h.token.Store(nil)
		return
	}
	h.token.Store(&source{Source: Source{Name: ReadSource, Token: token}, digest: sha256.Sum256([]byte(token.Reveal()))})
}

// IsReadPath reports whether p is under /scim/v2 (the read view) rather
// than /scim/<source>/v2 (a push source, which may be named v2 too).
func IsReadPath(p string) bool {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	return len(parts) >= 2 && strings.EqualFold(parts[0], "scim") && strings.EqualFold(parts[1], "v2") &&
		(len(parts) < 3 || !strings.EqualFold(parts[2], "v2"))
}

// Route sends /scim/v2/... to read and every other path to push.
func Route(push, read http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if read != nil && IsReadPath(r.URL.Path) {
			read.ServeHTTP(w, r)
			return
		}
		push.ServeHTTP(w, r)
	})
}

// ServeHTTP authenticates and serves a read. A panic becomes a 500.
func (h *ReadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveGuarded(h.log, w, r, h.serve, h.finish)
}

// finish logs and observes a read.
func (h *ReadHandler) finish(req *request, status int, took time.Duration) {
	status = max(status, http.StatusOK)
	h.log.Info("scim request", "source", ReadSource, "method", req.r.Method, "path", req.r.URL.Path, "status", status,
		"took", took.Round(time.Microsecond))
	if h.opts.Observe != nil {
		h.opts.Observe(ReadSource, req.resource, req.r.Method, status, took)
	}
}

// serve authenticates and serves a read.
func (h *ReadHandler) serve(req *request) {
	sw, r := req.w, req.r
	src := h.token.Load()
	if src == nil {
		writeError(sw, &Error{Status: http.StatusNotFound, Detail: "the read view is off (server.public.read_token)"})
		return
	}
	if !authorized(r, src) {
		writeError(sw, &Error{Status: http.StatusUnauthorized, Detail: "authentication failed"})
		return
	}
	req.src = src
	req.base = h.baseURL(r)
	h.route(req, readRest(r.URL.Path))
}

// answerPanic logs a recovered panic and answers 500 unless an answer was
// started.
func answerPanic(log *slog.Logger, sw *httplog.StatusWriter, r *http.Request, p any) {
	log.Error("scim request panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	if sw.Status == 0 {
		writeError(sw, &Error{Status: http.StatusInternalServerError, Detail: "internal error"})
	}
}

// readRest is what follows /scim/v2, without empty segments.
func readRest(p string) []string {
	var out []string
	for i, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if i >= 2 && s != "" {
			out = append(out, s)
		}
	}
	return out
}

// baseURL is the view's base URL as the client reached it.
func (h *ReadHandler) baseURL(r *http.Request) string {
	push := (&Handler{opts: Options{TrustForwarded: h.opts.TrustForwarded}}).baseURL(r, "")
	return strings.TrimSuffix(push, "//v2") + "/v2"
}

// route answers GET on Users, Groups and discovery; other methods are 405.
func (h *ReadHandler) route(req *request, rest []string) {
	if len(rest) == 0 {
		writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
		return
	}
	switch strings.ToLower(rest[0]) {
	case "users", "groups":
		req.resource = "Users"
		if strings.EqualFold(rest[0], "groups") {
			req.resource = "Groups"
		}
		if len(rest) > 2 {
			writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
			return
		}
		if req.r.Method != http.MethodGet {
			writeError(req.w, &Error{Status: http.StatusMethodNotAllowed, Detail: "the directory's read view is read-only"})
			return
		}
		if len(rest) == 2 {
			req.id = rest[1]
		}
		h.read(req)
	case "serviceproviderconfig", "serviceconfiguration", "resourcetypes", "schemas":
		req.resource = discoveryName(rest[0])
		if req.r.Method != http.MethodGet {
			writeError(req.w, &Error{Status: http.StatusMethodNotAllowed, Detail: "discovery endpoints are read-only"})
			return
		}
		serveReadDiscovery(req, rest)
	default:
		writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
	}
}

// read serves a list, or one resource by id.
func (h *ReadHandler) read(req *request) {
	p, err := ParseListParams(req.r.URL.Query())
	if err != nil {
		writeError(req.w, err)
		return
	}
	q := ReadQuery{Filter: p.Filter, Offset: p.StartIndex - 1, Limit: p.Count, NoMembers: skipsMembers(p)}
	if req.id != "" {
		id, err := strconv.ParseInt(req.id, 10, 64)
		if err != nil || id <= 0 {
			writeError(req.w, ErrNotFound)
			return
		}
		q = ReadQuery{Filter: filter.Compare{Path: filter.AttrPath{Name: "id"}, Op: filter.Eq,
			Value: filter.Value{Kind: filter.KindNumber, Text: req.id}}, Limit: 1, NoMembers: q.NoMembers}
	}
	read := h.opts.Store.ReadUsers
	if req.resource == "Groups" {
		read = h.opts.Store.ReadGroups
	}
	page, err := read(req.r.Context(), q)
	if err != nil {
		writeError(req.w, err)
		return
	}
	objs := make([]map[string]any, 0, len(page.Users)+len(page.Groups))
	for i := range page.Users {
		objs = append(objs, Project(userJSON(&page.Users[i], req.base), p.Attributes, p.Excluded))
	}
	for i := range page.Groups {
		objs = append(objs, Project(groupJSON(&page.Groups[i], req.base, q.NoMembers), p.Attributes, p.Excluded))
	}
	if req.id != "" {
		if len(objs) == 0 {
			writeError(req.w, ErrNotFound)
			return
		}
		req.w.Header().Set("ETag", objs[0]["meta"].(map[string]any)["version"].(string))
		writeJSON(req.w, http.StatusOK, objs[0])
		return
	}
	writeJSON(req.w, http.StatusOK, NewListResponse(page.Total, p.StartIndex, objs))
}

// skipsMembers reports whether the answer shows no group members, so that
// the store need not read them.
func skipsMembers(p *ListParams) bool {
	for _, a := range p.Excluded {
		if strings.EqualFold(a.Attr.Name, "members") && a.Attr.Sub == "" && a.Attr.URN == "" {
			return true
		}
	}
	if len(p.Attributes) == 0 {
		return false
	}
	for _, a := range p.Attributes {
		if strings.EqualFold(a.Attr.Name, "members") {
			return false
		}
	}
	return true
}
