package okta

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestEndpointFamily(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/users":                 "users",
		"/api/v1/users/00u1":            "users/{id}",
		"/api/v1/groups":                "groups",
		"/api/v1/groups/00g1/users":     "groups/{id}/users",
		"/api/v1/apps/0oa1/users":       "apps/{id}/users",
		"/api/v1/apps/0oa1/groups":      "apps/{id}/groups",
		"/oauth2/v1/token":              "oauth2/v1/token",
		"/api/v1/groups/00g1/users/00u": "groups/{id}/users/{id}",
	} {
		if got := endpointFamily(path); got != want {
			t.Errorf("endpointFamily(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestThrottleWait(t *testing.T) {
	date := time.Date(2026, 11, 27, 8, 30, 13, 0, time.UTC)
	h := func(reset string) http.Header { return http.Header{"X-Rate-Limit-Reset": {reset}} }
	at := func(d time.Duration) string { return strconv.FormatInt(date.Add(d).Unix(), 10) }
	tests := []struct {
		h    http.Header
		date time.Time
		want time.Duration
	}{
		{h(at(2 * time.Second)), date, 2*time.Second + throttleMargin},
		{h(at(0)), date, time.Second}, // already reset
		{h("soon"), date, time.Second},
		{h(at(2 * time.Second)), time.Time{}, time.Second}, // no Date
		{h(at(3 * time.Hour)), date, maxThrottleWait},      // a bogus far reset is capped
	}
	for _, tt := range tests {
		if got := throttleWait(tt.h, tt.date); got != tt.want {
			t.Errorf("throttleWait(%v, %v) = %v, want %v", tt.h, tt.date, got, tt.want)
		}
	}
}
