package filter

import (
	"encoding/json"
	"testing"
)

// user is RFC 7643 §8.2's full user, trimmed, decoded the way a handler would.
const userJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "701984",
  "userName": "bjensen@example.com",
  "name": {"familyName": "Jensen", "givenName": "Barbara"},
  "displayName": "Babs Jensen",
  "title": "Tour Guide",
  "userType": "Employee",
  "active": true,
  "loginCount": 42,
  "nickName": "",
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "phoneNumbers": [],
  "members": ["a", "b"],
  "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""},
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "employeeNumber": "701984", "department": "Tour Operations",
    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
  }
}`

func decodeUser(t testing.TB) map[string]any {
	t.Helper()
	var u map[string]any
	if err := json.Unmarshal([]byte(userJSON), &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMatch(t *testing.T) {
	user := decodeUser(t)
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{`userName eq "bjensen@example.com"`, true},
		{`USERNAME eq "BJensen@Example.com"`, true}, // caseExact false by default
		{`userName eq "other"`, false},
		{`userName ne "other"`, true},
		{`userName sw B`, true},
		{`userName ew "EXAMPLE.COM"`, true},
		{`userName co "jensen@"`, true},
		{`userName gt "a"`, true},
		{`userName lt "a"`, false},
		{`userName ge "bjensen@example.com"`, true},
		{`userName le "bjensen@example.com"`, true},
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, false}, // id is caseExact
		{`id eq "2819c223-7f76-453a-919d-413861904646"`, true},
		{`externalId eq 701984`, true}, // unquoted number against a string
		{`name.familyName eq "jensen"`, true},
		{`name.FamilyName eq Jensen and (emails.Value co example.com or emails.Value co example.org)`, true},
		{`name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)`, false},
		{`emails co "jensen.org"`, true}, // complex multi-valued: compares value
		{`emails.type eq "home"`, true},
		{`emails.type eq "other"`, false},
		{`emails[type eq "work" and primary eq true]`, true},
		{`emails[type eq "home" and primary eq true]`, false},
		{`emails[type eq "work"].value eq "bjensen@example.com"`, true},
		{`emails[type eq "work"].value eq "babs@jensen.org"`, false},
		{`emails[type eq "home"].value ew ".org"`, true},
		{`members[value eq "b"]`, true}, // simple multi-valued: elements are "value"
		{`members eq "c"`, false},
		{`title pr`, true},
		{`nickName pr`, false},
		{`phoneNumbers pr`, false},
		{`missing pr`, false},
		{`emails pr`, true},
		{`name pr`, true},
		{`missing eq null`, true},
		{`title eq null`, false},
		{`title ne null`, true},
		{`missing ne "x"`, true},
		{`active eq true`, true},
		{`active eq false`, false},
		{`active ne false`, true},
		{`active eq "true"`, false},
		{`loginCount eq 42`, true},
		{`loginCount gt 41.5`, true},
		{`loginCount le 41`, false},
		{`loginCount co 4`, false},
		{`meta.created gt 2009-12-31T23:00:00-08:00`, true},
		{`meta.Created gt 2015-10-10T14:38:21.8617979-07:00`, false},
		{`meta.lastModified eq "2011-05-13T06:42:34+02:00"`, true}, // same instant
		{`meta.lastModified lt "2011-05-13T04:42:35Z"`, true},
		{`meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
		{`displayName gt "2011-05-13T04:42:34Z"`, true}, // not a date-time: by string
		{`meta.version eq "w/\"A330BC54F0671C9\""`, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations"`, true},
		{`URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:MANAGER.DISPLAYNAME sw "john"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName pr`, false},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen"`, true},
		{`not (userName eq "x")`, true},
		{`not (title pr) or userType eq "Employee"`, true},
		{`title pr and userType eq "Intern"`, false},
		{`schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, true},
		{`userName eq "x' OR 1=1 --"`, false},
	} {
		e, err := Parse(tc.filter)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.filter, err)
			continue
		}
		if got := Match(e, user); got != tc.want {
			t.Errorf("Match(%s) = %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestMatcherCaseExact(t *testing.T) {
	user := decodeUser(t)
	e, err := Parse(`userName eq "BJENSEN@example.com"`)
	if err != nil {
		t.Fatal(err)
	}
	exact := Matcher{CaseExact: func(AttrPath) bool { return true }}
	if exact.Match(e, user) {
		t.Error("caseExact matcher ignored case")
	}
	if !(Matcher{}).Match(e, user) {
		t.Error("default matcher did not ignore case")
	}
}

func TestMatchOtherNumberTypes(t *testing.T) {
	e, err := Parse(`n ge 3`)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{3, int64(4), float32(3.5), json.Number("3")} {
		if !Match(e, map[string]any{"n": v}) {
			t.Errorf("%T %v ge 3 = false", v, v)
		}
	}
	if Match(e, map[string]any{"n": json.Number("x")}) {
		t.Error("bad json.Number matched")
	}
}
