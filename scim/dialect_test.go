package scim_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

// The dialects Entra ID, Okta and OneLogin really send, each from the
// vendor's documentation (docs/scim.md names the pages).

const (
	patchOp    = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`
	enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// Entra ID's user create ("Develop and plan provisioning for a SCIM
// endpoint", Create User request).
const entraUser = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
  "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
  "active": true,
  "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
  "meta": {"resourceType": "User"},
  "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
  "roles": []
}`

func TestEntraDialect(t *testing.T) {
	f := newFixture(t)
	uid := f.do("POST", "/Users", entraUser).want(t, 201).id()
	mid := f.createUser("manager@contoso.com", "manager@contoso.com")
	gid := f.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group",
		"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
		"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"Learners","members":[]}`).want(t, 201).id()

	t.Run("capitalised Replace, active as the string False", func(t *testing.T) {
		f.do("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"Replace","path":"active","value":"False"}]}`).want(t, 204)
		if a := f.do("GET", "/Users/"+uid, "").want(t, 200); a.get("active") != false {
			t.Errorf("active = %v, want false", a.get("active"))
		}
		if u := f.mirrorUser("entra", uid); u.Status != connectors.StatusInactive {
			t.Errorf("mirror status = %s, want inactive", u.Status)
		}
		f.do("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"Replace","path":"active","value":"True"}]}`).want(t, 204)
	})
	t.Run("member added with $ref null, removed by a value list", func(t *testing.T) {
		f.do("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"`+uid+`"}]}]}`).want(t, 204)
		if got := f.mirror("entra").Members[gid]; len(got) != 1 {
			t.Fatalf("mirror members = %v, want the user", got)
		}
		a := f.do("GET", "/Groups/"+gid, "").want(t, 200)
		if a.get("members", "0", "value") != uid || a.get("members", "0", "$ref") != nil {
			t.Errorf("members = %v", a.get("members"))
		}
		f.do("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"Remove","path":"members","value":[{"value":"`+uid+`"}]}]}`).want(t, 204)
		if got := f.mirror("entra").Members[gid]; len(got) != 0 {
			t.Errorf("mirror members = %v, want none", got)
		}
	})
	t.Run("path-less replace with dotted keys (aadOptscim062020)", func(t *testing.T) {
		f.do("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","value":{
			"name.givenName":"Bea","name.familyName":"Durand","displayName":"Bea Durand",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Sales",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"E42",
			"title":"Engineer"}}]}`).want(t, 204)
		u := f.mirrorUser("entra", uid)
		if u.GivenName != "Bea" || u.FamilyName != "Durand" || u.Department != "Sales" || u.EmployeeNumber != "E42" || u.Title != "Engineer" {
			t.Errorf("mirror user = %+v", u)
		}
		a := f.do("GET", "/Users/"+uid, "").want(t, 200)
		if a.get("name", "formatted") != "givenName familyName" {
			t.Errorf("name.formatted lost: %v", a.get("name"))
		}
	})
	t.Run("manager as a plain string", func(t *testing.T) {
		f.do("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"Add","path":"`+enterprise+`:manager","value":"`+mid+`"}]}`).want(t, 204)
		if u := f.mirrorUser("entra", uid); u.Manager != mid {
			t.Errorf("manager = %q, want %q", u.Manager, mid)
		}
	})
	t.Run("excludedAttributes=members with a displayName filter", func(t *testing.T) {
		f.do("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"Add","path":"members","value":[{"value":"`+uid+`"}]}]}`).want(t, 204)
		a := f.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "Learners"`), "").want(t, 200)
		if a.get("totalResults") != 1.0 || a.get("Resources", "0", "id") != gid || a.get("Resources", "0", "members") != nil {
			t.Errorf("answer = %s", a.raw)
		}
	})
	t.Run("lookups by userName, unquoted externalId and work email", func(t *testing.T) {
		for _, flt := range []string{
			`userName eq "test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1"`,
			`externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef`,
			`emails[type eq "work"].value eq "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"`,
		} {
			a := f.do("GET", "/Users?filter="+url.QueryEscape(flt), "").want(t, 200)
			if a.get("totalResults") != 1.0 || a.get("Resources", "0", "id") != uid {
				t.Errorf("%s: %s", flt, a.raw)
			}
		}
		a := f.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "nobody"`), "").want(t, 200)
		if a.get("totalResults") != 0.0 || a.get("Resources") == nil {
			t.Errorf("no match: %s", a.raw)
		}
	})
	t.Run("the extra Group schema is kept", func(t *testing.T) {
		a := f.do("GET", "/Groups/"+gid, "").want(t, 200)
		if s, _ := a.get("schemas").([]any); len(s) != 2 {
			t.Errorf("schemas = %v", a.get("schemas"))
		}
	})
	t.Run("first work email set through a value path", func(t *testing.T) {
		id := f.do("POST", "/Users", `{"userName":"noemail@contoso.com","active":true}`).want(t, 201).id()
		f.do("PATCH", "/Users/"+id, `{`+patchOp+`,"Operations":[{"op":"Add","path":"emails[type eq \"work\"].value","value":"w@contoso.com"}]}`).want(t, 204)
		if u := f.mirrorUser("entra", id); u.Email != "w@contoso.com" {
			t.Errorf("email = %q", u.Email)
		}
	})
}

func TestOktaDialect(t *testing.T) {
	f := newFixture(t)
	okta := func(method, path, body string) answer {
		return f.doAt("/scim/okta/v2", method, path, body, "Authorization: Bearer "+token+"-okta", "User-Agent: Okta SCIM Client 1.0.0")
	}
	// Okta's create ("SCIM 2.0 protocol reference", Create the user).
	a := okta("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"test.user@okta.local","name":{"givenName":"Test","familyName":"User"},
		"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],
		"displayName":"Test User","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7",
		"groups":[],"password":"1mz050nq","active":true}`).want(t, 201)
	uid := a.id()
	if a.get("password") != nil {
		t.Errorf("password returned: %s", a.raw)
	}
	t.Run("password is never stored", func(t *testing.T) {
		var n int
		if err := f.store.DB().QueryRow(`SELECT COUNT(*) FROM scim_resources WHERE body LIKE '%1mz050nq%'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("password stored (%d rows, %v)", n, err)
		}
	})
	t.Run("profile change as a PUT of the whole resource", func(t *testing.T) {
		a := okta("PUT", "/Users/"+uid, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"`+uid+`",
			"userName":"test.user@okta.local","name":{"givenName":"Another","familyName":"User"},
			"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],"displayName":"Another User",
			"password":"x9","active":true}`).want(t, 200)
		if a.get("name", "givenName") != "Another" || a.get("meta", "version") != `W/"2"` {
			t.Errorf("answer = %s", a.raw)
		}
	})
	t.Run("deactivation as a path-less replace", func(t *testing.T) {
		a := okta("PATCH", "/Users/"+uid, `{`+patchOp+`,"Operations":[{"op":"replace","value":{"active":false}}]}`).want(t, 200)
		if a.get("active") != false || f.mirrorUser("okta", uid).Status != connectors.StatusInactive {
			t.Errorf("answer = %s", a.raw)
		}
	})
	gid := okta("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Test SCIMv2 group","members":[]}`).want(t, 201).id()
	t.Run("group rename: path-less replace carrying the read-only id", func(t *testing.T) {
		okta("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"replace","value":{"id":"`+gid+`","displayName":"Renamed"}}]}`).want(t, 200)
		if g := f.mirror("okta").Groups[gid]; g == nil || g.Name != "Renamed" {
			t.Errorf("mirror group = %+v", g)
		}
	})
	t.Run("members added with value and display, removed by a value filter", func(t *testing.T) {
		okta("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"add","path":"members","value":[{"value":"`+uid+`","display":"test.user@okta.local"}]}]}`).want(t, 200)
		if got := f.mirror("okta").Members[gid]; len(got) != 1 || !has(got, uid) {
			t.Fatalf("mirror members = %v", got)
		}
		okta("PATCH", "/Groups/"+gid, `{`+patchOp+`,"Operations":[{"op":"remove","path":"members[value eq \"`+uid+`\"]"}]}`).want(t, 200)
		if got := f.mirror("okta").Members[gid]; len(got) != 0 {
			t.Errorf("mirror members = %v", got)
		}
	})
	t.Run("imports paging with count=100", func(t *testing.T) {
		for _, n := range []string{"a", "b", "c"} {
			okta("POST", "/Users", `{"userName":"`+n+`@okta.local"}`).want(t, 201)
		}
		a := okta("GET", "/Users?startIndex=1&count=100", "").want(t, 200)
		if a.get("totalResults") != 4.0 || a.get("itemsPerPage") != 4.0 || a.get("startIndex") != 1.0 {
			t.Errorf("page 1 = %s", a.raw)
		}
		a = okta("GET", "/Users?startIndex=3&count=2", "").want(t, 200)
		if a.get("totalResults") != 4.0 || a.get("itemsPerPage") != 2.0 || a.get("Resources", "0", "userName") != "b@okta.local" {
			t.Errorf("page 2 = %s", a.raw)
		}
	})
}

func TestOneLoginDialect(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, body string }{
		{"no schemas, emails as one object, active as a string", `{"userName":"ol1@example.com","active":"true",
			"emails":{"value":"ol1@example.com","type":"work","primary":"true"},"name":{"givenName":"One","familyName":"Login"}}`},
		{"SCIM 1.0 names", `{"schemas":["urn:scim:schemas:core:1.0","urn:scim:schemas:extension:enterprise:1.0"],
			"userName":"ol2@example.com","active":"True","emails":[{"value":"ol2@example.com","type":"work"}],
			"urn:scim:schemas:extension:enterprise:1.0":{"department":"Ops"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do("POST", "/Users", tc.body).want(t, 201)
			if a.get("active") != true || a.get("emails", "0", "value") == nil {
				t.Errorf("answer = %s", a.raw)
			}
			for _, s := range a.get("schemas").([]any) {
				if s == "urn:scim:schemas:core:1.0" || s == "urn:scim:schemas:extension:enterprise:1.0" {
					t.Errorf("SCIM 1.0 schema kept: %v", a.get("schemas"))
				}
			}
			u := f.mirrorUser("entra", a.id())
			if u.Status != connectors.StatusActive || u.Email == "" {
				t.Errorf("mirror user = %+v", u)
			}
		})
	}
	if u := f.mirror("entra"); len(u.Users) != 2 {
		t.Fatalf("mirror has %d users", len(u.Users))
	}
	for _, u := range f.mirror("entra").Users {
		if u.UserName == "ol2@example.com" && u.Department != "Ops" {
			t.Errorf("SCIM 1.0 enterprise department lost: %+v", u)
		}
	}
}

func has(list []string, id string) bool { return slices.Contains(list, id) }
