package oktatest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/fault"
)

func get(t *testing.T, s *Server, token, path string, q url.Values) (*http.Response, []map[string]any) {
	t.Helper()
	u := s.URL() + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "SSWS "+token)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body []map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
	}
	return resp, body
}

func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, l := range resp.Header.Values("Link") {
		if strings.Contains(l, `rel="next"`) {
			return strings.TrimSuffix(strings.TrimPrefix(strings.Split(l, ";")[0], "<"), ">")
		}
	}
	return ""
}

func TestListingWireFormat(t *testing.T) {
	s := New(t)
	for _, st := range Statuses {
		s.AddPerson(strings.ToLower(st)+"@example.com", "F", st, st)
	}

	// The plain listing hides DEPROVISIONED users and pages with separate
	// Link header lines.
	resp, page := get(t, s, s.Token, "/api/v1/users", url.Values{"limit": {"3"}})
	if got := resp.Header.Values("Link"); len(got) != 2 {
		t.Fatalf("Link lines = %q, want self and next as two lines", got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		t.Errorf("Date %q: %v", resp.Header.Get("Date"), err)
	}
	for _, h := range []string{"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"} {
		if _, err := strconv.Atoi(resp.Header.Get(h)); err != nil {
			t.Errorf("%s = %q", h, resp.Header.Get(h))
		}
	}
	seen := len(page)
	next := nextLink(t, resp)
	after, _ := url.Parse(next)
	if c := after.Query().Get("after"); c == "" || strings.HasPrefix(c, "00u") {
		t.Errorf("after cursor %q should be opaque", c)
	}
	for next != "" {
		u, _ := url.Parse(next)
		resp, page = get(t, s, s.Token, u.Path, u.Query())
		seen += len(page)
		for _, p := range page {
			if p["status"] == StatusDeprovisioned {
				t.Errorf("plain listing returned a DEPROVISIONED user")
			}
		}
		next = nextLink(t, resp)
	}
	if seen != len(Statuses)-1 {
		t.Errorf("plain listing returned %d users, want %d", seen, len(Statuses)-1)
	}

	// search returns every status.
	_, page = get(t, s, s.Token, "/api/v1/users", url.Values{"search": {`lastUpdated gt "1970-01-01T00:00:00.000Z"`}})
	if len(page) != len(Statuses) {
		t.Errorf("search returned %d users, want %d", len(page), len(Statuses))
	}
	_, page = get(t, s, s.Token, "/api/v1/users", url.Values{"filter": {`status eq "DEPROVISIONED"`}})
	if len(page) != 1 {
		t.Errorf("filter on status DEPROVISIONED returned %d users, want 1", len(page))
	}
	if resp, _ := get(t, s, s.Token, "/api/v1/users", url.Values{"filter": {`profile.department eq "x"`}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("filter on a profile attribute: status %d, want 400", resp.StatusCode)
	}
}

func TestGroupFilters(t *testing.T) {
	s := New(t)
	a := s.AddGroup(Group{Name: "A"})
	b := s.AddGroup(Group{Name: "B", Type: GroupTypeApp})
	s.AddGroup(Group{Name: "Everyone", Type: GroupTypeBuiltIn})
	u := s.AddPerson("x@example.com", "X", "Y", StatusActive)
	s.Advance(time.Minute)
	mark := s.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	s.Advance(time.Second)
	s.AddMember(b.ID, u)

	_, page := get(t, s, s.Token, "/api/v1/groups", url.Values{"filter": {`type eq "OKTA_GROUP" or type eq "APP_GROUP"`}})
	if len(page) != 2 {
		t.Errorf("type filter: %d groups, want 2", len(page))
	}
	f := `(type eq "OKTA_GROUP" or type eq "APP_GROUP") and (lastUpdated gt "` + mark + `" or lastMembershipUpdated gt "` + mark + `")`
	_, page = get(t, s, s.Token, "/api/v1/groups", url.Values{"filter": {f}})
	if len(page) != 1 || page[0]["id"] != b.ID {
		t.Errorf("changed-groups filter returned %v, want only %s", page, b.ID)
	}
	_, page = get(t, s, s.Token, "/api/v1/groups/"+b.ID+"/users", nil)
	if len(page) != 1 || page[0]["id"] != u {
		t.Errorf("members of B = %v", page)
	}
	if resp, _ := get(t, s, s.Token, "/api/v1/groups/"+a.ID+"x/users", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("members of a missing group: %d", resp.StatusCode)
	}
}

func TestErrorsAndRateLimit(t *testing.T) {
	s := New(t)
	resp, _ := get(t, s, "wrong", "/api/v1/users", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}

	s.SetRateLimit(FamilyUsers, 2)
	s.SetRateWindow(time.Second)
	var codes []int
	for range 3 {
		resp, _ := get(t, s, s.Token, "/api/v1/users", nil)
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("X-Rate-Limit-Remaining") != "0" {
				t.Errorf("429 remaining = %q", resp.Header.Get("X-Rate-Limit-Remaining"))
			}
			date, _ := http.ParseTime(resp.Header.Get("Date"))
			reset, _ := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Reset"), 10, 64)
			if d := reset - date.Unix(); d < 1 || d > 2 {
				t.Errorf("reset − date = %ds, want 1–2", d)
			}
		}
	}
	if codes[2] != http.StatusTooManyRequests {
		t.Errorf("statuses %v, want a 429 third", codes)
	}

	s.SetRateLimit(FamilyUsers, 100)
	s.Inject(fault.Fault{Endpoint: "/api/v1/users", Nth: 2, Status: http.StatusInternalServerError})
	var got []int
	for range 3 {
		resp, _ := get(t, s, s.Token, "/api/v1/users", nil)
		got = append(got, resp.StatusCode)
	}
	if got[0] != 200 || got[1] != 500 || got[2] != 200 {
		t.Errorf("statuses %v, want 200 500 200", got)
	}
	if n := s.Requests("/api/v1/users"); n != 7 {
		t.Errorf("Requests = %d, want 7", n)
	}
}
