package okta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// RoundTrip sends req, waiting for the rate budget before each attempt and
// between retries. Every failed request is an *connectors.AnswerError.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := &call{
		t:      t,
		req:    req,
		ctx:    req.Context(),
		st:     stateFrom(req.Context()),
		family: endpointFamily(req.URL.Path),
		// Only requests whose body can be replayed are retried; the SDK
		// sends GETs and a body-less token POST, so in practice that is
		// all of them.
		replayable: req.Body == nil || req.Body == http.NoBody || req.GetBody != nil,
		attempts:   max(t.retry.Attempts, 1),
	}
	for {
		if err := c.pace(); err != nil {
			return nil, err
		}
		resp, wait, err := c.attempt()
		if wait == final {
			return resp, err
		}
		if err := connectors.Sleep(c.ctx, wait); err != nil {
			return nil, err
		}
	}
}

// final is the wait of an attempt that is not followed by another.
const final time.Duration = -1

// call is one request through the transport, with its retries.
type call struct {
	t          *transport
	req        *http.Request
	ctx        context.Context
	st         *fetchState
	family     string
	replayable bool
	attempts   int
	// failures and throttles count the failed and the rate-limited
	// attempts so far.
	failures, throttles int
}

// pace waits for the family's rate budget.
func (c *call) pace() error {
	d := c.t.budget.Reserve(c.family)
	if d <= 0 {
		return nil
	}
	c.t.hooks.OnThrottled(c.family, d)
	c.st.waits.Add(1)
	return connectors.Sleep(c.ctx, d)
}

// attempt sends the request once, within the request timeout. It returns
// the answer or the error, with the wait final; or the wait before the next
// attempt.
func (c *call) attempt() (*http.Response, time.Duration, error) {
	actx, cancel := c.ctx, context.CancelFunc(func() {})
	if c.t.timeout > 0 {
		actx, cancel = context.WithTimeout(c.ctx, c.t.timeout)
	}
	defer cancel()
	r := c.req.WithContext(actx)
	if c.failures+c.throttles > 0 && c.req.GetBody != nil {
		body, err := c.req.GetBody()
		if err != nil {
			return nil, final, err
		}
		r.Body = body
	}
	start := time.Now()
	resp, err := c.t.base.RoundTrip(r)
	took := time.Since(start)
	c.st.requests.Add(1)
	if err != nil {
		c.t.hooks.OnRequest(c.family, 0, took)
		return c.failed(err)
	}
	c.t.hooks.OnRequest(c.family, resp.StatusCode, took)
	date := c.t.observe(c.family, resp, c.st)
	if wait, err := c.retryStatus(resp, date); wait != final || err != nil {
		drain(resp.Body)
		return nil, wait, err
	}
	return c.read(resp, actx)
}

// retryStatus waits out a 429 (up to the throttling bound) and retries a
// 5xx with backoff. It returns final and no error for an answer to read.
func (c *call) retryStatus(resp *http.Response, date time.Time) (time.Duration, error) {
	switch {
	case resp.StatusCode == http.StatusTooManyRequests && c.throttles < c.t.maxThrottles && c.replayable:
		c.throttles++
		wait := throttleWait(resp.Header, date)
		c.t.hooks.OnThrottled(c.family, wait)
		c.st.waits.Add(1)
		return wait, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return final, &connectors.AnswerError{Endpoint: c.family, Status: resp.StatusCode, Kind: connectors.KindThrottled,
			RetryAfter: throttleWait(resp.Header, date),
			Msg:        fmt.Sprintf("okta %s request: rate limited beyond the throttling bound (%d waits for a reset in a row)", c.family, c.throttles)}
	case retryableStatus(resp.StatusCode) && c.failures+1 < c.attempts && c.replayable:
		c.failures++
		return c.t.retry.Delay(c.failures), nil
	}
	return final, nil
}

// read reads the whole answer within the attempt's timeout: a body that
// stalls or breaks off is a failed attempt like a network error, and a body
// that is not Okta's JSON never reaches the SDK, which would take an empty
// or cut answer for a last page.
func (c *call) read(resp *http.Response, actx context.Context) (*http.Response, time.Duration, error) {
	body, err := answers.Read(resp.Body)
	if ae := connectors.AsAnswerError(err); ae != nil {
		ae.Endpoint, ae.Msg = c.family, "okta "+c.family+" "+ae.Msg
	}
	if err == nil {
		if ae := checkAnswer(c.family, c.req.URL.Path, resp, body); ae != nil {
			err = ae
			// net/http may end a body cut by the attempt's deadline as if
			// it were complete: then it is the timeout, not a truncated
			// answer.
			if actx.Err() != nil && c.ctx.Err() == nil && ae.Retryable() {
				err = fmt.Errorf("answer cut off after %d bytes: %w", len(body), context.DeadlineExceeded)
			}
		}
	}
	if err != nil {
		return c.failed(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, final, nil
}

// failed retries an attempt that got no usable answer with backoff, unless
// retrying cannot help; then it returns the error.
func (c *call) failed(err error) (*http.Response, time.Duration, error) {
	if c.ctx.Err() != nil {
		return nil, final, c.ctx.Err()
	}
	ae := connectors.AsAnswerError(err)
	if ae != nil && !ae.Retryable() {
		return nil, final, ae
	}
	c.failures++
	if c.failures < c.attempts && c.replayable && !connectors.CertificateError(err) {
		return nil, c.t.retry.Delay(c.failures), nil
	}
	if ae != nil {
		ae.Msg += fmt.Sprintf(" (%d attempts)", c.failures)
		return nil, final, ae
	}
	return nil, final, networkError(c.family, c.failures, err, c.t.timeout)
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

// networkError reports a request that failed at the network level. Like
// every AnswerError it does not wrap the cause: the SDK retries errors
// matching io.EOF forever, and this one has been retried already.
func networkError(family string, tries int, err error, timeout time.Duration) *connectors.AnswerError {
	if connectors.CertificateError(err) {
		return connectors.NetworkFailure(family, err, fmt.Sprintf("okta %s request: the server's TLS certificate is not trusted (a private CA or TLS proxy needs ca_file): %v", family, err))
	}
	return connectors.NetworkFailure(family, err, fmt.Sprintf("okta %s request failed after %d attempts: %s", family, tries, connectors.DescribeNetError(err, timeout, "is org_url right, is a proxy in the way?")))
}

// answers checks Okta's answers; a page of 200 users is about 300 kB.
var answers = connectors.AnswerCheck{IdP: "Okta", Limit: 64 << 20}

// checkAnswer refuses an answer the SDK would misread: a 2xx answer whose
// body is not complete JSON (an HTML page from a proxy, an empty or cut
// body would be taken for an empty last page), an error status without
// Okta's JSON body (a proxy's 404 page is not Okta saying a group is gone),
// and the token endpoint's errors, whose status the SDK drops.
func checkAnswer(family, path string, resp *http.Response, body []byte) *connectors.AnswerError {
	if ae := answers.Check(resp.StatusCode, resp.Header, body); ae != nil {
		ae.Endpoint = family
		ae.Msg = "okta " + family + " " + ae.Msg
		return ae
	}
	if (resp.StatusCode < 200 || resp.StatusCode > 299) && strings.HasPrefix(path, "/oauth2/") {
		return tokenAnswerError(family, resp.StatusCode, body)
	}
	return nil
}

// tokenAnswerError explains an error answer of the OAuth token endpoint.
// Refusals (4xx but 429) are terminal: the client id, key or scopes are
// wrong.
func tokenAnswerError(family string, status int, body []byte) *connectors.AnswerError {
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
	ae := &connectors.AnswerError{Endpoint: family, Status: status, Kind: connectors.KindStatus, Code: clean(code)}
	switch {
	case status == http.StatusTooManyRequests:
		ae.Kind = connectors.KindThrottled
	case status >= 400 && status < 500:
		ae.Terminal, ae.Msg = true, "OAuth token refused: "+msg
		return ae
	}
	ae.Msg = "OAuth token request failed: " + msg
	return ae
}

// clean makes text from an answer safe and short for one log line.
func clean(s string) string { return connectors.Clean(s, 120) }
