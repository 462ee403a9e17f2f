package directory

import (
	"context"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// The raw attributes the rules read are stored with the mirror row (attrs)
// and read back, with the row's hash covering them.
func TestMirrorAttrsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	u := &connectors.User{ExternalID: "u1", Email: "ann@x.test", Status: connectors.StatusActive,
		Attrs: `{"profile":{"division":"Sales"}}`}
	plain := &connectors.User{ExternalID: "u2", Email: "bob@x.test", Status: connectors.StatusActive}
	d := &reconcile.MirrorDelta{Source: "okta", Full: true, FetchedAt: now, UpsertUsers: []*connectors.User{u, plain}}
	if err := s.Commit(ctx, &reconcile.Commit{Plan: &reconcile.Plan{}, Mirrors: []*reconcile.MirrorDelta{d},
		Run: &reconcile.Run{Result: reconcile.ResultOK, StartedAt: now, EndedAt: now}, Now: now}); err != nil {
		t.Fatal(err)
	}
	mirrors, err := s.LoadMirrors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := mirrors["okta"]
	if m == nil || m.Users["u1"] == nil || m.Users["u1"].Attrs != u.Attrs || m.Users["u2"].Attrs != "" {
		t.Fatalf("mirror users = %+v", m)
	}
	users, _, err := s.MirrorHashes(ctx, "okta")
	if err != nil {
		t.Fatal(err)
	}
	if users["u1"] != reconcile.UserHash(u) {
		t.Errorf("stored hash %d, want %d", users["u1"], reconcile.UserHash(u))
	}
}
