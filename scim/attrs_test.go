package scim

import (
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

// A scim source's rules see the pushed resource; the mirror row keeps what
// they read of it, and nothing without rules.
func TestMirrorUserKeepsRuleAttributes(t *testing.T) {
	attrs, err := Decode(TypeUser, []byte(`{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"userName": "ann@x.test", "userType": "Contractor", "title": "Engineer",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "division": "EMEA"}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := &Resource{Type: TypeUser, ID: "u1", Attrs: attrs}
	sel := &connectors.Selection{}
	sel.Add([]string{"userType"})
	sel.Add([]string{SchemaEnterprise, "division"})
	u := r.MirrorUser(sel)
	want := `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"division":"EMEA"},"userType":"Contractor"}`
	if u.Attrs != want || u.Department != "Sales" {
		t.Errorf("Attrs = %s (department %q)\nwant   %s", u.Attrs, u.Department, want)
	}
	if u := r.MirrorUser(nil); u.Attrs != "" {
		t.Errorf("Attrs without rules = %s", u.Attrs)
	}
}
