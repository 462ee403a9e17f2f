package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/learnsync/learnsync/config"
	scimsource "github.com/learnsync/learnsync/connectors/scim"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/scim"
)

// TriggerPush is the trigger of a run that a write to a scim source asked for.
const TriggerPush reconcile.Trigger = "push"

// public is the public listener (server.public): the SCIM endpoints of the
// scim sources, with TLS or behind a proxy, and the debounced reconcile
// that every accepted write asks for.
type public struct {
	s       *Service
	store   scim.Store
	ln      net.Listener
	srv     *http.Server
	served  chan struct{}
	handler *scim.Handler
	read    *scim.ReadHandler // the directory's read view, /scim/v2
	cert    atomic.Pointer[tls.Certificate]
	done    chan struct{}

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu     sync.Mutex
	armed  map[string]bool          // sources whose reconcile is waiting for its delay
	delays map[string]time.Duration // reconcile_delay of each scim source
}

// scimBuckets span a lookup of a millisecond to a slow write.
var scimBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

func newPublic(s *Service, store scim.Store, ln net.Listener) *public {
	p := &public{
		s: s, store: store, ln: ln, done: make(chan struct{}), armed: map[string]bool{}, delays: map[string]time.Duration{},
		requests: counterVec("learnsync_scim_requests_total",
			"SCIM requests by source, resource (Users, Groups, discovery), method and status code.", "source", "resource", "method", "status"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "learnsync_scim_request_duration_seconds",
			Help: "Duration of SCIM requests by source, resource, method and status code.", Buckets: scimBuckets},
			[]string{"source", "resource", "method", "status"}),
	}
	s.metrics.reg.MustRegister(p.requests, p.duration)
	return p
}

// scimSources returns the scim sources of cfg with their configuration.
func scimSources(cfg *config.Config) ([]scim.Source, map[string]time.Duration) {
	var out []scim.Source
	delays := map[string]time.Duration{}
	for _, src := range cfg.Sources {
		c, ok := src.Connector.(*scimsource.Config)
		if !ok {
			continue
		}
		out = append(out, scim.Source{Name: src.Name, Token: c.Token, Rate: c.Rate, Burst: c.Burst})
		delays[src.Name] = c.ReconcileDelay
	}
	return out, delays
}

// start listens when server.public is set (or a listener was given).
func (p *public) start(cfg *config.Config) error {
	sources, delays := scimSources(cfg)
	pc := cfg.Server.Public
	if p.ln == nil && pc.Listen == "" {
		if len(sources) > 0 {
			p.s.log.Warn("scim sources are configured but server.public.listen is not set: nothing can push to them")
		}
		return nil
	}
	if p.store == nil {
		return errors.New("public endpoint: the directory cannot store SCIM resources")
	}
	p.mu.Lock()
	p.delays = delays
	p.mu.Unlock()
	p.handler = scim.NewHandler(scim.Options{
		Store: p.store, Logger: p.s.log, Written: p.requestRun, Observe: p.observe, TrustForwarded: pc.BehindProxy,
	}, sources)
	if rs, ok := p.store.(scim.ReadStore); ok {
		p.read = scim.NewReadHandler(scim.ReadOptions{Store: rs, Logger: p.s.log, Observe: p.observe, TrustForwarded: pc.BehindProxy},
			pc.ReadToken)
	} else if pc.ReadToken != "" {
		p.s.log.Warn("server.public.read_token is set but the directory has no read view")
	}
	ln := p.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", pc.Listen); err != nil {
			return fmt.Errorf("public endpoint: %w", err)
		}
	}
	if pc.TLS() {
		if err := p.loadCert(cfg); err != nil {
			ln.Close()
			return fmt.Errorf("public endpoint: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.cert.Load(), nil },
		})
	}
	p.ln = ln
	mux := http.NewServeMux()
	var read http.Handler
	if p.read != nil {
		read = p.read
	}
	mux.Handle("/scim/", scim.Route(p.handler, read))
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	p.served = make(chan struct{})
	go func() {
		defer close(p.served)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.s.log.Error("public endpoint stopped", "error", err)
		}
	}()
	p.s.log.Info("public endpoint started", "addr", ln.Addr().String(), "tls", pc.TLS(), "scim_sources", len(sources))
	return nil
}

// loadCert reads the TLS pair; the listener serves it from the next
// handshake on.
func (p *public) loadCert(cfg *config.Config) error {
	pair, err := tls.LoadX509KeyPair(cfg.CertPath(), cfg.KeyPath())
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	p.cert.Store(&pair)
	return nil
}

// reload takes a new configuration's tokens, rates, delays and TLS files.
// A certificate that cannot be read leaves the old one in use.
func (p *public) reload(cfg *config.Config) {
	if p.handler == nil {
		return
	}
	sources, delays := scimSources(cfg)
	p.handler.SetSources(sources)
	if p.read != nil {
		p.read.SetToken(cfg.Server.Public.ReadToken)
	}
	p.mu.Lock()
	p.delays = delays
	p.mu.Unlock()
	if cfg.Server.Public.TLS() {
		if err := p.loadCert(cfg); err != nil {
			p.s.log.Error("public endpoint: the TLS certificate stays as it was", "error", err)
		} else {
			p.s.log.Info("public endpoint: TLS certificate reloaded")
		}
	}
}

// stop shuts the listener down (requests in progress finish first) and
// drops the reconciles that wait for their delay.
func (p *public) stop(ctx context.Context) {
	close(p.done)
	if p.srv == nil {
		return
	}
	if err := p.srv.Shutdown(ctx); err != nil {
		p.srv.Close()
	}
	<-p.served
}

// Addr is the public listener's address once it listens.
func (p *public) addr() net.Addr {
	if p == nil || p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

func (p *public) observe(source, resource, method string, status int, took time.Duration) {
	code := strconv.Itoa(status)
	p.requests.WithLabelValues(source, resource, method, code).Inc()
	p.duration.WithLabelValues(source, resource, method, code).Observe(took.Seconds())
}

// requestRun asks for a reconcile of source once its reconcile_delay has
// passed. Writes meanwhile join that reconcile: each was committed before
// it asked, so the run, which starts later, sees it.
func (p *public) requestRun(source string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed[source] {
		return
	}
	p.armed[source] = true
	t := p.s.clock.NewTimer(p.delays[source])
	go func() {
		select {
		case <-t.C():
		case <-p.done:
			t.Stop()
			return
		}
		p.mu.Lock()
		delete(p.armed, source)
		p.mu.Unlock()
		p.s.RequestRun(source)
	}()
}

// RequestRun asks for a run that reconciles source (a scim source: it is
// not fetched) as soon as the run in progress, if any, is over.
// On a standby it wakes the leader instead.
func (s *Service) RequestRun(source string) {
	if !s.leading() {
		s.wakeLeader(source)
		return
	}
	s.queue.push(source)
	s.queue.poke()
}

// PublicAddr is the public listener's address once Run listens (nil when
// there is none).
func (s *Service) PublicAddr() net.Addr { return s.public.addr() }

// push queues source for the next run, whatever runs now: unlike a
// scheduled fetch, a push is never skipped, since the run in progress may
// have read the mirror before the write.
func (q *runQueue) push(source string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.pending[source]; !ok {
		q.pending[source] = reconcile.FetchAuto
	}
	if q.trigger == "" {
		q.trigger = TriggerPush
	}
}
