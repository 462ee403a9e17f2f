package connectors

import (
	"errors"
	"time"
)

// AnswerKind says what was wrong with an IdP's answer, or that there was
// none. The three IdP connectors report every failed request with one of
// these, so that callers, tests and operators see one taxonomy.
type AnswerKind int

// Answer kinds.
const (
	// KindNetwork: no complete answer arrived (refused, reset, closed,
	// timed out, untrusted certificate).
	KindNetwork AnswerKind = iota + 1
	// KindNotJSON: the answer is not JSON, typically an HTML page from a
	// proxy or firewall in front of the IdP. Its status says nothing about
	// the IdP's objects or credentials.
	KindNotJSON
	// KindEmpty: a 2xx answer with no body: cut on the way.
	KindEmpty
	// KindTruncated: a 2xx answer whose JSON breaks off or is invalid.
	KindTruncated
	// KindNotObject: JSON, but not the object or list the IdP sends (null,
	// a bare string).
	KindNotObject
	// KindTooLarge: the body is larger than the connector's limit.
	KindTooLarge
	// KindStatus: the IdP answered with an error status and its own error
	// body (a 5xx, a 404, a refused token).
	KindStatus
	// KindThrottled: rate limited beyond the connector's throttling bound.
	KindThrottled
)

var kindNames = map[AnswerKind]string{
	KindNetwork:   "network",
	KindNotJSON:   "not-json",
	KindEmpty:     "empty",
	KindTruncated: "truncated",
	KindNotObject: "not-object",
	KindTooLarge:  "too-large",
	KindStatus:    "status",
	KindThrottled: "throttled",
}

// String names the kind in logs and tests.
func (k AnswerKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// AnswerError is a request whose answer a connector could not use. Its
// message is written for an administrator: it names the IdP and the
// endpoint and says what was wrong; it never holds a URL's query, a token
// or a client assertion.
type AnswerError struct {
	// Endpoint names the request's endpoint family ("users",
	// "GET /groups/delta", "token").
	Endpoint string
	// Status is the answer's HTTP status, 0 when there was none.
	Status int
	Kind   AnswerKind
	// RetryAfter is the wait the IdP asked for (429, 503), if any.
	RetryAfter time.Duration
	// Terminal says retrying cannot help: credentials refused, a
	// certificate that is not trusted. A terminal error matches ErrTerminal.
	Terminal bool
	// Msg is the whole message.
	Msg string
}

func (e *AnswerError) Error() string { return e.Msg }

// Is makes a terminal AnswerError match ErrTerminal.
func (e *AnswerError) Is(target error) bool { return target == ErrTerminal && e.Terminal }

// AsAnswerError returns the AnswerError in err's chain, or nil.
func AsAnswerError(err error) *AnswerError {
	var ae *AnswerError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}
