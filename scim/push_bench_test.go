package scim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/scim"
)

// BenchmarkPushCreate is the push endpoint's write load test on loopback:
// clients concurrent clients POST users to one scim source of a real
// directory (SQLite, WAL) through the real handler, each answer sent after
// its commit. It reports durable creates a second and the p50/p99 latency.
// Run it with
//
//	go test -run '^$' -bench PushCreate -benchtime 2000x ./scim/
//
// (-benchtime is the number of creates of each sub-benchmark, shared by
// its clients).
func BenchmarkPushCreate(b *testing.B) {
	for _, clients := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("clients-%d", clients), func(b *testing.B) { benchCreates(b, clients) })
	}
}

func benchCreates(b *testing.B, clients int) {
	store, err := directory.Open(context.Background(), filepath.Join(b.TempDir(), "d.db"), directory.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(scim.NewHandler(scim.Options{Store: store}, []scim.Source{{Name: "entra", Token: token}}))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	next := make(chan int, b.N)
	for i := range b.N {
		next <- i
	}
	close(next)
	took := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range next {
				d, err := postUser(client, srv.URL, fmt.Sprintf("load%07d@example.com", i))
				if err != nil {
					errs <- err
					return
				}
				took[c] = append(took[c], d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	all := slices.Sorted(slices.Values(slices.Concat(took...)))
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "creates/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// postUser creates one user and returns how long the answer took.
func postUser(client *http.Client, base, userName string) (time.Duration, error) {
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + userName +
		`","active":true,"name":{"givenName":"Load","familyName":"Test"},"emails":[{"value":"` + userName +
		`","type":"work","primary":true}]}`
	req, err := http.NewRequest("POST", base+"/scim/entra/v2/Users", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusCreated {
		err = fmt.Errorf("POST %s: status %d", userName, resp.StatusCode)
	}
	return d, err
}
