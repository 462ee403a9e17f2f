// Package okta reads users, groups and group members from an Okta org with
// the official okta-sdk-golang/v2 client: a full fetch through the users
// search (the plain listing hides DEPROVISIONED users), and an incremental
// fetch of what changed since Okta's own clock at the previous fetch. It keeps
// to a share of each endpoint's rate limit, which the customer's other
// integrations share.
package okta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"

	"github.com/learnsync/learnsync/connectors"
)

// CursorOverlap is subtracted from Okta's clock at the start of a fetch (the
// earliest Date header of its answers) to make the next incremental cursor. Okta's search index lags writes by up to
// a second or so and the Date header has a resolution of one second; ten
// seconds leave a wide margin, and a change seen twice costs nothing because
// a delta replaces records.
const CursorOverlap = 10 * time.Second

// memberWorkers is how many groups' member lists are fetched at once. The
// rate budget paces them; more would only queue.
const memberWorkers = 4

// epoch is the lower bound of a full users search: every user has a
// lastUpdated after it, whatever its status.
var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// Type registers the okta source type.
var Type = connectors.TypeOf(DefaultConfig, New)

var _ connectors.Incremental = (*Connector)(nil)

// Connector reads one Okta org.
type Connector struct {
	cfg    Config
	name   string
	logger *slog.Logger
	hooks  connectors.Hooks
	now    func() time.Time
	client *okta.Client
	tr     *transport
	// attrs are the raw attributes the rules read (Options.Attrs).
	attrs *connectors.Selection
}

// New builds a connector for cfg, which should have passed Validate.
func New(cfg *Config, opts connectors.Options) (*Connector, error) {
	if errs := cfg.Validate(opts); len(errs) > 0 {
		return nil, fmt.Errorf("okta source %q: %w", opts.Name, errors.Join(errs...))
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hc, err := connectors.NewHTTPClient(connectors.ResolvePath(opts.BaseDir, cfg.CAFile), 0)
	if err != nil {
		return nil, fmt.Errorf("okta source %q: %w", opts.Name, err)
	}
	if ht, ok := hc.Transport.(*http.Transport); ok {
		// Keep a connection for each member worker and the users stream;
		// the default of 2 would mean a TLS handshake per request.
		ht.MaxIdleConnsPerHost = memberWorkers + 2
	}
	tr := &transport{
		base:    hc.Transport,
		budget:  &connectors.Budget{Share: cfg.RateLimitShare, MaxWait: maxThrottleWait},
		hooks:   opts.Hooks,
		retry:   connectors.DefaultBackoff,
		timeout: cfg.RequestTimeout,

		maxThrottles: maxThrottleRetries,
	}
	hc.Transport = tr
	// Timeouts are per attempt, in the transport: a client-wide timeout would
	// also cut short the waits for a rate-limit reset.
	hc.Timeout = 0

	orgURL := strings.TrimRight(cfg.OrgURL, "/")
	u, _ := url.Parse(orgURL)
	setters := []okta.ConfigSetter{
		okta.WithOrgUrl(orgURL),
		okta.WithHttpClientPtr(hc),
		// The SDK caches GET answers for 5 minutes by default: a daemon
		// would never see a change.
		okta.WithCache(false),
		okta.WithTestingDisableHttpsCheck(u.Scheme == "http" && connectors.IsLoopback(u.Hostname())),
		okta.WithRequestTimeout(0),
		// 429s are waited out in the transport, within a documented bound;
		// the SDK's own retry would wait again after it gives up.
		okta.WithRateLimitMaxRetries(0),
		okta.WithRateLimitMaxBackOff(int64(maxThrottleWait / time.Second)),
		okta.WithUserAgentExtra("learnsync"),
		okta.WithPrivateKeyId(""),
	}
	// NewClient also reads ~/.okta/okta.yaml and OKTA_* variables; every
	// setting that matters is set explicitly above and here.
	if cfg.APIToken != "" {
		setters = append(setters,
			okta.WithAuthorizationMode("SSWS"),
			okta.WithToken(cfg.APIToken.Reveal()),
		)
	} else {
		keyPEM, err := rsaKeyPEM(cfg.PrivateKey.Reveal())
		if err != nil {
			return nil, fmt.Errorf("okta source %q: private_key %w", opts.Name, err)
		}
		signer, err := okta.CreateKeySigner(keyPEM, "")
		if err != nil {
			return nil, fmt.Errorf("okta source %q: private_key: cannot sign with it", opts.Name)
		}
		scopes := cfg.Scopes
		if len(scopes) == 0 {
			scopes = requiredScopes(cfg.AppID)
		}
		setters = append(setters,
			okta.WithAuthorizationMode("PrivateKey"),
			okta.WithToken(""),
			okta.WithClientId(cfg.ClientID),
			okta.WithScopes(scopes),
			okta.WithPrivateKey(""),
			okta.WithPrivateKeySigner(signer),
		)
	}
	_, client, err := okta.NewClient(context.Background(), setters...)
	if err != nil {
		// The SDK's messages quote the org URL at most, never the token.
		return nil, fmt.Errorf("okta source %q: %w", opts.Name, err)
	}
	c := &Connector{
		cfg:    *cfg,
		name:   opts.Name,
		logger: logger,
		hooks:  opts.Hooks,
		now:    opts.Clock(),
		attrs:  opts.Attrs,
		client: client,
		tr:     tr,
	}
	c.cfg.GroupTypes = append([]string(nil), cfg.GroupTypes...)
	return c, nil
}

// FetchAll returns every user (all statuses but STAGED), every group of the
// configured types and their members; with app_id, only the app's users.
func (c *Connector) FetchAll(ctx context.Context) (*connectors.Result, error) {
	r := c.newRun(ctx)
	res, err := r.full()
	return r.finish(res, err)
}

// FetchChanges returns the users and groups changed since cursor and the new
// member lists of the changed groups. An empty or unreadable cursor, and any
// cursor with app_id set (app assignments have no change filter, so the scope
// must be read whole), give a full result instead.
func (c *Connector) FetchChanges(ctx context.Context, cursor string) (*connectors.Result, error) {
	since, err := parseCursor(cursor)
	if err != nil {
		c.logger.Warn("okta cursor unreadable, fetching everything", "cursor", cursor, "error", err)
		return c.FetchAll(ctx)
	}
	if since.IsZero() || c.cfg.AppID != "" {
		return c.FetchAll(ctx)
	}
	r := c.newRun(ctx)
	res, err := r.changes(since)
	return r.finish(res, err)
}

// oktaTime formats t the way Okta writes and filters timestamps.
func oktaTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func parseCursor(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time")
	}
	return t, nil
}
