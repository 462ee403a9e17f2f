package fault

import (
	"cmp"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/learnsync/learnsync/internal/httplog"
)

// Handler is what a fake IdP supplies to the Injector: the name of a
// request's endpoint, its real answers and its IdP's error answers.
type Handler struct {
	// Endpoint names a request for faults and counts; nil names it by its
	// URL path.
	Endpoint func(r *http.Request) string
	// Answer writes the fake's real answer.
	Answer http.HandlerFunc
	// Error writes the IdP's error answer for f.Status, with f.Code and
	// f.Message where they are set.
	Error func(w http.ResponseWriter, r *http.Request, f *Fault)
	// JSONType is the Content-Type of the IdP's JSON answers, for Empty
	// and Body faults ("application/json" if empty).
	JSONType string
}

// Request is one request a fake answered, or is answering.
type Request struct {
	Method string
	// Endpoint is the fake's name for it (see Fault.Endpoint).
	Endpoint string
	Path     string
	RawQuery string
	Query    url.Values
	// Status is the answer's status: 0 while it is being answered, -1 for
	// a connection closed without an answer.
	Status int
	// Took is how long the fake took to answer, from the request's arrival
	// to the end of its handler (writing the body included); 0 while it is
	// being answered.
	Took time.Duration
}

// Injector holds the faults injected into a fake and logs its requests.
// Its zero value is ready for use; its methods are safe for concurrent
// use.
type Injector struct {
	mu     sync.Mutex
	faults []*pending
	counts map[string]int
	log    []Request
	gen    int // bumped by ResetRequests
}

type pending struct {
	Fault
	seen int
}

// Inject adds a fault. Faults are checked in the order they were injected;
// the first one due answers the request.
func (in *Injector) Inject(f Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f.Nth = max(f.Nth, 1)
	if f.Times == 0 {
		f.Times = 1
	}
	in.faults = append(in.faults, &pending{Fault: f})
}

// ClearFaults removes every pending fault.
func (in *Injector) ClearFaults() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = nil
}

// Requests counts the requests to endpoint (as the fake names it, see
// Fault.Endpoint), whatever their answer, since the start or
// ResetRequests.
func (in *Injector) Requests(endpoint string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.counts[endpoint]
}

// TotalRequests counts every request since the start or ResetRequests.
func (in *Injector) TotalRequests() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.log)
}

// RequestLog returns the requests since the start or ResetRequests, in the
// order they arrived.
func (in *Injector) RequestLog() []Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.log)
}

// ResetRequests zeroes the counts and the log. Injected faults keep
// counting from where they were injected.
func (in *Injector) ResetRequests() {
	in.mu.Lock()
	defer in.mu.Unlock()
	clear(in.counts)
	in.log = nil
	in.gen++
}

// arrive logs a request and returns its place in the log and the fault due
// for it, if any.
func (in *Injector) arrive(ep string, r *http.Request) (entry, *Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.counts == nil {
		in.counts = map[string]int{}
	}
	in.counts[ep]++
	in.log = append(in.log, Request{Method: r.Method, Endpoint: ep, Path: r.URL.Path,
		RawQuery: r.URL.RawQuery, Query: r.URL.Query()})
	return entry{in.gen, len(in.log) - 1}, in.due(ep)
}

// entry is the place of a request in the log.
type entry struct{ gen, i int }

// due counts a request to ep against the faults it reaches and returns a
// copy of the one that answers it.
func (in *Injector) due(ep string) *Fault {
	for i, f := range in.faults {
		if !match(f.Endpoint, ep) {
			continue
		}
		f.seen++
		if f.seen < f.Nth {
			continue
		}
		if f.Times > 0 && f.seen >= f.Nth+f.Times-1 {
			in.faults = slices.Delete(in.faults, i, i+1)
		}
		c := f.Fault
		return &c
	}
	return nil
}

// answered records the status of the request at e and how long it took,
// unless the log was reset meanwhile.
func (in *Injector) answered(e entry, status int, took time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if e.gen == in.gen {
		in.log[e.i].Status = status
		in.log[e.i].Took = took
	}
}

// match reports whether ep matches pattern ("*", exact, or with "{id}"
// segments).
func match(pattern, ep string) bool {
	if pattern == "*" || pattern == ep {
		return true
	}
	if !strings.Contains(pattern, "{id}") {
		return false
	}
	ps, xs := strings.Split(pattern, "/"), strings.Split(ep, "/")
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

// Serve returns the fake's handler: every request is logged and counted,
// and gets the fault due for it, or h's real answer.
func (in *Injector) Serve(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ep := r.URL.Path
		if h.Endpoint != nil {
			ep = h.Endpoint(r)
		}
		e, f := in.arrive(ep, r)
		sw := &httplog.StatusWriter{ResponseWriter: w}
		if f == nil {
			h.Answer(sw, r)
		} else {
			h.give(sw, r, f)
		}
		in.answered(e, sw.Status, time.Since(start))
	})
}

// give answers r with the fault f.
func (h Handler) give(w *httplog.StatusWriter, r *http.Request, f *Fault) {
	if f.Delay > 0 && !f.Stall && !wait(r, f.Delay) {
		return
	}
	if f.Reset {
		w.Status = -1
		reset(w.ResponseWriter)
		return
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	switch {
	case f.HTML:
		status := cmp.Or(f.Status, http.StatusOK)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(ProxyPage(status)))
	case f.Empty || f.Body != "":
		if f.Header.Get("Content-Type") == "" {
			w.Header().Set("Content-Type", cmp.Or(h.JSONType, "application/json"))
		}
		w.WriteHeader(cmp.Or(f.Status, http.StatusOK))
		_, _ = w.Write([]byte(f.Body))
	case f.Truncate || f.Stall:
		h.cut(w, r, f)
	case f.Status != 0:
		h.Error(w, r, f)
	default:
		h.Answer(w, r)
	}
}

// cut sends the fake's answer with half of its body and, for a stall, the
// rest after f.Delay (unless the client hangs up first).
func (h Handler) cut(w http.ResponseWriter, r *http.Request, f *Fault) {
	rec := httptest.NewRecorder()
	if f.Status != 0 {
		h.Error(rec, r, f)
	} else {
		h.Answer(rec, r)
	}
	for k, vs := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = vs
		}
	}
	body := rec.Body.Bytes()
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body[:len(body)/2])
	if !f.Stall {
		return
	}
	_ = http.NewResponseController(w).Flush()
	if wait(r, f.Delay) {
		_, _ = w.Write(body[len(body)/2:])
	}
}

// wait waits d, or until the client hangs up, and reports whether the
// client is still there.
func wait(r *http.Request, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// reset closes the client's connection without an answer.
func reset(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}
