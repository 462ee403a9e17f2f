package okta

import (
	"context"
	"log/slog"
	"testing"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
)

// The rules see Okta's own user object: status and any profile attribute,
// custom ones included; the connector keeps only what they read.
func TestRawAttributes(t *testing.T) {
	srv := oktatest.New(t)
	id := srv.AddUser(oktatest.User{Status: "ACTIVE", Profile: map[string]any{
		"login": "ann@x.test", "email": "ann@x.test", "firstName": "Ann", "lastName": "A",
		"division": "Sales", "countryCode": "FR", "userType": "Employee", "level": 3, "secretNote": "not kept",
	}}).ID
	sel := &connectors.Selection{}
	for _, p := range [][]string{{"status"}, {"profile", "division"}, {"profile", "countryCode"}, {"profile", "userType"}, {"profile", "level"}, {"profile", "missing"}} {
		sel.Add(p)
	}
	c, err := New(testConfig(t, srv), connectors.Options{Name: "okta", Logger: slog.New(slog.DiscardHandler), Attrs: sel})
	if err != nil {
		t.Fatal(err)
	}
	c.tr.retry = fastRetry
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, ok := findUser(res.Users, id)
	if !ok {
		t.Fatalf("user %s not fetched", id)
	}
	want := `{"profile":{"countryCode":"FR","division":"Sales","level":3,"userType":"Employee"},"status":"ACTIVE"}`
	if u.Attrs != want {
		t.Errorf("Attrs = %s\nwant   %s", u.Attrs, want)
	}
	// Without rules nothing is kept.
	res, err = newTestConnector(t, testConfig(t, srv), connectors.Hooks{}).FetchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := findUser(res.Users, id); u.Attrs != "" {
		t.Errorf("Attrs without rules = %s", u.Attrs)
	}
}
