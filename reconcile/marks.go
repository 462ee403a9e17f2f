package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Reconcile modes of a run (Run.Reconcile).
const (
	// ModeFull plans the whole directory against every mirror: the truth.
	ModeFull = "full"
	// ModeIncremental plans only what the fetches of the run can affect.
	ModeIncremental = "incremental"
)

// Marks are what the directory records about past reconciles: what an
// incremental run relies on.
type Marks struct {
	// FullAt is when the last full reconcile was applied.
	FullAt time.Time
	// RulesHash is the RulesHash of the rules it applied.
	RulesHash string
	// Converged says the last applied run left the directory at the plan of
	// its mirrors: no source was frozen, nothing was held back.
	Converged bool
}

// RulesHash returns a digest of the rules: a run whose rules differ from
// those of the last full reconcile is a full one.
func RulesHash(r Rules) string {
	b, err := json.Marshal(r)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// UserHash is the content hash of a mirrored user (connectors.UserHash).
func UserHash(u *connectors.User) int64 { return connectors.UserHash(u) }

// GroupHash is the content hash of a mirrored group and its members
// (connectors.GroupHash).
func GroupHash(g *connectors.Group, members func(yield func(string) bool)) int64 {
	return connectors.GroupHash(g, members)
}

// ScopedStore is a Store that can read parts of the directory and of the
// mirrors with indexed queries: what an incremental run needs. A Store
// without it always reconciles fully.
type ScopedStore interface {
	Store
	// Marks returns the recorded marks, or nil when there are none yet.
	Marks(ctx context.Context) (*Marks, error)
	// Counts returns the number of active people and of held seats per pool.
	Counts(ctx context.Context) (active int, held map[string]int, err error)
	// DeleteDue returns the inactive people deactivated before t.
	DeleteDue(ctx context.Context, before time.Time) ([]int64, error)
	// MirrorHashes returns the stored hashes of a source's users and groups.
	MirrorHashes(ctx context.Context, source string) (users, groups map[string]int64, err error)
	// MirrorPart reads the mirror row of a source and those of the given
	// users and groups (with their members) that exist. Users, Groups and
	// Members of the result hold only those.
	MirrorPart(ctx context.Context, source string, users, groups []string) (*Mirror, error)
	// MirrorGroupsWith returns the groups of a source that have one of the
	// users as a member.
	MirrorGroupsWith(ctx context.Context, source string, users []string) ([]string, error)
	// MirrorGroupsNamed returns, per source, the groups with one of the names.
	MirrorGroupsNamed(ctx context.Context, names []string) (map[string][]string, error)
	// MirrorUsersByKey returns, per source, the ids of the users whose match
	// key (MatchKey with matchOn) is one of keys.
	MirrorUsersByKey(ctx context.Context, matchOn string, keys []string) (map[string][]string, error)
	// PeopleFor returns the people with one of the keys or linked to one of
	// the identities.
	PeopleFor(ctx context.Context, keys []string, refs []IdentityRef) ([]int64, error)
	// LoadPeople reads people by id with all their identities and seats
	// into st.
	LoadPeople(ctx context.Context, ids []int64, st *State) error
	// LoadScope reads into st the given groups with their members and
	// every pool.
	LoadScope(ctx context.Context, groups []GroupRef, st *State) error
	// PoolHolders returns the people holding a seat of pool.
	PoolHolders(ctx context.Context, pool string) ([]int64, error)
	// MirrorChanges returns, by source, the pending entries of the change
	// log of the given (pushed) sources: what the pushes since the last
	// applied run changed in their mirrors. A source without entries is
	// not in the result.
	MirrorChanges(ctx context.Context, sources []string) (map[string]*MirrorChanges, error)
}

// MirrorChanges are the pending change-log entries of a pushed source: its
// store writes the mirror between runs and logs, with every write, the rows
// it changed.
type MirrorChanges struct {
	// Seq is the last entry read: the run that reconciles them deletes the
	// entries up to it, and a push that lands during the run stays pending.
	Seq int64
	// Users are the users a push wrote or deleted, and the members a group
	// gained or lost; Groups the groups a push wrote or deleted. Sorted.
	Users, Groups []string
}
