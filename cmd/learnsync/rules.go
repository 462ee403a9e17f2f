package main

import (
	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
)

// keepAttrs tells a store that takes SCIM pushes which raw attributes of
// the pushed users the rules read (a fetched source's connector is told
// by its options).
func keepAttrs(store any, cfg *config.Config) {
	k, ok := store.(interface {
		KeepAttrs(map[string]*connectors.Selection)
	})
	if !ok {
		return
	}
	m := map[string]*connectors.Selection{}
	for _, s := range cfg.Sources {
		if s.Rules.Attrs != nil {
			m[s.Name] = s.Rules.Attrs
		}
	}
	k.KeepAttrs(m)
}
