package entra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
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
// hooks, counts it, and bounds each attempt with the request timeout.
type transport struct {
	base      http.RoundTripper
	hooks     connectors.Hooks
	timeout   time.Duration
	graphPath string
	// authFailure is why the last token or openid-configuration request
	// got no usable answer ("" after a good one): MSAL drops the
	// transport's error and says only "server response error".
	authFailure atomic.Pointer[string]
}

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
		body, err = readAnswer(resp.Body)
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
	if err != nil {
		err = &netError{endpoint: ep, msg: connectors.DescribeNetError(err, t.timeout, "are graph_url and authority_host right, is a proxy in the way?")}
	} else if err = checkAnswer(ep, resp, body); err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// net/http may end a body cut by the attempt's deadline as if it
		// were complete: then it is the timeout, not a bad answer.
		err = &netError{endpoint: ep, msg: connectors.DescribeNetError(context.DeadlineExceeded, t.timeout, "are graph_url and authority_host right, is a proxy in the way?")}
	}
	if auth {
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		t.authFailure.Store(&msg)
	}
	if err != nil {
		// The caller's own deadline (azcore's try timeout, a cancelled
		// fetch) is the caller's to report.
		if cerr := req.Context().Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	if !auth && (resp.StatusCode < 200 || resp.StatusCode > 299) && !isJSON(resp.Header) && len(bytes.TrimSpace(body)) > 0 {
		// A proxy's error page: kiota would report only that it cannot
		// parse text/html and drop the status. Graph's error shape keeps
		// the status, and kiota's retries of 503 and 504.
		body, _ = json.Marshal(map[string]any{"error": map[string]string{
			"code": notGraphCode, "message": "answer " + notJSON(resp.Header, body)}})
		resp.Header.Set("Content-Type", "application/json")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// notGraphCode marks an error answer that did not come from Graph (a
// proxy's page, rewritten by the transport).
const notGraphCode = "learnsync.notGraph"

// lastAuthFailure returns why the last token request failed in the
// transport, or "".
func (t *transport) lastAuthFailure() string {
	if p := t.authFailure.Load(); p != nil {
		return *p
	}
	return ""
}

// netError is a request that got no complete answer. Its message leaves
// out the URL (delta and skip tokens) and names the endpoint.
type netError struct {
	endpoint, msg string
}

func (e *netError) Error() string { return fmt.Sprintf("%s request: %s", e.endpoint, e.msg) }

// maxAnswer bounds one answer's body; a delta page of 999 users is about
// 1 MB.
const maxAnswer = 64 << 20

func readAnswer(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("answer larger than %d MiB", maxAnswer>>20)
	}
	return b, nil
}

// answerError is a 2xx answer that is not complete JSON.
type answerError struct {
	endpoint, msg string
}

func (e *answerError) Error() string { return fmt.Sprintf("%s answer %s", e.endpoint, e.msg) }

// checkAnswer refuses a 2xx answer that is not complete JSON: a proxy's
// HTML page, an empty body, a body cut short. An error answer without
// Graph's JSON is left to kiota, which reports its status.
func checkAnswer(ep string, resp *http.Response, body []byte) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	trimmed := bytes.TrimSpace(body)
	switch {
	case !isJSON(resp.Header) && len(trimmed) > 0:
		return &answerError{endpoint: ep, msg: notJSON(resp.Header, body)}
	case len(trimmed) == 0:
		return &answerError{endpoint: ep, msg: fmt.Sprintf("is empty (HTTP %d with no body): truncated on the way", resp.StatusCode)}
	case !json.Valid(trimmed):
		return &answerError{endpoint: ep, msg: fmt.Sprintf("is truncated or not valid JSON (%d bytes: %s)", len(body), jsonProblem(trimmed))}
	case trimmed[0] != '{':
		// kiota dereferences nil on a JSON null, in a worker goroutine.
		return &answerError{endpoint: ep, msg: fmt.Sprintf("is JSON but not an object (%s)", shorten(string(trimmed)))}
	}
	return nil
}

func isJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

var titlePattern = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// notJSON describes an answer that is not JSON, quoting an HTML page's
// title, which usually names the proxy's complaint.
func notJSON(h http.Header, body []byte) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt == "" {
		mt = "no Content-Type"
	}
	title := ""
	if m := titlePattern.FindSubmatch(body); m != nil {
		if t := strings.Join(strings.Fields(strings.ToValidUTF8(string(m[1]), "?")), " "); t != "" {
			title = fmt.Sprintf(", page title %q", shorten(t))
		}
	}
	return fmt.Sprintf("is not JSON (%s)%s: a proxy or firewall may have answered instead of Microsoft", mt, title)
}

// jsonProblem says where a JSON body breaks.
func jsonProblem(body []byte) string {
	var v any
	err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "the document ends in the middle"
	case err != nil:
		return shorten(err.Error())
	}
	return "extra data after the document"
}

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

// graphError is a Graph error answer, without the SDK's error value (whose
// Error method panics on a body without a message).
type graphError struct {
	Status  int
	Code    string
	Message string
}

func (e *graphError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" && e.Code != notGraphCode {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// expired reports whether err says that a delta or skip token is no longer
// valid, so a new full round must start.
func expired(err error) bool {
	var ge *graphError
	if !errors.As(err, &ge) {
		return false
	}
	if ge.Status == http.StatusGone {
		return true
	}
	switch strings.ToLower(ge.Code) {
	case "syncstatenotfound", "resyncrequired", "syncstateinvalid":
		return ge.Status >= 400 && ge.Status < 500
	}
	return false
}

var aadstsPattern = regexp.MustCompile(`AADSTS\d+`)

// classify turns an SDK or azidentity error into learnsync's: credential and
// permission problems become terminal errors that name the source and the
// AADSTS or Graph error code; nothing of the secret is ever included.
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
	var ne *netError
	var bad *answerError
	switch {
	case errors.As(err, &ne):
		return fmt.Errorf("entra source %q: %s: %s", c.opts.Name, what, c.scrub(ne.Error()))
	case errors.As(err, &bad):
		return fmt.Errorf("entra source %q: %s: %s", c.opts.Name, what, c.scrub(bad.Error()))
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
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		ge := &graphError{Status: oe.ResponseStatusCode}
		if main := oe.GetErrorEscaped(); main != nil {
			if p := main.GetCode(); p != nil {
				ge.Code = *p
			}
			if p := main.GetMessage(); p != nil {
				ge.Message = c.scrub(shorten(*p))
			}
		}
		return c.graphFailure(what, ge)
	}
	var ae *abs.ApiError
	if errors.As(err, &ae) {
		return c.graphFailure(what, &graphError{Status: ae.ResponseStatusCode})
	}
	return fmt.Errorf("entra source %q: %s: %s", c.opts.Name, what, c.scrub(err.Error()))
}

func (c *Connector) graphFailure(what string, ge *graphError) error {
	switch {
	case ge.Code == notGraphCode:
		// A proxy's 401 or 403 page is not Graph refusing the app.
	case ge.Status == http.StatusUnauthorized || ge.Status == http.StatusForbidden:
		return connectors.TerminalError("entra source %q: %s: Graph refused access (check the app's Graph permissions, e.g. User.Read.All, GroupMember.Read.All, Application.Read.All): %s",
			c.opts.Name, what, ge)
	}
	return fmt.Errorf("entra source %q: %s: %w", c.opts.Name, what, ge)
}

// tokenError explains a failed token request. Rejections (4xx other than
// 429) are terminal: retrying a wrong secret only locks the app out.
func (c *Connector) tokenError(af *azidentity.AuthenticationFailedError) error {
	resp := af.RawResponse
	if resp == nil {
		if why := c.tr.lastAuthFailure(); why != "" {
			return fmt.Errorf("entra source %q: token request failed: %s", c.opts.Name, c.scrub(why))
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
	if !isJSON(resp.Header) && len(bytes.TrimSpace(data)) > 0 {
		// A proxy's page: Entra has not rejected anything.
		return fmt.Errorf("entra source %q: token request failed: HTTP %d %s, answer %s", c.opts.Name,
			resp.StatusCode, http.StatusText(resp.StatusCode), notJSON(resp.Header, data))
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
	msg = c.scrub(msg)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return connectors.TerminalError("entra source %q: token request rejected (HTTP %d): %s", c.opts.Name, resp.StatusCode, msg)
	}
	return fmt.Errorf("entra source %q: token request failed: HTTP %d %s", c.opts.Name, resp.StatusCode, msg)
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
