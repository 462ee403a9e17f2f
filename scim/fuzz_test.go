package scim

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDecode feeds request bodies to the resource decoder: it returns a
// resource that passes its own checks or a 400 SCIM error, never panics,
// and what it returns normalises to itself.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"userName":"a","active":"True","emails":{"value":"a@b.c"}}`,
		`{"schemas":["urn:scim:schemas:core:1.0"],"userName":"x","urn:scim:schemas:extension:enterprise:1.0":{"Manager":"m"}}`,
		`{"displayName":"g","members":["1",{"value":"2","$ref":null}]}`,
		`{"userName": tre}`, `[]`, `{"a":` + strings.Repeat("[", 40), `{"userName":"a"} {}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, typ := range []string{TypeUser, TypeGroup} {
			attrs, err := Decode(typ, []byte(body))
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Status != 400 || e.Type == "" {
					t.Fatalf("Decode(%q): error %v is not a 400 SCIM error", body, err)
				}
				continue
			}
			again, err := Normalize(typ, deepCopy(attrs).(map[string]any))
			if err != nil {
				t.Fatalf("Normalize of a decoded resource failed: %v", err)
			}
			r := &Resource{Type: typ, ID: "x", Attrs: again}
			r.MirrorUser(nil)
			r.MirrorGroup()
		}
	})
}

// FuzzPatch applies fuzzed PatchOp bodies to a user: an answer or a SCIM
// error, never a panic.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"Operations":[{"op":"replace","value":{"name.givenName":"B","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"m"}}]}`,
		`{"Operations":[{"op":"remove","path":"emails[type eq \"work\"]"}]}`,
		`{"Operations":[{"op":"add","path":"emails[type eq \"work\"].value","value":"x"}]}`,
		`{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"department":"d"}}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		ops, err := decodePatch([]byte(body))
		if err != nil {
			return
		}
		attrs, _ := Decode(TypeUser, []byte(`{"userName":"u","emails":[{"value":"a","type":"work"}],"name":{"givenName":"g"}}`))
		if err := applyPatch(attrs, ops); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("applyPatch: %v is not a 400 SCIM error", err)
			}
			return
		}
		if out, err := Normalize(TypeUser, attrs); err == nil {
			(&Resource{Type: TypeUser, ID: "x", Attrs: out}).MirrorUser(nil)
		}
	})
}
