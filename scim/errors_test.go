package scim_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/scim"
)

// checkError fails unless a is a SCIM error with status and scimType.
func checkError(t *testing.T, a answer, status int, scimType string) {
	t.Helper()
	a.want(t, status)
	if a.get("status") != strconv.Itoa(status) || a.get("scimType") != nilIfEmpty(scimType) || a.get("detail") == nil {
		t.Errorf("error body = %s", a.raw)
	}
	if s, _ := a.get("schemas").([]any); len(s) != 1 || s[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Errorf("schemas = %v", a.get("schemas"))
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("Alice@Example.com", "alice@example.com")
	before := len(f.mirror("entra").Users)
	for _, tc := range []struct {
		name           string
		a              answer
		status         int
		scimType       string
		checkNoMessage bool
	}{
		{"no token", f.doAt("/scim/entra/v2", "GET", "/Users", ""), 401, "", true},
		{"wrong token", f.do("GET", "/Users", "", "Authorization: Bearer nope"), 401, "", true},
		{"another source's token", f.do("GET", "/Users", "", "Authorization: Bearer "+token+"-okta"), 401, "", true},
		{"unknown source", f.doAt("/scim/nosuch/v2", "GET", "/Users", "", "Authorization: Bearer "+token), 401, "", true},
		{"unknown id", f.do("GET", "/Users/nope", ""), 404, "", false},
		{"duplicate userName in another case", f.do("POST", "/Users", `{"userName":"alice@example.COM"}`), 409, "uniqueness", false},
		{"no userName", f.do("POST", "/Users", `{"displayName":"x"}`), 400, "invalidValue", false},
		{"junk", f.do("POST", "/Users", `{"userName": tre}`), 400, "invalidSyntax", false},
		{"not an object", f.do("POST", "/Users", `["userName"]`), 400, "invalidSyntax", false},
		{"deeply nested", f.do("POST", "/Users", `{"userName":"d","x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`), 400, "invalidSyntax", false},
		{"bad filter", f.do("GET", "/Users?filter="+url.QueryEscape(`userName eq`), ""), 400, "invalidFilter", false},
		{"bad path", f.do("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","path":"emails[type eq","value":"x"}]}`), 400, "invalidPath", false},
		{"bad op", f.do("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"move","path":"title","value":"x"}]}`), 400, "invalidSyntax", false},
		{"active not a boolean", f.do("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","path":"active","value":"maybe"}]}`), 400, "invalidValue", false},
		{"If-Match mismatch", f.do("PUT", "/Users/"+uid, `{"userName":"alice@example.com","title":"x"}`, `If-Match: W/"7"`), 412, "", false},
		{"body over 1 MiB", f.do("POST", "/Users", `{"userName":"big","x":"`+strings.Repeat("a", scim.MaxBody)+`"}`), 413, "", false},
		{"method", f.do("DELETE", "/Users", ""), 405, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, tc.a, tc.status, tc.scimType)
			if tc.checkNoMessage && strings.Contains(strings.ToLower(tc.a.raw), "token") && strings.Contains(tc.a.raw, "wrong") {
				t.Errorf("401 gives a hint: %s", tc.a.raw)
			}
		})
	}
	// A rejected request writes nothing.
	if got := len(f.mirror("entra").Users); got != before {
		t.Errorf("mirror has %d users after rejected writes, want %d", got, before)
	}
	if a := f.do("GET", "/Users/"+uid, "").want(t, 200); a.get("title") != nil || a.get("meta", "version") != `W/"1"` {
		t.Errorf("user changed by rejected writes: %s", a.raw)
	}
	f.do("PUT", "/Users/"+uid, `{"userName":"alice@example.com","title":"x"}`, `If-Match: W/"1"`).want(t, 200)
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, scim.Source{Name: "entra", Token: token, Rate: 0.001, Burst: 2})
	f.do("GET", "/Users", "").want(t, 200)
	f.do("GET", "/Users", "").want(t, 200)
	a := f.do("GET", "/Users", "")
	checkError(t, a, 429, "")
	if ra := a.header.Get("Retry-After"); ra == "" {
		t.Errorf("no Retry-After")
	}
}

func TestDeleteUserLeavesGroups(t *testing.T) {
	f := newFixture(t)
	uid := f.createUser("bob@example.com", "bob@example.com")
	gid := f.do("POST", "/Groups", `{"displayName":"G","members":[{"value":"`+uid+`"}]}`).want(t, 201).id()
	if len(f.mirror("entra").Members[gid]) != 1 {
		t.Fatal("member not mirrored")
	}
	f.do("DELETE", "/Users/"+uid, "").want(t, 204)
	m := f.mirror("entra")
	if m.Users[uid] != nil || len(m.Members[gid]) != 0 {
		t.Errorf("deleted user still mirrored: %+v %v", m.Users[uid], m.Members[gid])
	}
	if a := f.do("GET", "/Groups/"+gid, "").want(t, 200); len(asSlice(a.get("members"))) != 0 {
		t.Errorf("group still lists the user: %s", a.raw)
	}
	f.do("DELETE", "/Groups/"+gid, "").want(t, 204)
	if f.mirror("entra").Groups[gid] != nil {
		t.Error("deleted group still mirrored")
	}
	f.do("DELETE", "/Groups/"+gid, "").want(t, 404)
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestRoutingAndDiscovery(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/users", "/Users/", "/USERS", "/ServiceProviderConfig", "/serviceConfiguration/", "/ResourceTypes", "/ResourceTypes/User", "/Schemas", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"} {
		f.do("GET", p, "").want(t, 200)
	}
	a := f.doAt("/SCIM/entra/V2", "GET", "/ServiceProviderConfig", "", "Authorization: Bearer "+token).want(t, 200)
	if a.get("patch", "supported") != true || !strings.HasPrefix(a.header.Get("Content-Type"), "application/scim+json") {
		t.Errorf("spc = %s", a.raw)
	}
	if s := f.do("GET", "/Schemas", "").raw; !strings.Contains(s, "User Account") {
		t.Error("schemas lack the User schema's description")
	}
	f.do("GET", "/Bulk", "").want(t, 404)
}

func TestSQLInFilterIsAValue(t *testing.T) {
	f := newFixture(t)
	f.createUser("x@example.com", "x@example.com")
	for _, flt := range []string{`userName eq "x' OR 1=1 --"`, `externalId eq "'; DROP TABLE scim_resources; --"`, `displayName co "%"`} {
		a := f.do("GET", "/Users?filter="+url.QueryEscape(flt), "").want(t, 200)
		if a.get("totalResults") != 0.0 {
			t.Errorf("%s matched: %s", flt, a.raw)
		}
	}
	f.do("GET", "/Users", "").want(t, 200)
}

func TestAttributeSelection(t *testing.T) {
	f := newFixture(t)
	f.do("POST", "/Users", `{"userName":"sel@example.com","name":{"givenName":"S","familyName":"L"},"emails":[{"value":"sel@example.com","type":"work"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D","costCenter":"C"}}`).want(t, 201)
	a := f.do("GET", "/Users?attributes=name.givenName,"+url.QueryEscape(enterprise+":department"), "").want(t, 200)
	r := a.get("Resources", "0").(map[string]any)
	if r["userName"] != nil || a.get("Resources", "0", "name", "givenName") != "S" || a.get("Resources", "0", "name", "familyName") != nil ||
		a.get("Resources", "0", enterprise, "department") != "D" || a.get("Resources", "0", enterprise, "costCenter") != nil || r["id"] == nil {
		t.Errorf("attributes: %s", a.raw)
	}
	a = f.do("GET", "/Users?excludedAttributes=emails,name.givenName", "").want(t, 200)
	if a.get("Resources", "0", "emails") != nil || a.get("Resources", "0", "name", "familyName") != "L" || a.get("Resources", "0", "name", "givenName") != nil {
		t.Errorf("excludedAttributes: %s", a.raw)
	}
	a = f.do("GET", "/Users?filter="+url.QueryEscape(`name.givenName eq "s" and meta.lastModified gt "2000-01-01T00:00:00Z"`), "").want(t, 200)
	if a.get("totalResults") != 1.0 {
		t.Errorf("filter by Match: %s", a.raw)
	}
}
