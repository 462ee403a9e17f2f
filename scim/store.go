package scim

import "context"

// Store is what the push endpoint needs of the learning directory: the
// resources of each scim source, and, with every write, the source's mirror.
// The directory implements it.
type Store interface {
	// UpdateSCIM runs fn in one write transaction over the resources of
	// source. When fn returns nil, the resources it wrote and the source's
	// mirror rows they map to are committed together, durably, before
	// UpdateSCIM returns; otherwise nothing is written.
	UpdateSCIM(ctx context.Context, source string, fn func(Tx) error) error
	// GetSCIM reads one resource (ErrNotFound).
	GetSCIM(ctx context.Context, source, typ, id string) (*Resource, error)
	// ListSCIM reads the resources of a type in the order they were
	// created, narrowed by q.
	ListSCIM(ctx context.Context, source, typ string, q Query) (*Page, error)
}

// Tx is a write transaction of UpdateSCIM.
type Tx interface {
	// Get reads a resource (ErrNotFound).
	Get(typ, id string) (*Resource, error)
	// Put creates the resource (Version 0) or replaces it. A userName
	// another user of the source has (case-insensitively) is ErrUniqueness.
	Put(r *Resource) error
	// Delete removes a resource (ErrNotFound).
	Delete(typ, id string) error
	// GroupsWith returns the ids of the groups that name id as a member.
	GroupsWith(id string) ([]string, error)
}

// Indexed attributes of Lookup.
const (
	LookupID          = "id"
	LookupUserName    = "userName"    // users; Key lower-cased
	LookupDisplayName = "displayName" // groups; Key lower-cased
	LookupExternalID  = "externalId"  // Key as it is (caseExact)
	LookupWorkEmail   = "email"       // users' emails of type work; Key lower-cased
)

// Query narrows a list. With a Lookup, only resources whose indexed
// attribute has the Key are read (the caller still checks its whole
// filter); Offset and Limit page the result (Limit < 0: no limit).
type Query struct {
	Lookup        *Lookup
	Offset, Limit int
}

// Lookup is an equality test on an indexed attribute.
type Lookup struct {
	Attr, Key string
}

// Page is one page of a list and the number of resources in the whole list.
type Page struct {
	Total     int
	Resources []*Resource
}
