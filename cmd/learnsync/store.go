package main

import (
	"context"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/service"
)

// serviceStore is the directory as the service and `learnsync status` see
// it: the service declares what it needs and knows nothing of directory.
type serviceStore struct{ *directory.Store }

var _ service.Store = serviceStore{}

// StoredStatus reads the directory's status in the service's terms.
func (s serviceStore) StoredStatus(ctx context.Context) (*service.StoredStatus, error) {
	ds, err := s.Store.Status(ctx)
	if err != nil {
		return nil, err
	}
	st := &service.StoredStatus{
		People:  service.People{Active: ds.Active, Inactive: ds.Inactive},
		Sources: make([]service.StoredSource, len(ds.Sources)),
		Pools:   make([]service.Pool, len(ds.Pools)),
	}
	for i, p := range ds.Pools {
		st.Pools[i] = service.Pool(p)
	}
	for i, src := range ds.Sources {
		st.Sources[i] = service.StoredSource{
			Name: src.Source, HasCursor: src.HasCursor, FetchedAt: src.FetchedAt, FullAt: src.FullAt,
			Users: src.Users, Groups: src.Groups, FrozenSince: src.FrozenSince,
		}
		if f := src.LastFetch; f != nil {
			st.Sources[i].LastFetch = &service.StoredFetch{RunID: f.RunID, At: f.At, SourceRun: f.SourceRun}
		}
	}
	return st, nil
}
