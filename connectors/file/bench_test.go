package file_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/file"
	"github.com/learnsync/learnsync/internal/benchorg"
)

// BenchmarkFetchJSON reads the performance target's organisation: 100,000
// users, 5,000 groups, 500,000 memberships.
func BenchmarkFetchJSON(b *testing.B) {
	p := filepath.Join(b.TempDir(), "org.json")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if err := (benchorg.Org{Users: 100_000, Groups: 5_000, MembersPerGroup: 100, Seed: 1}).Write(f); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(p)
	c, err := file.New(&file.Config{Path: p}, connectors.Options{})
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
