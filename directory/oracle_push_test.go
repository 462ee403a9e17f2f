package directory_test

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/scim"
)

// The pushed source of the oracle: an identity provider that pushes its
// changes (SCIM) through the store's SCIM transactions, which write the
// mirror and its change log, between runs and during them.

// oraclePush pushes the versions of an oracleSource to a scim source.
type oraclePush struct {
	store  *directory.Store
	source string
	s      *oracleSource
	// pushed is the index of the version the store holds.
	pushed int
}

// pushedConn is a pushed connector: the run never fetches it.
type pushedConn struct{}

func (pushedConn) Pushed() {}
func (pushedConn) FetchAll(context.Context) (*connectors.Result, error) {
	return nil, errors.New("pushed, not fetched")
}

// push writes what changed since the pushed version, in one transaction or
// (split) one a resource, as an IdP pushing record by record does.
func (p *oraclePush) push(ctx context.Context, split bool) error {
	old, v := p.s.versions[p.pushed], p.s.cur()
	p.pushed = len(p.s.versions) - 1
	var writes []func(scim.Tx) error
	for _, id := range slices.Sorted(maps.Keys(v.users)) {
		if o, ok := old.users[id]; !ok || o != v.users[id] {
			writes = append(writes, putResource(scim.TypeUser, id, userAttrs(v.users[id])))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(v.groups)) {
		if o, ok := old.groups[id]; !ok || o != v.groups[id] || !slices.Equal(old.members[id], v.members[id]) {
			writes = append(writes, putResource(scim.TypeGroup, id, groupAttrs(v.groups[id], v.members[id])))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(old.groups)) {
		if _, ok := v.groups[id]; !ok {
			writes = append(writes, func(tx scim.Tx) error { return tx.Delete(scim.TypeGroup, id) })
		}
	}
	for _, id := range slices.Sorted(maps.Keys(old.users)) {
		if _, ok := v.users[id]; !ok {
			writes = append(writes, func(tx scim.Tx) error { return tx.Delete(scim.TypeUser, id) })
		}
	}
	if !split {
		return p.store.UpdateSCIM(ctx, p.source, func(tx scim.Tx) error {
			for _, w := range writes {
				if err := w(tx); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for _, w := range writes {
		if err := p.store.UpdateSCIM(ctx, p.source, w); err != nil {
			return err
		}
	}
	return nil
}

func putResource(typ, id string, attrs map[string]any) func(scim.Tx) error {
	return func(tx scim.Tx) error {
		r, err := tx.Get(typ, id)
		if errors.Is(err, scim.ErrNotFound) {
			r, err = &scim.Resource{Type: typ, ID: id}, nil
		}
		if err != nil {
			return err
		}
		r.Attrs = attrs
		return tx.Put(r)
	}
}

func userAttrs(u connectors.User) map[string]any {
	return map[string]any{
		"userName": u.UserName,
		"emails":   []any{map[string]any{"value": u.Email, "type": "work", "primary": true}},
		"name":     map[string]any{"givenName": u.GivenName},
		"title":    u.Title,
		"active":   u.Status == connectors.StatusActive,
	}
}

func groupAttrs(g connectors.Group, members []string) map[string]any {
	list := []any{}
	for _, id := range members {
		list = append(list, map[string]any{"value": id})
	}
	return map[string]any{"displayName": g.Name, "members": list}
}
