package fault_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/fault"
)

// newFake is a fake whose real answer is "real" and whose error answer
// names the status and the fault's code.
func newFake(t *testing.T) *fault.Server {
	return fault.Start(t, "kit", fault.Handler{
		Answer: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"real": true}`)
		},
		Error: func(w http.ResponseWriter, _ *http.Request, f *fault.Fault) {
			w.WriteHeader(f.Status)
			_, _ = io.WriteString(w, `{"error": "`+f.Code+`"}`)
		},
	})
}

func get(t *testing.T, s *fault.Server, path string) (int, string, error) {
	t.Helper()
	resp, err := s.Client().Get(s.URL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type") + " " + string(b), err
}

func TestInjectCountsFromInjectAndInOrder(t *testing.T) {
	s := newFake(t)
	get(t, s, "/a")
	s.Inject(fault.Fault{Endpoint: "/a", Nth: 2, Status: 500, Code: "first"})
	// Both count the next request; the one the first fault answers does
	// not count for the second.
	s.Inject(fault.Fault{Endpoint: "/a", Nth: 2, Status: 503, Code: "second"})
	s.Inject(fault.Fault{Endpoint: "/x/{id}", Times: -1, Status: 404})
	var got []int
	for range 4 {
		st, _, _ := get(t, s, "/a")
		got = append(got, st)
	}
	if want := []int{200, 500, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	for range 2 {
		if st, _, _ := get(t, s, "/x/7"); st != 404 {
			t.Errorf("/x/7: %d, want the lasting 404", st)
		}
	}
	if st, _, _ := get(t, s, "/x/7/y"); st != 200 {
		t.Errorf("/x/7/y: %d; {id} is one segment", st)
	}
	if n, all := s.Requests("/a"), s.TotalRequests(); n != 5 || all != 8 {
		t.Errorf("Requests = %d, TotalRequests = %d, want 5 and 8", n, all)
	}
	log := s.RequestLog()
	if log[2].Status != 500 || log[2].Path != "/a" {
		t.Errorf("log[2] = %+v", log[2])
	}
	for i, r := range log {
		if r.Took <= 0 {
			t.Errorf("log[%d].Took = %v, want the time the answer took", i, r.Took)
		}
	}
	s.ResetRequests()
	s.ClearFaults()
	if st, _, _ := get(t, s, "/x/7"); st != 200 || s.TotalRequests() != 1 {
		t.Errorf("after ClearFaults and ResetRequests: %d, %d requests", st, s.TotalRequests())
	}
}

func TestBrokenAnswers(t *testing.T) {
	for _, c := range []struct {
		name   string
		f      fault.Fault
		status int
		body   string // what the answer holds (prefix)
		err    bool
	}{
		{"status", fault.Fault{Status: 502, Code: "bad"}, 502, `text/plain; charset=utf-8 {"error": "bad"}`, false},
		{"html", fault.Fault{HTML: true}, 200, "text/html; charset=utf-8 <!DOCTYPE html>", false},
		{"html with status", fault.Fault{HTML: true, Status: 404}, 404, "text/html; charset=utf-8 <!DOCTYPE html>", false},
		{"empty", fault.Fault{Empty: true}, 200, "application/json ", false},
		{"body", fault.Fault{Body: "null", Header: http.Header{"Retry-After": {"0"}}}, 200, "application/json null", false},
		{"truncated", fault.Fault{Truncate: true}, 200, `application/json {"real"`, false},
		{"late", fault.Fault{Delay: 10 * time.Millisecond}, 200, `application/json {"real": true}`, false},
		{"stall", fault.Fault{Stall: true, Delay: 10 * time.Millisecond}, 200, `application/json {"real": true}`, false},
		{"reset", fault.Fault{Reset: true}, 0, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newFake(t)
			c.f.Endpoint = "*"
			s.Inject(c.f)
			st, body, err := get(t, s, "/p")
			if (err != nil) != c.err || st != c.status || !strings.HasPrefix(body, c.body) {
				t.Errorf("got %d %q, %v; want %d %q", st, body, err, c.status, c.body)
			}
			if c.name == "truncated" && strings.HasSuffix(body, "}") {
				t.Errorf("body %q is not cut", body)
			}
			if st, _, _ := get(t, s, "/p"); st != 200 {
				t.Errorf("the next request got %d; a fault lasts once by default", st)
			}
		})
	}
}

func TestCheckAnswerWithoutAnswerError(t *testing.T) {
	var rec recorder
	fault.CheckAnswer(&rec, errors.New("plain"), fault.Kinds()[0])
	if !rec.failed {
		t.Error("an error without an AnswerError passed the taxonomy check")
	}
}

type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
