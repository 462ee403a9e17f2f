package entra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	core "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/learnsync/learnsync/connectors"
)

// Throttling bounds. Kiota's retry handler honours Retry-After on 429, 503
// and 504; these settings make it try harder than its default of 3 retries
// but never wait without end.
const (
	// maxRetries is the most retries of one request (kiota's own ceiling).
	maxRetries = 10
	// maxThrottleWait bounds the waits of one request, summed (kiota stops
	// at 180 s too).
	maxThrottleWait = 3 * time.Minute
	// retryDelaySeconds is the first backoff when no Retry-After is given;
	// it doubles with each retry.
	retryDelaySeconds = 2
)

// wellKnownAuthorities are Microsoft's own login hosts. For them MSAL's
// instance discovery stays on; any other authority_host (Azure Stack, a
// proxy, a test server) is taken as configured.
var wellKnownAuthorities = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoftonline.us":         true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
}

// stats counts one fetch's traffic. It travels in the request context so
// that the shared transport can attribute requests to their fetch.
type stats struct {
	requests atomic.Int64
	waits    atomic.Int64
}

type statsKey struct{}

func withStats(ctx context.Context) (context.Context, *stats) {
	st := &stats{}
	return context.WithValue(ctx, statsKey{}, st), st
}

func statsFrom(ctx context.Context) *stats {
	st, _ := ctx.Value(statsKey{}).(*stats)
	return st
}

// transport sits under kiota's middleware (and under azidentity's
// pipeline): it sees every HTTP answer, retries included, reports it to the
// hooks, counts it, and bounds each attempt with the request timeout. A
// request that gets no usable answer fails with an *connectors.AnswerError,
// which kiota hands back to the caller inside its error chain (http.Client's
// *url.Error unwraps to it), so classify finds it with errors.As.
type transport struct {
	base      http.RoundTripper
	hooks     connectors.Hooks
	timeout   time.Duration
	graphPath string
	// authFailure is why the last token or openid-configuration request
	// got no usable answer (nil after a good one): MSAL drops the
	// transport's error and says only "server response error", so the
	// error is kept here for tokenError.
	authFailure atomic.Pointer[connectors.AnswerError]
}

// netHint is the hint of a refused connection.
const netHint = "are graph_url and authority_host right, is a proxy in the way?"

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	ep := endpoint(req.URL, t.graphPath)
	ctx, cancel := req.Context(), context.CancelFunc(func() {})
	if t.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
	}
	defer cancel()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	var body []byte
	if err == nil {
		// The whole answer is read here, within the attempt's timeout, and
		// checked: the SDK takes an empty 200 answer for no page at all.
		body, err = answers.Read(resp.Body)
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.hooks.OnRequest(ep, status, time.Since(start))
	if st := statsFrom(req.Context()); st != nil {
		st.requests.Add(1)
	}
	auth := ep == "token" || ep == "openid-configuration"
	fail := t.failure(ep, ctx, resp, body, err)
	if auth {
		t.authFailure.Store(fail)
	}
	if fail != nil {
		// The caller's own deadline (azcore's try timeout, a cancelled
		// fetch) is the caller's to report.
		if cerr := req.Context().Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fail
	}
	if !auth && (resp.StatusCode < 200 || resp.StatusCode > 299) && !connectors.IsJSON(resp.Header) && len(bytes.TrimSpace(body)) > 0 {
		// A proxy's error page: kiota would report only that it cannot
		// parse text/html and drop the status. Graph's error shape keeps
		// the status, and kiota's retries of 503 and 504; classify turns
		// the code back into KindNotJSON.
		page := answers.Check(resp.StatusCode, resp.Header, body)
		body, _ = json.Marshal(map[string]any{"error": map[string]string{"code": notGraphCode, "message": page.Msg}})
		resp.Header.Set("Content-Type", "application/json")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// failure is the error of an attempt that got no usable answer, or nil: no
// complete answer (KindNetwork; an untrusted certificate is terminal), a
// body over the limit, or a 2xx answer that is not a complete JSON object.
// An error answer without Graph's JSON is left to kiota, which reports its
// status.
func (t *transport) failure(ep string, ctx context.Context, resp *http.Response, body []byte, err error) *connectors.AnswerError {
	if ae := connectors.AsAnswerError(err); ae != nil {
		ae.Endpoint, ae.Msg = ep, ep+" "+ae.Msg
		return ae
	}
	if err != nil {
		return connectors.NetworkFailure(ep, err, ep+" request: "+connectors.DescribeNetError(err, t.timeout, netHint))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil
	}
	ae := answers.Check(resp.StatusCode, resp.Header, body)
	if ae == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// net/http may end a body cut by the attempt's deadline as if it
		// were complete: then it is the timeout, not a bad answer.
		return connectors.NetworkFailure(ep, context.DeadlineExceeded,
			ep+" request: "+connectors.DescribeNetError(context.DeadlineExceeded, t.timeout, netHint))
	}
	ae.Endpoint, ae.Msg = ep, ep+" "+ae.Msg
	return ae
}

// notGraphCode marks an error answer that did not come from Graph (a
// proxy's page, rewritten by the transport).
const notGraphCode = "learnsync.notGraph"

// lastAuthFailure returns why the last token request failed in the
// transport, or nil.
func (t *transport) lastAuthFailure() *connectors.AnswerError {
	return t.authFailure.Load()
}

// answers checks Graph's answers, which are JSON objects; a delta page of
// 999 users is about 1 MB.
var answers = connectors.AnswerCheck{IdP: "Microsoft", Limit: 64 << 20, ObjectOnly: true}

// endpoint names a request for hooks and logs without object ids:
// "users/delta", "groups/members", "servicePrincipals/appRoleAssignedTo",
// "token", "openid-configuration".
func endpoint(u *url.URL, graphPath string) string {
	p := u.Path
	switch {
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		return "openid-configuration"
	case strings.Contains(p, "/oauth2/") && strings.HasSuffix(p, "/token"):
		return "token"
	}
	rest, ok := strings.CutPrefix(p, graphPath+"/")
	if !ok {
		return "other"
	}
	seg := strings.Split(rest, "/")
	for i := range seg {
		seg[i] = strings.TrimSuffix(seg[i], "()")
	}
	if n := len(seg); n > 1 && (strings.HasPrefix(seg[n-1], "graph.") || strings.HasPrefix(seg[n-1], "microsoft.graph.")) {
		seg = seg[:n-1]
	}
	switch {
	case len(seg) == 1:
		return seg[0]
	case len(seg) == 2 && seg[1] == "delta":
		return seg[0] + "/delta"
	case len(seg) == 2:
		return seg[0] + "/item"
	default:
		return seg[0] + "/" + seg[2]
	}
}

// newClients builds the credential and the Graph client, both over a
// transport that trusts ca_file.
func newClients(cfg *Config, opts connectors.Options) (*msgraphsdk.GraphServiceClient, *transport, error) {
	base, err := connectors.NewHTTPClient(connectors.ResolvePath(opts.BaseDir, cfg.CAFile), 0)
	if err != nil {
		return nil, nil, err
	}
	gu, err := url.Parse(cfg.GraphURL)
	if err != nil {
		return nil, nil, fmt.Errorf("graph_url: %w", err)
	}
	tr := &transport{base: base.Transport, hooks: opts.Hooks, timeout: cfg.RequestTimeout,
		graphPath: strings.TrimRight(gu.Path, "/")}

	cred, err := newCredential(cfg, opts, tr)
	if err != nil {
		return nil, nil, err
	}

	// The allowed-hosts list must name graph_url's host: for any other host
	// kiota silently sends no Authorization header. This is what
	// msgraphsdk.NewGraphServiceClientWithCredentialsAndHosts does, except
	// that it cannot take our HTTP client.
	scope := gu.Scheme + "://" + gu.Host + "/.default"
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scope}, []string{gu.Hostname()})
	if err != nil {
		return nil, nil, fmt.Errorf("graph auth provider: %w", err)
	}
	retry := &khttp.RetryHandlerOptions{
		MaxRetries:   maxRetries,
		DelaySeconds: retryDelaySeconds,
		ShouldRetry:  shouldRetry(opts.Hooks, tr.graphPath),
	}
	kiota, err := khttp.GetDefaultMiddlewaresWithOptions(retry)
	if err != nil {
		return nil, nil, fmt.Errorf("graph middleware: %w", err)
	}
	clientOptions := msgraphsdk.GetDefaultClientOptions()
	mw := append([]khttp.Middleware{
		core.NewGraphTelemetryHandler(&clientOptions),
		khttp.NewUrlReplaceHandler(true, core.ReplacementPairs),
	}, kiota...)
	hc := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(tr, mw...),
		// kiota's redirect middleware follows redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, hc)
	if err != nil {
		return nil, nil, fmt.Errorf("graph adapter: %w", err)
	}
	adapter.SetBaseUrl(strings.TrimRight(cfg.GraphURL, "/"))
	// Not NewGraphServiceClient: it stores its backing store factory in a
	// package variable of kiota, which every model constructor reads, so
	// building a connector while another one fetches is a data race. The
	// variable already holds that default.
	return &msgraphsdk.GraphServiceClient{GraphBaseServiceClient: *msgraphsdk.NewGraphBaseServiceClient(adapter, nil)}, tr, nil
}

// shouldRetry reports each throttled wait and refuses a retry whose wait
// would take the request past maxThrottleWait. It also drains the answer
// that kiota is about to drop, so that the connection can be reused.
func shouldRetry(hooks connectors.Hooks, graphPath string) func(time.Duration, int, *http.Request, *http.Response) bool {
	return func(waited time.Duration, n int, req *http.Request, resp *http.Response) bool {
		wait := retryAfter(resp, n+1)
		if waited+wait > maxThrottleWait {
			return false
		}
		hooks.OnThrottled(endpoint(req.URL, graphPath), wait)
		if st := statsFrom(req.Context()); st != nil {
			st.waits.Add(1)
		}
		if resp.Body != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
		}
		return true
	}
}

// retryAfter mirrors how kiota computes the wait before retry n.
func retryAfter(resp *http.Response, n int) time.Duration {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			return time.Duration(s) * time.Second
		}
		if t, err := time.Parse(time.RFC1123, v); err == nil {
			return time.Until(t)
		}
	}
	return time.Duration(retryDelaySeconds*(1<<(n-1))) * time.Second
}

// tokenRetry is how azcore retries a token request (408, 429 and 5xx
// answers, network errors): 4 retries, waits from 0.8 s doubling. Tests make
// the waits short.
var tokenRetry = policy.RetryOptions{MaxRetries: 4}

func newCredential(cfg *Config, opts connectors.Options, tr *transport) (azcore.TokenCredential, error) {
	co := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost},
		Transport: &http.Client{Transport: tr},
		Retry:     tokenRetry,
	}
	co.Retry.TryTimeout = cfg.RequestTimeout
	au, err := url.Parse(cfg.AuthorityHost)
	if err != nil {
		return nil, fmt.Errorf("authority_host: %w", err)
	}
	noDiscovery := !wellKnownAuthorities[strings.ToLower(au.Hostname())]

	switch cfg.Auth {
	case AuthClientSecret:
		return azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case AuthClientCertificate:
		certs, key, err := loadCertificate(connectors.ResolvePath(opts.BaseDir, cfg.ClientCertificateFile))
		if err != nil {
			return nil, fmt.Errorf("client_certificate_file: %w", err)
		}
		return azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case AuthManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if cfg.ClientID != "" {
			mo.ID = azidentity.ClientID(cfg.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(mo)
	case AuthDefault:
		return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: co, TenantID: cfg.TenantID, DisableInstanceDiscovery: noDiscovery})
	}
	return nil, fmt.Errorf("auth %q is not supported", cfg.Auth)
}

// graphText describes a Graph error answer: "HTTP 403
// Authorization_RequestDenied: Insufficient privileges". The SDK's own error
// value is not used: its Error method panics on a body without a message.
func graphText(status int, code, message string) string {
	s := fmt.Sprintf("HTTP %d", status)
	if code != "" && code != notGraphCode {
		s += " " + code
	}
	if message != "" {
		s += ": " + message
	}
	return s
}

// expired reports whether err says that a delta or skip token is no longer
// valid, so a new full round must start.
func expired(err error) bool {
	ae := connectors.AsAnswerError(err)
	if ae == nil || ae.Kind != connectors.KindStatus {
		return false
	}
	if ae.Status == http.StatusGone {
		return true
	}
	switch strings.ToLower(ae.Code) {
	case "syncstatenotfound", "resyncrequired", "syncstateinvalid":
		return ae.Status >= 400 && ae.Status < 500
	}
	return false
}

var aadstsPattern = regexp.MustCompile(`AADSTS\d+`)

// classify turns an SDK or azidentity error into learnsync's: a failed
// request is an *connectors.AnswerError whose message names the source;
// credential and permission problems are terminal and name the AADSTS or
// Graph error code; nothing of the secret is ever included.
func (c *Connector) classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("entra source %q: %s: %w", c.opts.Name, what, err)
	}
	// A request that got no usable answer (the transport's errors): said
	// without the URL that http.Client puts in front, which holds delta
	// and skip tokens.
	if ae := connectors.AsAnswerError(err); ae != nil {
		return c.answerError(*ae, "%s: %s", what, ae.Msg)
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		return c.tokenError(af)
	}
	// azidentity marks a credential that cannot work here (no managed
	// identity endpoint, nothing for DefaultAzureCredential to use) as not
	// retriable: a configuration problem.
	var nr interface{ NonRetriable() }
	if errors.As(err, &nr) {
		return connectors.TerminalError("entra source %q: no usable credential for auth: %s: %s",
			c.opts.Name, c.cfg.Auth, c.scrub(shorten(err.Error())))
	}
	// Graph's error answers: kiota decodes them into an ODataError (with
	// the code, and the transport's notGraphCode for a proxy's page) or,
	// without a body it can read, an ApiError; both keep the status.
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		code, message := "", ""
		if main := oe.GetErrorEscaped(); main != nil {
			if p := main.GetCode(); p != nil {
				code = *p
			}
			if p := main.GetMessage(); p != nil {
				message = c.scrub(shorten(*p))
			}
		}
		return c.graphFailure(what, oe.ResponseStatusCode, code, message)
	}
	var ae *abs.ApiError
	if errors.As(err, &ae) {
		return c.graphFailure(what, ae.ResponseStatusCode, "", "")
	}
	return fmt.Errorf("entra source %q: %s: %s", c.opts.Name, what, c.scrub(err.Error()))
}

// answerError returns ae with a message that names the source, scrubbed.
func (c *Connector) answerError(ae connectors.AnswerError, format string, args ...any) *connectors.AnswerError {
	ae.Msg = c.scrub(fmt.Sprintf("entra source %q: ", c.opts.Name) + fmt.Sprintf(format, args...))
	return &ae
}

func (c *Connector) graphFailure(what string, status int, code, message string) error {
	ae := connectors.AnswerError{Status: status, Kind: connectors.KindStatus, Code: code}
	text := graphText(status, code, message)
	switch {
	case code == notGraphCode:
		// A proxy's page (a 401 or 403 page is not Graph refusing the app);
		// the transport's message names the status.
		ae.Kind, ae.Code, text = connectors.KindNotJSON, "", message
	case status == http.StatusTooManyRequests:
		ae.Kind = connectors.KindThrottled
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		ae.Terminal = true
		return c.answerError(ae, "%s: Graph refused access (check the app's Graph permissions, e.g. User.Read.All, GroupMember.Read.All, Application.Read.All): %s", what, text)
	}
	return c.answerError(ae, "%s: %s", what, text)
}

// tokenError explains a failed token request. Rejections (4xx other than
// 429) are terminal: retrying a wrong secret only locks the app out.
func (c *Connector) tokenError(af *azidentity.AuthenticationFailedError) error {
	resp := af.RawResponse
	if resp == nil {
		// MSAL dropped the transport's error; the transport kept it.
		if why := c.tr.lastAuthFailure(); why != nil {
			return c.answerError(*why, "token request failed: %s", why.Msg)
		}
		return fmt.Errorf("entra source %q: token request failed: %s", c.opts.Name, c.scrub(firstLine(af.Error())))
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	var data []byte
	if resp.Body != nil {
		data, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body = io.NopCloser(bytes.NewReader(data))
		_ = json.Unmarshal(data, &body)
	}
	ae := connectors.AnswerError{Endpoint: "token", Status: resp.StatusCode, Kind: connectors.KindStatus}
	if !connectors.IsJSON(resp.Header) && len(bytes.TrimSpace(data)) > 0 {
		// A proxy's page: Entra has not rejected anything.
		ae.Kind = connectors.KindNotJSON
		return c.answerError(ae, "token request failed: %s", answers.Check(resp.StatusCode, resp.Header, data).Msg)
	}
	code := ""
	if len(body.Codes) > 0 {
		code = fmt.Sprintf("AADSTS%d", body.Codes[0])
	} else {
		code = aadstsPattern.FindString(body.Description)
	}
	desc := body.Description
	if i := strings.Index(desc, " Trace ID:"); i >= 0 {
		desc = desc[:i]
	}
	desc = strings.TrimSpace(strings.TrimPrefix(desc, code+":"))
	msg := strings.TrimSpace(fmt.Sprintf("%s %s", code, body.Error))
	if msg == "" {
		msg = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	if desc != "" {
		msg += ": " + shorten(desc)
	}
	ae.Code = code
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		ae.Kind = connectors.KindThrottled
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		ae.Terminal = true
		return c.answerError(ae, "token request rejected (HTTP %d): %s", resp.StatusCode, msg)
	}
	return c.answerError(ae, "token request failed: HTTP %d %s", resp.StatusCode, msg)
}

// scrub removes the client secret from text that came from outside, in case
// a server or library ever echoes it.
func (c *Connector) scrub(s string) string {
	if sec := c.cfg.ClientSecret.Reveal(); len(sec) >= 4 {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

func shorten(s string) string {
	s = firstLine(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
