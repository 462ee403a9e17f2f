package testkit

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// Get fetches url and returns the answer's status and body. It fails the
// test when there is no answer within 5 seconds or its body cannot be read.
func Get(tb testing.TB, url string) (int, []byte) {
	tb.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, body
}
