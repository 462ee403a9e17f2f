package connectors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCertificateErrorIsRecognized(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, err := NewHTTPClient("", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(srv.URL)
	if err == nil || !CertificateError(err) {
		t.Fatalf("GET with an untrusted certificate: %v; want a certificate error", err)
	}
	if CertificateError(http.ErrHandlerTimeout) {
		t.Error("a timeout is not a certificate error")
	}
}

func TestCheckURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://acme.okta.com":     true,
		"http://127.0.0.1:8080":     true,
		"http://localhost:9":        true,
		"http://[::1]:9":            true,
		"http://acme.okta.com":      false,
		"ftp://acme.okta.com":       false,
		"acme.okta.com":             false,
		"https://":                  false,
		"http://10.0.0.1/intranet":  false,
		"https://[::1]:443/v1.0":    true,
		"::not a url":               false,
		"https://login.example/ten": true,
	} {
		if err := CheckURL(raw); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}

func TestBudgetKeepsTheOthersShare(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &Budget{Share: 0.5, Now: func() time.Time { return now }}
	if d := b.Reserve("users"); d != 0 {
		t.Fatalf("unknown family waits %v", d)
	}
	// 100 a window, 52 left: 2 more requests fit into our half.
	b.Observe("users", 100, 52, now.Add(30*time.Second))
	for i := range 2 {
		if d := b.Reserve("users"); d != 0 {
			t.Fatalf("request %d waits %v", i, d)
		}
	}
	if d := b.Reserve("users"); d < 30*time.Second || d > 31*time.Second {
		t.Errorf("over the share: wait %v, want until the reset", d)
	}
	// Another family is not affected, and MaxWait bounds a bogus reset.
	b.MaxWait = time.Minute
	b.Observe("groups", 100, 10, now.Add(24*time.Hour))
	if d := b.Reserve("groups"); d > time.Minute+time.Second {
		t.Errorf("wait %v not bounded by MaxWait", d)
	}
}

func TestSecretIsRedacted(t *testing.T) {
	s := Secret("hunter2")
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "token", s)
	b, _ := json.Marshal(map[string]any{"token": s})
	for what, text := range map[string]string{
		"fmt %v": fmt.Sprintf("%v", s), "fmt %s": fmt.Sprintf("%s", s), "fmt %#v": fmt.Sprintf("%#v", s),
		"slog": buf.String(), "json": string(b),
	} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("%s shows the secret: %s", what, text)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Error("Reveal lost the value")
	}
}

func TestBackoffDelayIsBounded(t *testing.T) {
	b := Backoff{Attempts: 10, Base: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n < 70; n++ {
		if d := b.Delay(n); d <= 0 || d > time.Second {
			t.Fatalf("Delay(%d) = %v", n, d)
		}
	}
}
