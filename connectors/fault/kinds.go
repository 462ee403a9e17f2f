package fault

import (
	"net/http"
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
	HTML404 = Kind{Name: "html-404", Fault: Fault{HTML: true, Status: http.StatusNotFound}, Want: []string{"404"}, Answer: connectors.KindNotJSON}
	// Throttled is a 429 beyond the connector's throttling bound.
	Throttled = Kind{Name: "429", Fault: Fault{Status: http.StatusTooManyRequests}, Want: []string{"429"}, Answer: connectors.KindThrottled}
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
