package fault

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Kind is one way an answer goes wrong, the words the fetch error must use
// for it (any one of them, case-insensitive), and the kind of
// connectors.AnswerError the error must carry.
type Kind struct {
	Name   string
	Fault  Fault
	Want   []string
	Answer connectors.AnswerKind
	// Refusal marks a status that may refuse the credentials: its error
	// may be terminal. Every other kind's must not be.
	Refusal bool
}

// Slow reports whether the kind's answers come late: its fetches run with
// a short request_timeout and mostly wait.
func (k Kind) Slow() bool { return k.Fault.Delay > 0 }

// ShortTimeout is the request_timeout of the fetches with slow answers,
// which take five times as long (below the 1 s that the connectors'
// Validate allows, to keep them short).
const ShortTimeout = 200 * time.Millisecond

// Kinds are the faults every connector's matrix tries.
func Kinds() []Kind {
	const timeout = ShortTimeout
	return []Kind{
		{Name: "5xx", Fault: Fault{Status: http.StatusServiceUnavailable}, Want: []string{"503"}, Answer: connectors.KindStatus},
		{Name: "reset", Fault: Fault{Reset: true}, Want: []string{"closed the connection", "connection reset"}, Answer: connectors.KindNetwork},
		{Name: "truncated", Fault: Fault{Truncate: true}, Want: []string{"truncated"}, Answer: connectors.KindTruncated},
		{Name: "empty-200", Fault: Fault{Empty: true}, Want: []string{"empty"}, Answer: connectors.KindEmpty},
		{Name: "null-200", Fault: Fault{Body: "null"}, Want: []string{"null"}, Answer: connectors.KindNotObject},
		{Name: "html-200", Fault: Fault{HTML: true}, Want: []string{"not JSON (text/html"}, Answer: connectors.KindNotJSON},
		{Name: "html-502", Fault: Fault{HTML: true, Status: http.StatusBadGateway}, Want: []string{"502"}, Answer: connectors.KindNotJSON},
		{Name: "401", Fault: Fault{Status: http.StatusUnauthorized}, Want: []string{"401"}, Answer: connectors.KindStatus, Refusal: true},
		{Name: "slow", Fault: Fault{Delay: 5 * timeout}, Want: []string{"timed out"}, Answer: connectors.KindNetwork},
		{Name: "slow-body", Fault: Fault{Stall: true, Delay: 5 * timeout}, Want: []string{"timed out"}, Answer: connectors.KindNetwork},
	}
}

// Kinds some connectors try besides Kinds.
var (
	HTML404   = Kind{Name: "html-404", Fault: Fault{HTML: true, Status: http.StatusNotFound}, Want: []string{"404"}, Answer: connectors.KindNotJSON}
	Status500 = Kind{Name: "500", Fault: Fault{Status: http.StatusInternalServerError}, Want: []string{"500"}, Answer: connectors.KindStatus}
)

// Timeout is the request_timeout for a fault of kind k: ShortTimeout for a
// slow one; long for the others, which are answered at once, so that a
// busy machine does not turn them into timeouts.
func (k Kind) Timeout() time.Duration {
	if k.Slow() {
		return ShortTimeout
	}
	return 10 * time.Second
}

// Endpoint is one endpoint a connector's fetch reads, to be broken.
type Endpoint struct {
	// Name is the endpoint as the connector's request hooks name it.
	Name string
	// Requests is how many requests a clean fetch sends to it.
	Requests int
	// Variant names the fixture that reads it, for the connector.
	Variant string
}

// Case is one cell of a Matrix: a kind of fault at the Nth request to an
// endpoint, in a full or an incremental fetch.
type Case struct {
	Full     bool
	Endpoint Endpoint
	Nth      int
	Kind     Kind
}

// Fault is the case's fault, lasting from the Nth request on: a fault
// that outlasts any retry. Its Endpoint is for the connector's test to set,
// as its fake names the endpoint.
func (c Case) Fault() Fault {
	f := c.Kind.Fault
	f.Nth, f.Times = c.Nth, -1
	return f
}

// Outcome is what the fetch of a Case did.
type Outcome struct {
	Result *connectors.Result
	Err    error
	// Reached counts the requests to the endpoint since the fault was
	// injected.
	Reached int
	// Hidden are strings the error must not show: secrets, tokens.
	Hidden []string
}

// Matrix is a connector's fault test: every kind of fault at every
// endpoint and page position (the first, middle and last request), in a
// full and in an incremental fetch. Each fetch must fail as a whole (an
// error and no result), within a bound, with an error that names the
// source and what went wrong, and without the credentials.
type Matrix struct {
	// Source is the source name the errors must quote.
	Source string
	Kinds  []Kind
	// Endpoints runs a clean fetch, full or incremental, checks that each
	// endpoint answers in several pages, and returns the endpoints.
	Endpoints func(t *testing.T, full bool) []Endpoint
	// Fetch runs a case on a fixture of its own, with the case's fault
	// injected just before the fetch under test (run with Timed).
	Fetch func(t *testing.T, c Case) Outcome
}

// Run runs every case as a subtest, "mode/endpoint/n-of-m/kind". The fast
// ones run in parallel; slow answers mostly wait, so they run several at
// once beyond -parallel (but not so many that answers on time come late on
// a small machine).
func (m Matrix) Run(t *testing.T) {
	var slow []func(*testing.T)
	for _, full := range []bool{true, false} {
		mode := map[bool]string{true: "full", false: "incremental"}[full]
		for _, ep := range m.Endpoints(t, full) {
			for _, nth := range Positions(ep.Requests) {
				for _, k := range m.Kinds {
					c := Case{Full: full, Endpoint: ep, Nth: nth, Kind: k}
					name := fmt.Sprintf("%s/%s/%d-of-%d/%s", mode, ep.Name, nth, ep.Requests, k.Name)
					if k.Slow() {
						slow = append(slow, func(t *testing.T) { t.Run(name, func(t *testing.T) { m.run(t, c) }) })
						continue
					}
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						m.run(t, c)
					})
				}
			}
		}
	}
	t.Run("waiting", func(t *testing.T) {
		t.Parallel()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, run := range slow {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				run(t)
			})
		}
		wg.Wait()
	})
}

func (m Matrix) run(t *testing.T, c Case) {
	o := m.Fetch(t, c)
	if o.Reached < c.Nth {
		t.Fatalf("the fault was never reached: %d requests to %s (%v)", o.Reached, c.Endpoint.Name, o.Err)
	}
	CheckFailed(t, m.Source, o.Result, o.Err, c.Kind.Want, o.Hidden...)
	checkTaxonomy(t, o.Err, c.Kind)
}

// Positions are the first, middle and last of n requests.
func Positions(n int) []int {
	p := []int{1, (n + 1) / 2, n}
	slices.Sort(p)
	return slices.Compact(p)
}

// Timed runs the fetch under test with a deadline of 20 s and checks that
// it ends within 10 s.
func Timed(t testing.TB, fetch func(ctx context.Context) (*connectors.Result, error)) (*connectors.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := fetch(ctx)
	if took := time.Since(start); ctx.Err() != nil || took > 10*time.Second {
		t.Errorf("the fetch took %v", took)
	}
	return res, err
}

// Fetcher is a connector that fetches in full and incrementally.
type Fetcher interface {
	connectors.Connector
	connectors.Incremental
}

// FetchOf returns c's full fetch, or its incremental one from cursor.
func FetchOf(c Fetcher, full bool, cursor string) func(ctx context.Context) (*connectors.Result, error) {
	if full {
		return c.FetchAll
	}
	return func(ctx context.Context) (*connectors.Result, error) { return c.FetchChanges(ctx, cursor) }
}

// CheckFailed checks the contract of a failed fetch: an error and no
// result, an error that quotes the source, says one of want and shows
// none of hidden (both compared case-insensitively).
func CheckFailed(t testing.TB, source string, res *connectors.Result, err error, want []string, hidden ...string) {
	t.Helper()
	if err == nil || res != nil {
		t.Fatalf("fetch = %+v, %v; want an error and no result", res, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"`+source+`"`) {
		t.Errorf("error %q does not name the source %q", msg, source)
	}
	lower := strings.ToLower(msg)
	if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(lower, strings.ToLower(w)) }) {
		t.Errorf("error %q does not say %q", msg, strings.Join(want, `" or "`))
	}
	for _, s := range hidden {
		if s != "" && strings.Contains(lower, strings.ToLower(s)) {
			t.Errorf("error %q shows a secret or a token (%.6s…)", msg, s)
		}
	}
}

// CheckAnswer checks the error taxonomy: err carries a
// connectors.AnswerError of k's kind, which is not terminal unless k is a
// refusal.
func CheckAnswer(t testing.TB, err error, k Kind) {
	t.Helper()
	ae := connectors.AsAnswerError(err)
	switch {
	case ae == nil:
		t.Errorf("error %q carries no connectors.AnswerError; want kind %v", err, k.Answer)
	case ae.Kind != k.Answer:
		t.Errorf("error %q: answer kind %v, want %v", err, ae.Kind, k.Answer)
	case ae.Terminal && !k.Refusal:
		t.Errorf("error %q is terminal; a %s answer is worth retrying", err, k.Name)
	}
}

// checkTaxonomy is where Matrix asserts the error taxonomy of every case.
//
// TODO(issue 10): not live yet. The connectors return
// connectors.AnswerError once the answer layer (branch h1-answer) is
// merged; then this calls CheckAnswer(t, err, k).
func checkTaxonomy(t testing.TB, err error, k Kind) {
	t.Helper()
	_, _ = err, k
}

// Whole runs a full fetch of broken or fuzzed answers, with a deadline:
// it must fail as a whole (no result) or return a full result. Whole
// returns the result, or nil after a failed fetch.
func Whole(t testing.TB, fetchAll func(ctx context.Context) (*connectors.Result, error), deadline time.Duration) *connectors.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	res, err := fetchAll(ctx)
	if err != nil {
		if res != nil {
			t.Fatalf("FetchAll returned a result with error %v", err)
		}
		return nil
	}
	if res == nil || !res.Full {
		t.Fatalf("FetchAll returned %+v and no error", res)
	}
	return res
}

// First runs the first fetch of a case, with c, when it needs one: an
// incremental fetch continues from a full one, which touch then changes
// the source for; reuse asks for one before a full fetch too, so that the
// fetch under test reuses its connections. It returns the cursor for the
// fetch under test.
func First(t testing.TB, c connectors.Connector, full, reuse bool, touch func()) string {
	t.Helper()
	if full && !reuse {
		return ""
	}
	first, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	if !full {
		touch()
	}
	return first.Cursor
}
