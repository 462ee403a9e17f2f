package entra_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/entra/entratest"
)

const extApp = "extension_0123456789abcdef0123456789abcdef_costCentre"

// The rules see the Graph user: the properties the connector selects and
// those extra_attributes adds to $select (Graph sends them only then):
// onPremisesExtensionAttributes, employeeOrgData, extension_<app>_<name>.
func TestRawAttributes(t *testing.T) {
	srv := entratest.New(t)
	id := srv.AddUser(entratest.User{UserPrincipalName: "ann@x.test", Mail: "ann@x.test", GivenName: "Ann", Department: "Sales",
		Extra: map[string]any{
			"onPremisesExtensionAttributes": map[string]any{"extensionAttribute1": "Contractor", "extensionAttribute2": nil},
			"employeeOrgData":               map[string]any{"division": "EMEA", "costCenter": "FR-42"},
			extApp:                          "CC-7",
			"country":                       "France",
		}})
	sel := &connectors.Selection{}
	for _, p := range [][]string{{"onPremisesExtensionAttributes", "extensionAttribute1"}, {"employeeOrgData"}, {extApp}, {"country"}, {"department"}} {
		sel.Add(p)
	}
	fetch := func(extra []string, attrs *connectors.Selection) connectors.User {
		t.Helper()
		cfg := fakeConfig(srv, 10*time.Second)
		cfg.ExtraAttributes = extra
		opts := connectors.Options{Name: "entra", Logger: slog.New(slog.DiscardHandler), Attrs: attrs}
		if errs := cfg.Validate(opts); len(errs) > 0 {
			t.Fatal(errs)
		}
		c, err := entra.New(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.FetchAll(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range res.Users {
			if u.ExternalID == id {
				return u
			}
		}
		t.Fatalf("user %s not fetched", id)
		return connectors.User{}
	}
	u := fetch([]string{"onPremisesExtensionAttributes", "employeeOrgData", extApp, "country"}, sel)
	want := `{"country":"France","department":"Sales","employeeOrgData":{"costCenter":"FR-42","division":"EMEA"},` +
		`"extension_0123456789abcdef0123456789abcdef_costCentre":"CC-7","onPremisesExtensionAttributes":{"extensionAttribute1":"Contractor"}}`
	if u.Attrs != want {
		t.Errorf("Attrs = %s\nwant   %s", u.Attrs, want)
	}
	// Not selected, Graph does not send them: the rules see only the
	// default properties.
	if u := fetch(nil, sel); u.Attrs != `{"department":"Sales"}` {
		t.Errorf("Attrs without extra_attributes = %s", u.Attrs)
	}
	if u := fetch(nil, nil); u.Attrs != "" {
		t.Errorf("Attrs without rules = %s", u.Attrs)
	}
}

func TestExtraAttributesValidated(t *testing.T) {
	cfg := entra.DefaultConfig()
	cfg.ExtraAttributes = []string{"ok_name", "bad name", "$x"}
	var got []string
	for _, err := range cfg.Validate(connectors.Options{}) {
		if fe, ok := err.(*connectors.FieldError); ok && len(fe.Path) > 16 && fe.Path[:16] == "extra_attributes" {
			got = append(got, fe.Error())
		}
	}
	if len(got) != 2 || got[0] != `extra_attributes[1]: "bad name" is not a Graph property name` {
		t.Errorf("problems = %q", got)
	}
}
