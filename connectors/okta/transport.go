package okta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/learnsync/learnsync/connectors"
)

// Throttling bounds. Okta's rate-limit windows are one minute long, so a wait
// for a reset is never longer than about a minute; a request that is refused
// with 429 more than maxThrottleRetries times in a row fails the fetch. The
// worst case throttling alone adds to one request is therefore one budget
// wait plus maxThrottleRetries waits, each at most maxThrottleWait (about
// 12 minutes), and that bound is documented in docs/okta.md.
const (
	maxThrottleRetries = 10
	maxThrottleWait    = 65 * time.Second
	// throttleMargin is added to a 429 wait: the Date header has a
	// resolution of one second, so reset − date may be a little short.
	throttleMargin = 250 * time.Millisecond
)

// fetchState collects what the transport sees during one fetch. It travels
// in the request context, so that concurrent fetches (which the daemon does
// not do, but tests might) keep their counts apart.
type fetchState struct {
	requests atomic.Int64
	waits    atomic.Int64
	gaveUp   atomic.Bool // a 429 outlasted the throttling bound

	mu   sync.Mutex
	date time.Time // the earliest Date header of the fetch's answers
}

type stateKey struct{}

func withState(ctx context.Context, st *fetchState) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

// stateFrom returns the fetch's state, or a throwaway one for requests made
// outside a fetch (the SDK's OAuth token request carries no context).
func stateFrom(ctx context.Context) *fetchState {
	if st, ok := ctx.Value(stateKey{}).(*fetchState); ok {
		return st
	}
	return &fetchState{}
}

func (st *fetchState) earliestDate() time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.date
}

func (st *fetchState) sawDate(d time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.date.IsZero() || d.Before(st.date) {
		st.date = d
	}
}

// transport sits under the Okta SDK. It paces every request with the rate
// budget, reads X-Rate-Limit-* and Date on every answer, waits out 429s,
// retries 5xx and network errors with backoff, bounds each attempt with the
// request timeout and reports everything to the hooks. The SDK's own 429
// retry is turned off, so that there is one place that decides.
type transport struct {
	base    http.RoundTripper
	budget  *connectors.Budget
	hooks   connectors.Hooks
	retry   connectors.Backoff
	timeout time.Duration
	// maxThrottles is how many 429s in a row one request waits out.
	maxThrottles int
}

// endpointFamily names the rate-limit bucket of a request: the endpoint
// with ids replaced, such as "users", "groups" or "groups/{id}/users". Okta
// counts limits per endpoint (some endpoints share a bucket, which the
// headers then show), so the budget is kept per endpoint too.
func endpointFamily(path string) string {
	rest, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return strings.Trim(path, "/")
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	for i := 1; i < len(parts); i += 2 {
		parts[i] = "{id}"
	}
	return strings.Join(parts, "/")
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	st := stateFrom(ctx)
	family := endpointFamily(req.URL.Path)
	// Only requests whose body can be replayed are retried; the SDK sends
	// GETs and a body-less token POST, so in practice that is all of them.
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	attempts := max(t.retry.Attempts, 1)
	failures, throttles := 0, 0
	for {
		if d := t.budget.Reserve(family); d > 0 {
			t.hooks.OnThrottled(family, d)
			st.waits.Add(1)
			if err := connectors.Sleep(ctx, d); err != nil {
				return nil, err
			}
		}

		actx, cancel := ctx, context.CancelFunc(func() {})
		if t.timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, t.timeout)
		}
		r := req.WithContext(actx)
		if failures+throttles > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				cancel()
				return nil, err
			}
			r.Body = body
		}
		start := time.Now()
		resp, err := t.base.RoundTrip(r)
		took := time.Since(start)
		st.requests.Add(1)

		if err != nil {
			cancel()
			t.hooks.OnRequest(family, 0, took)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			failures++
			if failures < attempts && replayable && !connectors.CertificateError(err) {
				if err := connectors.Sleep(ctx, t.retry.Delay(failures)); err != nil {
					return nil, err
				}
				continue
			}
			return nil, networkError(family, failures, err, t.timeout)
		}
		t.hooks.OnRequest(family, resp.StatusCode, took)
		date := t.observe(family, resp, st)

		switch {
		case resp.StatusCode == http.StatusTooManyRequests && throttles < t.maxThrottles && replayable:
			throttles++
			wait := throttleWait(resp.Header, date)
			drain(resp.Body)
			cancel()
			t.hooks.OnThrottled(family, wait)
			st.waits.Add(1)
			if err := connectors.Sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		case resp.StatusCode == http.StatusTooManyRequests:
			st.gaveUp.Store(true)
		case retryableStatus(resp.StatusCode) && failures+1 < attempts && replayable:
			failures++
			drain(resp.Body)
			cancel()
			if err := connectors.Sleep(ctx, t.retry.Delay(failures)); err != nil {
				return nil, err
			}
			continue
		}

		// The whole answer is read here, within the attempt's timeout: a
		// body that stalls or breaks off is a failed attempt like a
		// network error, and a body that is not Okta's JSON never reaches
		// the SDK, which would take an empty or cut answer for a last page.
		body, err := readAnswer(resp.Body)
		// net/http may end a body cut by the attempt's deadline as if it
		// were complete: then it is the timeout, not a truncated answer.
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			err = checkAnswer(family, req.URL.Path, resp, body)
			if ae := (*answerError)(nil); timedOut && errors.As(err, &ae) && ae.retry {
				err = fmt.Errorf("answer cut off after %d bytes: %w", len(body), context.DeadlineExceeded)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var ae *answerError
			if errors.As(err, &ae) && !ae.retry {
				return nil, err
			}
			failures++
			if failures < attempts && replayable {
				if err := connectors.Sleep(ctx, t.retry.Delay(failures)); err != nil {
					return nil, err
				}
				continue
			}
			if ae != nil {
				ae.msg += fmt.Sprintf(" (%d attempts)", failures)
				return nil, ae
			}
			return nil, networkError(family, failures, err, t.timeout)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		return resp, nil
	}
}

// observe feeds the rate-limit headers to the budget and returns the
// answer's Date (zero if absent). Okta's reset is an epoch second on Okta's
// clock; it is moved onto the local clock through the Date header, so clock
// skew does not turn into too short or too long waits.
func (t *transport) observe(family string, resp *http.Response, st *fetchState) time.Time {
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err == nil {
		st.sawDate(date)
	} else {
		date = time.Time{}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		// The 429 wait is done right here; feeding the budget as well
		// would wait twice for the same reset.
		return date
	}
	limit, err1 := strconv.Atoi(resp.Header.Get("X-Rate-Limit-Limit"))
	remaining, err2 := strconv.Atoi(resp.Header.Get("X-Rate-Limit-Remaining"))
	reset, err3 := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return date
	}
	resetAt := time.Unix(reset, 0)
	if !date.IsZero() {
		resetAt = time.Now().Add(resetAt.Sub(date))
	}
	t.budget.Observe(family, limit, remaining, resetAt)
	return date
}

// throttleWait is how long to wait after a 429: until X-Rate-Limit-Reset,
// measured on Okta's clock (Date), plus a margin; one second when the
// headers are missing or already past.
func throttleWait(h http.Header, date time.Time) time.Duration {
	reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil || date.IsZero() {
		return time.Second
	}
	wait := time.Unix(reset, 0).Sub(date)
	if wait <= 0 {
		return time.Second
	}
	return min(wait+throttleMargin, maxThrottleWait)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// networkError reports a request that failed at the network level. It does
// not wrap the cause: the SDK retries errors matching io.EOF forever, and
// this one has been retried already.
func networkError(family string, tries int, err error, timeout time.Duration) error {
	if connectors.CertificateError(err) {
		return &netError{msg: fmt.Sprintf("okta %s request: the server's TLS certificate is not trusted (a private CA or TLS proxy needs ca_file): %v", family, err)}
	}
	return &netError{msg: fmt.Sprintf("okta %s request failed after %d attempts: %s", family, tries, connectors.DescribeNetError(err, timeout, "is org_url right, is a proxy in the way?"))}
}

type netError struct{ msg string }

func (e *netError) Error() string { return e.msg }

// maxAnswer bounds one answer's body; a page of 200 users is about 300 kB.
const maxAnswer = 64 << 20

func readAnswer(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, &answerError{msg: fmt.Sprintf("answer larger than %d MiB", maxAnswer>>20)}
	}
	return b, nil
}

// answerError is an answer that is not what Okta sends: a proxy's page, a
// body cut short, a token endpoint refusing the client. Its message names
// the endpoint and says what was wrong.
type answerError struct {
	msg string
	// status is the answer's HTTP status when it came from Okta itself (a
	// JSON error body), else 0.
	status int
	// retry says a new attempt may get a good answer (a body cut short).
	retry bool
	// terminal says retrying cannot help (the token endpoint refused the
	// client's credentials).
	terminal bool
}

func (e *answerError) Error() string { return e.msg }

// checkAnswer refuses an answer the SDK would misread: a 2xx answer whose
// body is not complete JSON (an HTML page from a proxy, an empty or cut
// body would be taken for an empty last page), an error status without
// Okta's JSON body (a proxy's 404 page is not Okta saying a group is gone),
// and the token endpoint's errors, whose status the SDK drops.
func checkAnswer(family, path string, resp *http.Response, body []byte) error {
	status := resp.StatusCode
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	ok := status >= 200 && status < 300
	switch {
	case ok && status == http.StatusNoContent:
		return nil
	case !isJSON && len(body) > 0:
		what := "answer"
		if !ok {
			what = fmt.Sprintf("HTTP %d %s answer", status, http.StatusText(status))
		}
		return &answerError{msg: fmt.Sprintf("okta %s %s is not JSON (%s)%s: a proxy or firewall between learnsync and Okta may have answered instead",
			family, what, orNone(mt), pageTitle(body))}
	case ok && len(bytes.TrimSpace(body)) == 0:
		return &answerError{retry: true, msg: fmt.Sprintf("okta %s answer is empty (HTTP %d with no body): truncated on the way", family, status)}
	case ok && !json.Valid(body):
		return &answerError{retry: true, msg: fmt.Sprintf("okta %s answer is truncated or not valid JSON (%d bytes: %s)", family, len(body), jsonProblem(body))}
	case ok && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		// The SDK decodes a JSON null into an empty list.
		return &answerError{retry: true, msg: fmt.Sprintf("okta %s answer is JSON but not an object or a list (%s)", family, clean(string(body)))}
	case !ok && (len(body) == 0 || !json.Valid(body)):
		return &answerError{msg: fmt.Sprintf("okta %s answered HTTP %d %s without Okta's error body", family, status, http.StatusText(status))}
	case !ok && strings.HasPrefix(path, "/oauth2/"):
		return tokenAnswerError(status, body)
	}
	return nil
}

// tokenAnswerError explains an error answer of the OAuth token endpoint.
// Refusals (4xx but 429) are terminal: the client id, key or scopes are
// wrong.
func tokenAnswerError(status int, body []byte) error {
	var e struct {
		Error        string `json:"error"`
		Description  string `json:"error_description"`
		ErrorCode    string `json:"errorCode"`
		ErrorSummary string `json:"errorSummary"`
	}
	_ = json.Unmarshal(body, &e)
	code, desc := e.Error, e.Description
	if code == "" {
		code, desc = e.ErrorCode, e.ErrorSummary
	}
	msg := fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	if code != "" {
		msg = fmt.Sprintf("%s: %s (HTTP %d)", clean(code), clean(desc), status)
	}
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
		return &answerError{status: status, terminal: true, msg: "OAuth token refused: " + msg}
	}
	return &answerError{status: status, msg: "OAuth token request failed: " + msg}
}

// jsonProblem says where a JSON body breaks.
func jsonProblem(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v any
	err := dec.Decode(&v)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "the document ends in the middle"
	case err != nil:
		return clean(err.Error())
	}
	return "extra data after the document"
}

var titlePattern = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// pageTitle quotes an HTML page's title, which usually names the proxy's
// complaint ("Web Page Blocked", "502 Bad Gateway").
func pageTitle(body []byte) string {
	m := titlePattern.FindSubmatch(body)
	if m == nil {
		return ""
	}
	t := clean(string(m[1]))
	if t == "" {
		return ""
	}
	return fmt.Sprintf(", page title %q", t)
}

func orNone(ct string) string {
	if ct == "" {
		return "no Content-Type"
	}
	return ct
}

// clean makes text from an answer safe and short for one log line.
func clean(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > 120 {
		s = strings.ToValidUTF8(s[:120], "") + "…"
	}
	return s
}

// errGaveUp is reported when one request stayed rate limited beyond the
// throttling bound.
var errGaveUp = errors.New("rate limited beyond the throttling bound (10 waits for a reset in a row)")
