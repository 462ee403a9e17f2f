package connectors

import (
	"context"
	"hash/fnv"
	"iter"
)

// UserHash is the content hash of a user record: a store keeps it with the
// mirrored row, so that a snapshot can be compared with the mirror without
// reading the mirror. It is never 0 (0 means "not known").
func UserHash(u *User) int64 {
	h := fnv.New64a()
	for _, s := range [...]string{u.ExternalID, u.UserName, u.Email, u.GivenName, u.FamilyName, u.DisplayName,
		u.Title, u.Department, u.EmployeeNumber, u.Manager, u.CostCenter, string(u.Status)} {
		writeField(h, s)
	}
	if u.Attrs != "" {
		// Only when rules read raw attributes: hashes stored before stay.
		writeField(h, u.Attrs)
	}
	return nonZero(h.Sum64())
}

// GroupHash is the content hash of a group and its members; the order of
// the members does not matter. It is never 0.
func GroupHash(g *Group, members iter.Seq[string]) int64 {
	h := fnv.New64a()
	for _, s := range [...]string{g.ExternalID, g.Name, g.Description} {
		writeField(h, s)
	}
	sum, n := h.Sum64(), uint64(0)
	for id := range members {
		m := fnv.New64a()
		m.Write([]byte(id))
		// A sum does not depend on the order; mix each id so that sums of
		// different sets rarely meet.
		x := m.Sum64()
		x ^= x >> 33
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
		sum += x
		n++
	}
	return nonZero(sum ^ (n * 0x9e3779b97f4a7c15))
}

type writer64 interface{ Write([]byte) (int, error) }

func writeField(h writer64, s string) {
	var n [8]byte
	l := uint64(len(s))
	for i := range n {
		n[i] = byte(l >> (8 * i))
	}
	h.Write(n[:])
	h.Write([]byte(s))
}

func nonZero(x uint64) int64 {
	if x == 0 {
		x = 1
	}
	return int64(x)
}

type readsWholeKey struct{}

// WithReadingWhole returns a context that tells the connectors fetching
// with it to call fn once they know that the fetch reads the whole source
// (a changed file, before it is parsed): a caller can then start, at the
// same time, the work that only such a fetch needs.
func WithReadingWhole(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, readsWholeKey{}, fn)
}

// ReadingWhole is what a connector calls, in its fetch and before it
// returns, when the fetch reads the whole source (see WithReadingWhole).
func ReadingWhole(ctx context.Context) {
	if fn, ok := ctx.Value(readsWholeKey{}).(func()); ok {
		fn()
	}
}
