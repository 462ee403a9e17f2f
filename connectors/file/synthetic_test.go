package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

func TestWriteSynthetic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteSynthetic(&a, 500, 20, 30, 7); err != nil {
		t.Fatal(err)
	}
	if err := WriteSynthetic(&b, 500, 20, 30, 7); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same seed gave different files")
	}
	for _, want := range []string{`"id":"e000123"`, `"user_name":"u000123"`, `"email":"user000123@example.com"`,
		`"id":"g0019","name":"Group 0019"`} {
		if !strings.Contains(a.String(), want) {
			t.Errorf("synthetic file lacks %s", want)
		}
	}

	res := mustFetch(t, writeTemp(t, "org.json", a.Bytes()))
	if len(res.Problems) > 0 {
		t.Errorf("problems: %v", problems(res)[:min(5, len(res.Problems))])
	}
	if len(res.Users) != 500 || len(res.Groups) != 20 {
		t.Errorf("%d users, %d groups; want 500, 20", len(res.Users), len(res.Groups))
	}
	inactive := 0
	for _, u := range res.Users {
		if u.Status == connectors.StatusInactive {
			inactive++
		}
	}
	if inactive == 0 || inactive > 30 {
		t.Errorf("%d of 500 inactive, want about 2%%", inactive)
	}
	for _, g := range res.Groups {
		if n := len(res.Members[g.ExternalID]); n != 30 {
			t.Errorf("group %s has %d members, want 30 distinct", g.ExternalID, n)
		}
	}

	// Changed alters titles only, of about that share of the users.
	var c bytes.Buffer
	if err := (Synthetic{Users: 500, Groups: 20, MembersPerGroup: 30, Seed: 7, Changed: 0.1}).Write(&c); err != nil {
		t.Fatal(err)
	}
	changed := mustFetch(t, writeTemp(t, "org.json", c.Bytes()))
	diff := 0
	for i, u := range changed.Users {
		o := res.Users[i]
		if u != o {
			diff++
			o.Title += " II"
			if u != o {
				t.Errorf("user %s changed more than its title: %+v", u.ExternalID, u)
			}
		}
	}
	if diff < 25 || diff > 75 {
		t.Errorf("Changed 0.1 changed %d of 500 users", diff)
	}
	for _, g := range res.Groups {
		if !equalStrings(res.Members[g.ExternalID], changed.Members[g.ExternalID]) {
			t.Errorf("members of %s changed", g.ExternalID)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkFetchJSON reads the performance target's organisation: 100,000
// users, 5,000 groups, 500,000 memberships.
func BenchmarkFetchJSON(b *testing.B) {
	p := filepath.Join(b.TempDir(), "org.json")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if err := WriteSynthetic(f, 100_000, 5_000, 100, 1); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(p)
	c, err := New(&Config{Path: p}, connectors.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var peak uint64
	var res *connectors.Result
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		res, err = c.FetchAll(context.Background())
		if err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// Heap held by one result, measured after a collection.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peak = ms.HeapAlloc
	n := 0
	for _, m := range res.Members {
		n += len(m)
	}
	if len(res.Users) != 100_000 || len(res.Groups) != 5_000 || n != 500_000 || len(res.Problems) > 0 {
		b.Fatalf("got %d users, %d groups, %d memberships, %d problems", len(res.Users), len(res.Groups), n, len(res.Problems))
	}
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/fetch")
	b.ReportMetric(float64(peak)/(1<<20), "MB-live-result")
	b.ReportMetric(float64(st.Size())/(1<<20), "MB-file")
	runtime.KeepAlive(res)
}
