// Package entra reads users and groups from Microsoft Entra ID (formerly
// Azure AD) through Microsoft Graph, with msgraph-sdk-go and azidentity.
//
// A full fetch is a Graph delta round (/users/delta and /groups/delta with
// members), so that it also yields the delta links an incremental fetch
// continues from. The Graph SDK is large to compile: keep it inside this
// package and let nothing else import it.
package entra

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"

	"github.com/learnsync/learnsync/connectors"
)

// Type registers the entra source type.
var Type = connectors.TypeOf(DefaultConfig, New)

var _ connectors.Incremental = (*Connector)(nil)

// Connector fetches one Entra ID tenant. It is safe for sequential use; a
// daemon runs one fetch of a source at a time.
type Connector struct {
	cfg   Config
	opts  connectors.Options
	log   *slog.Logger
	graph *msgraphsdk.GraphServiceClient
	tr    *transport
	// graphBase is graph_url without a trailing slash; delta links must
	// start with it.
	graphBase string
	// fingerprint identifies the settings that decide what the mirror
	// holds; a cursor made under other settings is not continued.
	fingerprint string
}

// New builds a connector from a validated config.
func New(cfg *Config, opts connectors.Options) (*Connector, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Connector{
		cfg:       *cfg,
		opts:      opts,
		log:       opts.Logger,
		graphBase: strings.TrimRight(cfg.GraphURL, "/"),
	}
	g, tr, err := newClients(&c.cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("entra source %q: %w", opts.Name, err)
	}
	c.graph, c.tr = g, tr
	sum := sha256.Sum256([]byte(strings.Join([]string{
		"v1", c.graphBase, strings.ToLower(cfg.TenantID), cfg.ServicePrincipalID, cfg.UserType,
		fmt.Sprint(cfg.TransitiveGroups),
	}, "\x00") + extraFingerprint(cfg.ExtraAttributes)))
	c.fingerprint = hex.EncodeToString(sum[:8])
	return c, nil
}

// cursor is what FetchChanges continues from, stored as JSON.
type cursor struct {
	Users  string `json:"users"`
	Groups string `json:"groups"`
	// Config is the settings fingerprint the mirror was made under.
	Config string `json:"config"`
	// Scope is a hash of the users and groups assigned to
	// service_principal_id when the cursor was made.
	Scope string `json:"scope,omitempty"`
}

func (c *Connector) encodeCursor(cur cursor) string {
	b, _ := json.Marshal(cur)
	return string(b)
}

// FetchAll runs a new delta round and returns the whole state of the source.
func (c *Connector) FetchAll(ctx context.Context) (*connectors.Result, error) {
	f := c.newFetch(ctx)
	return f.full(nil)
}

// FetchChanges continues the delta round of cursor. When the cursor cannot
// be continued (expired delta token, other settings, other graph_url, a
// change of the app's assignments) it runs a full round instead and says so
// with Result.Full.
func (c *Connector) FetchChanges(ctx context.Context, cur string) (*connectors.Result, error) {
	f := c.newFetch(ctx)
	var prev cursor
	if err := json.Unmarshal([]byte(cur), &prev); err != nil || prev.Users == "" || prev.Groups == "" {
		c.log.Info("entra: no usable cursor; starting a full round")
		return f.full(nil)
	}
	if prev.Config != c.fingerprint {
		c.log.Info("entra: settings changed since the last round; starting a full round")
		return f.full(nil)
	}
	if !c.ownLink(prev.Users) || !c.ownLink(prev.Groups) {
		c.log.Info("entra: cursor belongs to another graph_url; starting a full round")
		return f.full(nil)
	}
	res, err := f.changes(prev)
	if err != nil && expired(err) {
		c.log.Info("entra: delta token expired or unknown; starting a full round", "error", err.Error())
		return f.full(nil)
	}
	return res, err
}

// ownLink reports whether a stored link points at graph_url, so that a
// token is never sent elsewhere (the SDK would not send it anyway).
func (c *Connector) ownLink(link string) bool {
	u, err := url.Parse(link)
	if err != nil {
		return false
	}
	b, _ := url.Parse(c.graphBase)
	return strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host) &&
		strings.HasPrefix(u.Path, b.Path+"/")
}
