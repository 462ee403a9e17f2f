package connectors

import (
	"context"
	"iter"
)

// UserHash is the content hash of a user record: a store keeps it with the
// mirrored row, so that a snapshot can be compared with the mirror without
// reading the mirror. It is never 0 (0 means "not known").
//
// The hashes are FNV-1a (64 bits), computed in place: at 1M users,
// hash/fnv's Write of each field's bytes made 200 MB of garbage a run.
func UserHash(u *User) int64 {
	h := fnvOffset
	for _, s := range [...]string{u.ExternalID, u.UserName, u.Email, u.GivenName, u.FamilyName, u.DisplayName,
		u.Title, u.Department, u.EmployeeNumber, u.Manager, u.CostCenter, string(u.Status)} {
		h = fnvField(h, s)
	}
	if u.Attrs != "" {
		// Only when rules read raw attributes: hashes stored before stay.
		h = fnvField(h, u.Attrs)
	}
	return nonZero(h)
}

// GroupHash is the content hash of a group and its members; the order of
// the members does not matter. It is never 0.
func GroupHash(g *Group, members iter.Seq[string]) int64 {
	h := fnvOffset
	for _, s := range [...]string{g.ExternalID, g.Name, g.Description} {
		h = fnvField(h, s)
	}
	sum, n := h, uint64(0)
	for id := range members {
		// A sum does not depend on the order; mix each id so that sums of
		// different sets rarely meet.
		x := fnvString(fnvOffset, id)
		x ^= x >> 33
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
		sum += x
		n++
	}
	return nonZero(sum ^ (n * 0x9e3779b97f4a7c15))
}

const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

// fnvField adds a field to an FNV-1a hash: its length (8 bytes, little
// endian), then its bytes.
func fnvField(h uint64, s string) uint64 {
	l := uint64(len(s))
	for i := range 8 {
		h ^= uint64(byte(l >> (8 * i)))
		h *= fnvPrime
	}
	return fnvString(h, s)
}

// fnvString adds the bytes of s to an FNV-1a hash.
func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
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
