package onelogin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

const (
	tokenPath = "/auth/oauth2/v2/token"
	// budgetFamily names OneLogin's rate limit: one budget per account for
	// every API endpoint.
	budgetFamily = "account"
	// maxBody bounds one answer.
	maxBody = 32 << 20
	// maxWait bounds one wait for a rate budget or a Retry-After.
	maxWait = 10 * time.Minute
)

// client is a small typed OneLogin API client: client-credentials token,
// retries with backoff, the shared rate budget and the traffic hooks.
type client struct {
	base    string
	http    *http.Client
	id      string
	secret  connectors.Secret
	hooks   connectors.Hooks
	now     func() time.Time
	backoff connectors.Backoff
	budget  *connectors.Budget
	// timeout is request_timeout, for messages.
	timeout time.Duration

	// renew serializes token requests; mu guards token and expires.
	renew   sync.Mutex
	mu      sync.Mutex
	token   string
	expires time.Time
}

// stats counts one fetch's traffic.
type stats struct {
	requests int
	waits    int
}

// answer is a complete HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	// took is how long the request took, body included.
	took time.Duration
}

// isStatus reports whether err is OneLogin's own error answer with status.
// A proxy's page is not: its status says nothing about OneLogin's objects or
// credentials.
func isStatus(err error, status int) bool {
	ae := connectors.AsAnswerError(err)
	return ae != nil && ae.Kind == connectors.KindStatus && ae.Status == status
}

// accessToken returns a token that is valid for a while yet, fetching a new
// one when there is none or it is about to expire.
func (c *client) accessToken(ctx context.Context, st *stats) (string, error) {
	c.renew.Lock()
	defer c.renew.Unlock()
	c.mu.Lock()
	tok, valid := c.token, c.token != "" && c.now().Before(c.expires)
	c.mu.Unlock()
	if valid {
		return tok, nil
	}
	tok, life, err := c.newToken(ctx, st)
	if err != nil {
		return "", err
	}
	// Renew a little before OneLogin does, so that no request carries a
	// token that expires on the way.
	margin := min(life/10, 5*time.Minute)
	c.mu.Lock()
	c.token, c.expires = tok, c.now().Add(life-margin)
	c.mu.Unlock()
	return tok, nil
}

// dropToken forgets tok if it is still the current token.
func (c *client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

func (c *client) newToken(ctx context.Context, st *stats) (string, time.Duration, error) {
	a, err := c.do(ctx, st, "token", func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+tokenPath,
			strings.NewReader(`{"grant_type":"client_credentials"}`))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "client_id:"+c.id+", client_secret:"+c.secret.Reveal())
		return req, nil
	}, false)
	if ae := connectors.AsAnswerError(err); ae != nil && ae.Kind == connectors.KindStatus && ae.Status >= 400 && ae.Status < 500 {
		refused := *ae
		refused.Terminal = true
		refused.Msg = fmt.Sprintf("onelogin refused the API credentials (%d %s): %s",
			ae.Status, http.StatusText(ae.Status), orUnknown(c.scrub(errorMessage(a.body))))
		return "", 0, &refused
	}
	if err != nil {
		return "", 0, fmt.Errorf("get access token: %w", err)
	}
	var t tokenAnswer
	if err := json.Unmarshal(a.body, &t); err != nil || t.AccessToken == "" {
		return "", 0, &connectors.AnswerError{Endpoint: "token", Status: a.status, Kind: connectors.KindNotObject,
			Msg: "get access token: answer has no access_token"}
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 {
		// OneLogin's tokens live 10 hours; without a lifetime, assume a short
		// one and let a 401 tell us otherwise.
		life = time.Hour
	}
	return t.AccessToken, life, nil
}

// get sends an authorized GET to path with query q. A 401 gets a new token
// once; 429, 5xx and network errors are retried with backoff.
func (c *client) get(ctx context.Context, st *stats, endpoint, path string, q url.Values) (*answer, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	for renewed := false; ; renewed = true {
		tok, err := c.accessToken(ctx, st)
		if err != nil {
			return nil, err
		}
		a, err := c.do(ctx, st, endpoint, func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Accept", "application/json")
			if strings.HasPrefix(path, "/api/1/") {
				req.Header.Set("Authorization", "bearer:"+tok)
			} else {
				req.Header.Set("Authorization", "bearer "+tok)
			}
			return req, nil
		}, true)
		ae := connectors.AsAnswerError(err)
		switch {
		case err == nil:
			return a, nil
		case ae == nil || ae.Kind != connectors.KindStatus:
			// A proxy's page: OneLogin has not refused anything.
			return nil, err
		case ae.Status == http.StatusUnauthorized && !renewed:
			c.dropToken(tok)
			continue
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			hint := "the token was refused even after a new one was issued"
			if ae.Status == http.StatusForbidden {
				hint = "the API credential needs the Read users (or Read All) scope"
			}
			refused := *ae
			refused.Terminal = true
			refused.Msg = fmt.Sprintf("onelogin answered %d %s to GET %s: %s; %s",
				ae.Status, http.StatusText(ae.Status), path, orUnknown(c.scrub(errorMessage(a.body))), hint)
			return nil, &refused
		default:
			return nil, err
		}
	}
}

// do sends the request built by newReq, retrying 429, 5xx and network
// errors. Every failure is an *connectors.AnswerError; for an error status
// (KindStatus, KindThrottled, or KindNotJSON for a proxy's page) the answer
// is returned too, for the caller to read OneLogin's message.
func (c *client) do(ctx context.Context, st *stats, endpoint string, newReq func() (*http.Request, error), budgeted bool) (*answer, error) {
	attempts := max(c.backoff.Attempts, 1)
	for try := 1; ; try++ {
		if budgeted {
			if d := c.budget.Reserve(budgetFamily); d > 0 {
				st.waits++
				c.hooks.OnThrottled(endpoint, d)
				if err := connectors.Sleep(ctx, d); err != nil {
					return nil, err
				}
			}
		}
		req, err := newReq()
		if err != nil {
			return nil, err
		}
		a, err := c.send(st, endpoint, req)
		if err == nil && a.status >= 200 && a.status < 300 {
			err = c.checkOK(a)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ae := connectors.AsAnswerError(err)
			// As ever, a body over the limit is tried again too.
			retry := ae == nil || ae.Retryable() || ae.Kind == connectors.KindTooLarge
			if retry && try < attempts && !connectors.CertificateError(err) {
				if err := connectors.Sleep(ctx, c.backoff.Delay(try)); err != nil {
					return nil, err
				}
				continue
			}
			return nil, c.failure(req, endpoint, err, retry && try > 1, try)
		}
		if budgeted {
			c.observe(a.header)
		}
		if a.status >= 200 && a.status < 300 {
			return a, nil
		}
		retryable := a.status == http.StatusTooManyRequests || a.status >= 500
		if retryable && try < attempts {
			d := c.retryDelay(a, try)
			if a.status == http.StatusTooManyRequests {
				st.waits++
				c.hooks.OnThrottled(endpoint, d)
			}
			if err := connectors.Sleep(ctx, d); err != nil {
				return nil, err
			}
			continue
		}
		return a, c.statusError(req, endpoint, a)
	}
}

// checkOK refuses a 2xx answer that is not complete JSON: a proxy's HTML
// page, an empty body, a body cut short. Decoding them would fail at best,
// and at worst (an empty manager record) lose data quietly.
func (c *client) checkOK(a *answer) error {
	ae := answers.Check(a.status, a.header, a.body)
	if ae == nil {
		return nil
	}
	if ae.Retryable() && c.timeout > 0 && a.took >= c.timeout {
		// net/http may end a body cut by Client.Timeout cleanly.
		return &connectors.AnswerError{Kind: connectors.KindNetwork,
			Msg: fmt.Sprintf("timed out: the answer was cut off after %d bytes at request_timeout (%s)", len(a.body), c.timeout)}
	}
	return ae
}

// failure is the error of a request that got no usable answer after tries
// attempts.
func (c *client) failure(req *http.Request, endpoint string, err error, counted bool, tries int) *connectors.AnswerError {
	out := connectors.NetworkFailure(endpoint, err, "")
	msg := ""
	if ae := connectors.AsAnswerError(err); ae != nil {
		out.Status, out.Kind, msg = ae.Status, ae.Kind, ae.Msg
	} else {
		msg = connectors.DescribeNetError(err, c.timeout, "is api_url right, is a proxy in the way?")
	}
	if counted {
		msg += fmt.Sprintf(" (%d attempts)", tries)
	}
	out.Msg = fmt.Sprintf("%s %s: %s", req.Method, req.URL.Path, c.scrub(msg))
	return out
}

// statusError is the error of an answer with an error status (after
// retries). Only OneLogin's own JSON error says something about OneLogin's
// objects and credentials: a proxy's 404 page does not mean that a role was
// deleted, nor its 401 that the secret is wrong.
func (c *client) statusError(req *http.Request, endpoint string, a *answer) *connectors.AnswerError {
	// A 429 is rate limiting whatever its body, unless it is a proxy's page.
	throttled := a.status == http.StatusTooManyRequests && (connectors.IsJSON(a.header) || len(bytes.TrimSpace(a.body)) == 0)
	if ae := answers.Check(a.status, a.header, a.body); ae != nil && !throttled {
		ae.Endpoint = endpoint
		ae.Msg = fmt.Sprintf("%s %s: %s", req.Method, req.URL.Path, c.scrub(ae.Msg))
		return ae
	}
	ae := &connectors.AnswerError{Endpoint: endpoint, Status: a.status, Kind: connectors.KindStatus,
		Msg: fmt.Sprintf("%s %s: %d %s", req.Method, req.URL.Path, a.status, http.StatusText(a.status))}
	if throttled {
		ae.Kind = connectors.KindThrottled
		ae.RetryAfter, _ = retryAfter(a.header, time.Now())
	}
	if msg := c.scrub(errorMessage(a.body)); msg != "" {
		ae.Msg += ": " + msg
	}
	return ae
}

// answers checks OneLogin's answers; a page of 100 users is about 100 kB.
var answers = connectors.AnswerCheck{IdP: "OneLogin", Limit: maxBody}

// send makes one HTTP request and reads the whole answer.
func (c *client) send(st *stats, endpoint string, req *http.Request) (*answer, error) {
	st.requests++
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.hooks.OnRequest(endpoint, 0, time.Since(start))
		return nil, err
	}
	body, err := answers.Read(resp.Body)
	c.hooks.OnRequest(endpoint, resp.StatusCode, time.Since(start))
	if err != nil {
		if connectors.AsAnswerError(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("read answer: %w", err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body, took: time.Since(start)}, nil
}

// observe feeds the X-RateLimit-* headers to the budget. OneLogin sends the
// reset as seconds from now; a value that looks like an epoch is taken as one.
func (c *client) observe(h http.Header) {
	limit, err1 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit")))
	remaining, err2 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining")))
	if err1 != nil || err2 != nil || limit <= 0 {
		return
	}
	reset, ok := resetIn(h, time.Now())
	if !ok {
		reset = time.Hour
	}
	c.budget.Observe(budgetFamily, limit, remaining, time.Now().Add(reset))
}

// resetIn reads X-RateLimit-Reset as a duration from now.
func resetIn(h http.Header, now time.Time) (time.Duration, bool) {
	v, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	if v > 1_000_000_000 { // an epoch, not a countdown
		return max(time.Unix(v, 0).Sub(now), 0), true
	}
	return time.Duration(v) * time.Second, true
}

// retryDelay is how long to wait before retry number try of a 429 or 5xx:
// the server's Retry-After when it sends one, else the rate-limit reset for
// a 429, else the backoff.
func (c *client) retryDelay(a *answer, try int) time.Duration {
	d := c.backoff.Delay(try)
	if ra, ok := retryAfter(a.header, time.Now()); ok {
		d = ra
	} else if a.status == http.StatusTooManyRequests {
		if r, ok := resetIn(a.header, time.Now()); ok {
			d = r
		}
	}
	return min(d, maxWait)
}

// retryAfter reads Retry-After in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// errorMessage extracts OneLogin's message from an error body: v1
// {"status":{"message"}}, v2 {"message","name"}, or OAuth {"error_description"}.
// Anything else (an HTML page from a proxy) gives "".
func errorMessage(body []byte) string {
	var e struct {
		Status *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"status"`
		Message          string `json:"message"`
		Name             string `json:"name"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &e) != nil {
		return ""
	}
	var msg string
	switch {
	case e.Status != nil && e.Status.Message != "":
		msg = e.Status.Message
	case e.Message != "":
		msg = e.Message
	case e.ErrorDescription != "":
		msg = e.ErrorDescription
	case e.Error != "":
		msg = e.Error
	}
	return clean(msg, 200)
}

// clean makes a server-supplied string safe for one log line.
func clean(s string, n int) string { return connectors.Clean(s, n) }

// scrub removes the credentials from a message in case a server or proxy
// echoes them back.
func (c *client) scrub(s string) string {
	if sec := c.secret.Reveal(); sec != "" {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	if tok != "" {
		s = strings.ReplaceAll(s, tok, "[redacted]")
	}
	return s
}

func orUnknown(msg string) string {
	if msg == "" {
		return "no message"
	}
	return msg
}
