package fault

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

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
