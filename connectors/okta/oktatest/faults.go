package oktatest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"
)

// Fault is a failure injected with Inject at any endpoint and page position:
// an Okta error status, a proxy's HTML page, an answer cut mid-way, a
// connection closed without an answer, or an answer slower than the client
// waits. Fields combine: Delay is waited first, then the fault is given (or
// the real answer, when Delay is all there is).
type Fault struct {
	// Path is the URL path the fault applies to: exact ("/api/v1/users",
	// "/oauth2/v1/token"), with "{id}" standing for any one segment
	// ("/api/v1/groups/{id}/users"), or "*" for every path.
	Path string
	// Nth is the request to Path, counted from Inject, that gets the fault
	// first (1 = the next one; 0 means 1). With a page size of n, request k
	// of a listing is its page k.
	Nth int
	// Times is how many requests in a row get it (0 means 1, negative means
	// every one from the Nth on: a fault that outlasts any retry).
	Times int

	// Status alone answers that status with Okta's error body for it (401
	// E0000011, 500 E0000009, ...), after the rate-limit headers.
	Status int
	// HTML answers a proxy's HTML error page (Content-Type text/html) with
	// Status, or 200 if Status is 0: what a corporate proxy or a captive
	// portal sends instead of Okta's answer.
	HTML bool
	// Truncate sends the real answer with its body cut in the middle. The
	// body is sent without Content-Length and ends cleanly, so the client
	// sees a complete HTTP answer (200) holding half a JSON document.
	Truncate bool
	// Empty answers Status (200 if 0) as application/json with no body at
	// all, as a proxy that lost the upstream answer may.
	Empty bool
	// Body, when set, is sent as is, as application/json, with Status (200
	// if 0): "null", a recorded page.
	Body string
	// Reset closes the connection without an answer (hijack and close).
	Reset bool
	// Delay is waited before answering; the client may hang up first.
	Delay time.Duration
	// Stall sends the real answer's headers and half its body at once, and
	// the rest after Delay: an answer that starts in time but is slow to
	// finish.
	Stall bool

	seen int
}

// Inject adds a fault. Faults are checked in the order they were injected;
// the first one due answers the request.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Nth = max(f.Nth, 1)
	if f.Times == 0 {
		f.Times = 1
	}
	s.injected = append(s.injected, &f)
}

// ClearFaults removes every fault set with Inject or FailRequests.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.injected = nil
	s.faults = nil
}

// dueFault returns a copy of the injected fault that answers a request to
// path, if any, and counts the request against every matching fault.
func (s *Server) dueFault(path string) *Fault {
	var due *Fault
	kept := s.injected[:0]
	for _, f := range s.injected {
		if !matchPath(f.Path, path) {
			kept = append(kept, f)
			continue
		}
		f.seen++
		fires := f.seen >= f.Nth && (f.Times < 0 || f.seen < f.Nth+f.Times)
		if fires && due == nil {
			c := *f
			due = &c
		}
		if f.Times < 0 || f.seen < f.Nth+f.Times-1 {
			kept = append(kept, f)
		}
	}
	clear(s.injected[len(kept):])
	s.injected = kept
	return due
}

// matchPath reports whether path matches pattern ("*", exact, or with
// "{id}" segments).
func matchPath(pattern, path string) bool {
	if pattern == "*" || pattern == path {
		return true
	}
	if !strings.Contains(pattern, "{id}") {
		return false
	}
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if ps[i] != "{id}" && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// ProxyPage is the HTML error page a proxy sends for status.
func ProxyPage(status int) string {
	title := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if status == http.StatusOK {
		title = "Web Page Blocked"
	}
	return "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head>\n<body><center><h1>" + title +
		"</h1></center>\n<hr><center>corporate-proxy</center>\n</body></html>\n"
}

// writeProxyPage answers a proxy's HTML page.
func writeProxyPage(w http.ResponseWriter, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(ProxyPage(status)))
}

// resetConn closes the client's connection without an answer.
func resetConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// writeStalled sends rec's answer with half of its body, waits d (or for the
// client to hang up) and sends the rest.
func writeStalled(w http.ResponseWriter, r *http.Request, rec *httptest.ResponseRecorder, d time.Duration) {
	writeTruncated(w, rec)
	select {
	case <-time.After(d):
	case <-r.Context().Done():
		return
	}
	body := rec.Body.Bytes()
	_, _ = w.Write(bytes.Clone(body[len(body)/2:]))
}

// writeTruncated sends rec's answer with half of its body.
func writeTruncated(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, vs := range rec.Header() {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	body := rec.Body.Bytes()
	w.WriteHeader(rec.Code)
	_, _ = w.Write(bytes.Clone(body[:len(body)/2]))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
