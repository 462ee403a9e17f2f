package onelogin

import (
	"context"
	"strconv"
	"testing"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
)

// The rules see OneLogin's v2 user, custom_attributes included (asked for
// with fields= only when the rules read attributes).
func TestRawAttributes(t *testing.T) {
	srv := onelogintest.New(t)
	u := srv.AddUser(onelogintest.User{Username: "ann", Email: "ann@x.test", Firstname: "Ann", Lastname: "A", Status: 1, State: 1,
		CustomAttributes: map[string]any{"employee_type": "Contractor", "country": "FR", "badge": nil}})
	sel := &connectors.Selection{}
	sel.Add([]string{"custom_attributes"})
	sel.Add([]string{"status"})
	c, rec := newConnector(t, testConfig(srv), connectors.Options{Attrs: sel})
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := byID(res.Users)[strconv.FormatInt(u.ID, 10)]
	want := `{"custom_attributes":{"badge":null,"country":"FR","employee_type":"Contractor"},"status":1}`
	if got.Attrs != want {
		t.Errorf("Attrs = %s\nwant   %s", got.Attrs, want)
	}
	_ = rec
	c2, _ := newConnector(t, testConfig(srv), connectors.Options{})
	res, err = c2.FetchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a := byID(res.Users)[strconv.FormatInt(u.ID, 10)].Attrs; a != "" {
		t.Errorf("Attrs without rules = %s", a)
	}
}
