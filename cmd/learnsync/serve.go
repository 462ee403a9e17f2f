package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/internal/version"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/service"
)

// serve runs the service until ctx is cancelled (SIGTERM or SIGINT, see
// main) and reloads the configuration on SIGHUP.
func (a *app) serve(ctx context.Context, full bool) error {
	// Catch SIGHUP before anything else: its default action ends the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	a.fence = &haFence{}
	cfg, store, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	el, err := a.elector(ctx, cfg, store)
	if err != nil {
		return err
	}
	var election service.Election
	if el != nil {
		election = el
	}
	svc, err := service.New(service.Options{
		Election: election,
		Version:  version.Get().Short(),
		Config:   cfg,
		Store:    serviceStore{store},
		Build: func(cfg *config.Config, hooks func(string) connectors.Hooks) (*reconcile.Engine, error) {
			return a.engine(cfg, engineStore(cfg, store), hooks)
		},
		Load:      func() (*config.Config, error) { return config.Load(a.configPath, registry, a.lookup) },
		Logger:    a.log,
		FullStart: full,
		SCIMStore: store,
	})
	if err != nil {
		return err
	}
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is already waiting
			}
		}
	}()
	return svc.Run(ctx, reload)
}
