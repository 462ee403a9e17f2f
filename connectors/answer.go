package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
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
	// Code is the IdP's own error code, if its error body has one
	// ("E0000011", "syncStateNotFound", "AADSTS7000215").
	Code string
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

// Retryable reports whether another attempt may get a good answer: the
// connection failed, or a 2xx body was cut short on the way.
func (e *AnswerError) Retryable() bool {
	switch e.Kind {
	case KindNetwork:
		return !e.Terminal
	case KindEmpty, KindTruncated, KindNotObject:
		return true
	}
	return false
}

// NetworkFailure is the AnswerError of a request to endpoint that got no
// complete answer because of cause; msg is the whole message. A certificate
// that is not trusted is terminal. The cause is not wrapped: an SDK that
// retries some errors itself (Okta's retries io.EOF forever) must not see it.
func NetworkFailure(endpoint string, cause error, msg string) *AnswerError {
	return &AnswerError{Endpoint: endpoint, Kind: KindNetwork, Terminal: CertificateError(cause), Msg: msg}
}

// AnswerCheck reads and checks the HTTP answers of one identity provider, so
// that a body the IdP did not send (a proxy's page, a body cut on the way)
// never reaches a decoder that would take it for an empty last page.
type AnswerCheck struct {
	// IdP names the provider in messages: "Okta", "Microsoft", "OneLogin".
	IdP string
	// Limit bounds one body, in bytes.
	Limit int64
	// ObjectOnly refuses a 2xx JSON list: the IdP answers only objects.
	ObjectOnly bool
}

// Read reads a whole body and closes it. A body over the limit is an
// *AnswerError of KindTooLarge; a read that fails is returned as it is (a
// network failure, which the caller describes).
func (c AnswerCheck) Read(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, c.Limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > c.Limit {
		return nil, &AnswerError{Kind: KindTooLarge, Msg: fmt.Sprintf("answer larger than %d MiB", c.Limit>>20)}
	}
	return b, nil
}

// Check returns what is wrong with a complete answer, or nil when it is one
// the IdP sends: a 2xx JSON object (or list), a 204, or an error status with
// a JSON body (the IdP's own error, for the caller to read). The error's
// message starts with "answer" or "HTTP <status> answer"; the caller puts the
// connector and the endpoint in front.
//
//   - a body that is not JSON, at any status: KindNotJSON, quoting an HTML
//     page's title (a proxy or firewall answered; its status says nothing
//     about the IdP);
//   - an error status with no body or invalid JSON: KindNotJSON too;
//   - a 2xx answer with no body: KindEmpty;
//   - a 2xx answer whose JSON breaks off or is invalid: KindTruncated;
//   - a 2xx answer of JSON that is not an object (or list): KindNotObject.
func (c AnswerCheck) Check(status int, h http.Header, body []byte) *AnswerError {
	ok := status >= 200 && status < 300
	if status == http.StatusNoContent {
		return nil
	}
	trimmed := bytes.TrimSpace(body)
	what := "answer"
	if !ok {
		what = fmt.Sprintf("HTTP %d %s answer", status, http.StatusText(status))
	}
	bad := func(kind AnswerKind, format string, args ...any) *AnswerError {
		return &AnswerError{Status: status, Kind: kind, Msg: what + " " + fmt.Sprintf(format, args...)}
	}
	switch {
	case !IsJSON(h) && len(trimmed) > 0:
		return bad(KindNotJSON, "is not JSON (%s)%s: a proxy or firewall between learnsync and %s may have answered instead",
			mediaType(h), pageTitle(body), c.IdP)
	case !ok && len(trimmed) == 0:
		return bad(KindNotJSON, "has no body, not %s's error answer", c.IdP)
	case !ok && !json.Valid(trimmed):
		return bad(KindNotJSON, "is truncated or not valid JSON, not %s's error answer", c.IdP)
	case !ok:
		return nil
	case len(trimmed) == 0:
		return bad(KindEmpty, "is empty (HTTP %d with no body): truncated on the way", status)
	case !json.Valid(trimmed):
		return bad(KindTruncated, "is truncated or not valid JSON (%d bytes: %s)", len(body), jsonProblem(trimmed))
	case c.ObjectOnly && trimmed[0] != '{':
		return bad(KindNotObject, "is JSON but not an object (%s)", Clean(string(trimmed), 120))
	case trimmed[0] != '{' && trimmed[0] != '[':
		// Decoders take a JSON null for an empty list: a listing would end.
		return bad(KindNotObject, "is JSON but not an object or a list (%s)", Clean(string(trimmed), 120))
	}
	return nil
}

// IsJSON reports whether an answer's Content-Type says JSON.
func IsJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt == "" {
		return "no Content-Type"
	}
	return mt
}

var titlePattern = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// pageTitle quotes an HTML page's title, which usually names the proxy's
// complaint ("Web Page Blocked", "502 Bad Gateway").
func pageTitle(body []byte) string {
	m := titlePattern.FindSubmatch(body)
	if m == nil {
		return ""
	}
	if t := Clean(string(m[1]), 120); t != "" {
		return fmt.Sprintf(", page title %q", t)
	}
	return ""
}

// jsonProblem says where a JSON body breaks.
func jsonProblem(body []byte) string {
	var v any
	err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "the document ends in the middle"
	case err != nil:
		return Clean(err.Error(), 120)
	}
	return "extra data after the document"
}

// Clean makes text from an answer safe for one log line: valid UTF-8, no
// control characters, runs of white space as one space, at most n bytes
// (cut at a character boundary, marked with "…").
func Clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
