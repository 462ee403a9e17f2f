package filter

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// at builds an AttrPath from "urn…:name.sub" the simple way.
func at(s string) AttrPath {
	var a AttrPath
	if strings.HasPrefix(strings.ToLower(s), "urn:") {
		i := strings.LastIndexByte(s, ':')
		a.URN, s = s[:i], s[i+1:]
	}
	a.Name, a.Sub, _ = strings.Cut(s, ".")
	return a
}

func str(s string) Value  { return Value{Kind: KindString, Text: s} }
func num(s string) Value  { return Value{Kind: KindNumber, Text: s} }
func date(s string) Value { return Value{Kind: KindDateTime, Text: s} }

var (
	vTrue = Value{Kind: KindBool, Text: "true"}
	vNull = Value{Kind: KindNull, Text: "null"}
)

func cmpx(path string, op CompareOp, v Value) Compare {
	return Compare{Path: at(path), Op: op, Value: v}
}
func and(l, r Expr) Logical  { return Logical{Op: And, Left: l, Right: r} }
func or(l, r Expr) Logical   { return Logical{Op: Or, Left: l, Right: r} }
func pr(path string) Present { return Present{Path: at(path)} }

// filterCases holds every filter the validator collection sends (URL-decoded),
// the RFC 7644 §3.4.2.2 examples and the dialects of real senders.
var filterCases = []struct {
	name string
	in   string
	want Expr
	// canon is the expected String(); "" means the same as in.
	canon string
}{
	// PostmanCollection.json
	{"collection DisplayName", `DisplayName eq "BobIsAmazing"`, cmpx("DisplayName", Eq, str("BobIsAmazing")), ""},
	{"collection meta.Created unquoted date-time", `meta.Created gt 2015-10-10T14:38:21.8617979-07:00`,
		cmpx("meta.Created", Gt, date("2015-10-10T14:38:21.8617979-07:00")), `meta.Created gt "2015-10-10T14:38:21.8617979-07:00"`},
	{"collection unquoted and group", `name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)`,
		and(cmpx("name.FamilyName", Eq, str("Employee")), or(cmpx("emails.Value", Co, str("example.com")), cmpx("emails.Value", Co, str("example.org")))),
		`name.FamilyName eq "Employee" and (emails.Value co "example.com" or emails.Value co "example.org")`},
	{"collection userName sw O", `userName sw O`, cmpx("userName", Sw, str("O")), `userName sw "O"`},

	// RFC 7644 §3.4.2.2 examples
	{"rfc eq", `userName eq "bjensen"`, cmpx("userName", Eq, str("bjensen")), ""},
	{"rfc quote in string", `name.familyName co "O'Malley"`, cmpx("name.familyName", Co, str("O'Malley")), ""},
	{"rfc sw", `userName sw "J"`, cmpx("userName", Sw, str("J")), ""},
	{"rfc core urn", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`,
		cmpx("urn:ietf:params:scim:schemas:core:2.0:User:userName", Sw, str("J")), ""},
	{"rfc pr", `title pr`, pr("title"), ""},
	{"rfc date gt", `meta.lastModified gt "2011-05-13T04:42:34Z"`, cmpx("meta.lastModified", Gt, date("2011-05-13T04:42:34Z")), ""},
	{"rfc date lt", `meta.lastModified lt "2011-05-13T04:42:34Z"`, cmpx("meta.lastModified", Lt, date("2011-05-13T04:42:34Z")), ""},
	{"rfc and", `title pr and userType eq "Employee"`, and(pr("title"), cmpx("userType", Eq, str("Employee"))), ""},
	{"rfc or", `title pr or userType eq "Intern"`, or(pr("title"), cmpx("userType", Eq, str("Intern"))), ""},
	{"rfc schemas", `schemas eq "` + enterprise + `"`, cmpx("schemas", Eq, str(enterprise)), ""},
	{"rfc group", `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		and(cmpx("userType", Eq, str("Employee")), or(cmpx("emails", Co, str("example.com")), cmpx("emails.value", Co, str("example.org")))), ""},
	{"rfc not", `userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		and(cmpx("userType", Ne, str("Employee")), Not{or(cmpx("emails", Co, str("example.com")), cmpx("emails.value", Co, str("example.org")))}), ""},
	{"rfc redundant parens", `userType eq "Employee" and (emails.type eq "work")`,
		and(cmpx("userType", Eq, str("Employee")), cmpx("emails.type", Eq, str("work"))), `userType eq "Employee" and emails.type eq "work"`},
	{"rfc value filter", `userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
		and(cmpx("userType", Eq, str("Employee")), ValuePath{at("emails"), and(cmpx("type", Eq, str("work")), cmpx("value", Co, str("@example.com")))}), ""},
	{"rfc two value filters", `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		or(ValuePath{at("emails"), and(cmpx("type", Eq, str("work")), cmpx("value", Co, str("@example.com")))},
			ValuePath{at("ims"), and(cmpx("type", Eq, str("xmpp")), cmpx("value", Co, str("@foo.com")))}), ""},

	// schema URNs
	{"enterprise department", enterprise + `:department eq "Sales"`, cmpx(enterprise+":department", Eq, str("Sales")), ""},
	{"enterprise manager.value", enterprise + `:manager.value eq "26118915"`, cmpx(enterprise+":manager.value", Eq, str("26118915")), ""},

	// dialects
	{"unquoted externalId", `externalId eq jyoung`, cmpx("externalId", Eq, str("jyoung")), `externalId eq "jyoung"`},
	{"unquoted FamilyName", `name.FamilyName eq Employee`, cmpx("name.FamilyName", Eq, str("Employee")), `name.FamilyName eq "Employee"`},
	{"entra value path then comparison", `emails[type eq "work"].value eq "x@example.com"`,
		ValuePath{at("emails"), and(cmpx("type", Eq, str("work")), cmpx("value", Eq, str("x@example.com")))},
		`emails[type eq "work" and value eq "x@example.com"]`},
	{"entra value path with or then pr", `emails[type eq "work" or primary eq true].value pr`,
		ValuePath{at("emails"), and(or(cmpx("type", Eq, str("work")), cmpx("primary", Eq, vTrue)), pr("value"))},
		`emails[(type eq "work" or primary eq true) and value pr]`},
	{"value filter with boolean", `emails[type eq "work" and primary eq true]`,
		ValuePath{at("emails"), and(cmpx("type", Eq, str("work")), cmpx("primary", Eq, vTrue))}, ""},
	{"members value filter", `members[value eq "2819c223"]`, ValuePath{at("members"), cmpx("value", Eq, str("2819c223"))}, ""},
	{"case-insensitive keywords", `USERNAME EQ "x" AND NOT (TITLE PR) Or Active Eq TRUE`,
		or(and(cmpx("USERNAME", Eq, str("x")), Not{pr("TITLE")}), cmpx("Active", Eq, vTrue)),
		`USERNAME eq "x" and not (TITLE pr) or Active eq true`},
	{"runs of spaces and tabs", "  userName \t eq   \"x\"   and\t\ttitle   pr  ",
		and(cmpx("userName", Eq, str("x")), pr("title")), `userName eq "x" and title pr`},
	{"no space around strings and parens", `(userName eq"x")and(title pr)`,
		and(cmpx("userName", Eq, str("x")), pr("title")), `userName eq "x" and title pr`},
	{"not without space", `not(title pr)`, Not{pr("title")}, `not (title pr)`},
	{"sql injection is a string", `userName eq "x' OR 1=1 --"`, cmpx("userName", Eq, str("x' OR 1=1 --")), ""},
	{"escapes", `displayName eq "a \"b\" \\ \u00e9\t"`, cmpx("displayName", Eq, str("a \"b\" \\ é\t")), `displayName eq "a \"b\" \\ é\u0009"`},

	// precedence and associativity
	{"and binds tighter than or", `a pr or b pr and c pr`, or(pr("a"), and(pr("b"), pr("c"))), ""},
	{"and binds tighter than or, left", `a pr and b pr or c pr`, or(and(pr("a"), pr("b")), pr("c")), ""},
	{"not binds tighter than and", `not (a pr) and b pr`, and(Not{pr("a")}, pr("b")), ""},
	{"left associative", `a pr and b pr and c pr`, and(and(pr("a"), pr("b")), pr("c")), ""},
	{"right group kept", `a pr or (b pr or c pr)`, or(pr("a"), or(pr("b"), pr("c"))), ""},
	{"left group dropped", `(a pr or b pr) or c pr`, or(or(pr("a"), pr("b")), pr("c")), `a pr or b pr or c pr`},
	{"group needed", `(a pr or b pr) and c pr`, and(or(pr("a"), pr("b")), pr("c")), ""},

	// values
	{"integer", `age gt 21`, cmpx("age", Gt, num("21")), ""},
	{"float", `score le -1.5e3`, cmpx("score", Le, num("-1.5e3")), ""},
	{"boolean any case", `active eq True`, cmpx("active", Eq, vTrue), `active eq true`},
	{"false", `active ne false`, cmpx("active", Ne, Value{Kind: KindBool, Text: "false"}), ""},
	{"null", `manager eq null`, cmpx("manager", Eq, vNull), ""},
	{"quoted number is a string", `externalId eq "123"`, cmpx("externalId", Eq, str("123")), ""},
	{"leading zero is a string", `employeeNumber eq 0123`, cmpx("employeeNumber", Eq, str("0123")), `employeeNumber eq "0123"`},
	{"$ref", `members.$ref pr`, pr("members.$ref"), ""},
	{"keyword as attribute", `and eq "x"`, cmpx("and", Eq, str("x")), ""},
	{"keyword as quoted value", `userName eq "and"`, cmpx("userName", Eq, str("and")), ""},
}

// wantParse parses in, failing unless it succeeds with want.
func wantParse[T any](t *testing.T, in string, want T, parse func(string) (T, error)) T {
	t.Helper()
	got, err := parse(in)
	if err != nil {
		t.Fatalf("parse %q: %v", in, err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parse %q (-want +got):\n%s", in, d)
	}
	return got
}

func TestParse(t *testing.T) {
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			got := wantParse(t, tc.in, tc.want, Parse)
			canon := tc.canon
			if canon == "" {
				canon = tc.in
			}
			if s := got.String(); s != canon {
				t.Errorf("String() = %s, want %s", s, canon)
			}
			roundTrip(t, tc.in, got, Parse)
		})
	}
}

// wantError fails unless err is an *Error with the scimType typ and detail.
func wantError(t *testing.T, in string, got any, err error, typ, detail string) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("parse %q = %v, %v; want an *Error", in, got, err)
	}
	if fe.Type != typ {
		t.Errorf("Type = %q, want %q", fe.Type, typ)
	}
	if fe.Detail != detail {
		t.Errorf("Detail = %s\n          want %s", fe.Detail, detail)
	}
	if fe.Error() != typ+": "+fe.Detail {
		t.Errorf("Error() = %q", fe.Error())
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("(", MaxDepth+1) + "a pr" + strings.Repeat(")", MaxDepth+1)
	deepNot := strings.Repeat("not (", MaxDepth+1) + "a pr" + strings.Repeat(")", MaxDepth+1)
	for _, tc := range []struct {
		name, in, detail string
	}{
		{"missing value", `userName eq`, `1:12: expected a value after "eq"`},
		{"missing value before and", `userName eq  and title pr`, `1:14: expected a value after "eq", found "and" (quote it to compare with the word)`},
		{"missing value before paren", `(userName eq)`, `1:13: expected a value after "eq", found ")"`},
		{"unbalanced open paren", `(userName pr`, `1:13: expected ")" to close "(" at 1:1, found end of input`},
		{"unbalanced close paren", `userName pr)`, `1:12: unbalanced ")": no "(" to close`},
		{"unbalanced open bracket", `emails[type eq "work"`, `1:22: expected "]" to close "[" at 1:7, found end of input`},
		{"unbalanced close bracket", `emails[type eq "work"]]`, `1:23: unbalanced "]": no "[" to close`},
		{"bracket closes paren", `(title pr]`, `1:10: expected ")" to close "(" at 1:1, found "]"`},
		{"unknown operator", `userName like "a"`, `1:10: unknown operator "like" after "userName"`},
		{"trailing junk", `userName eq "a" junk`, `1:17: expected the end of the filter, found "junk"`},
		{"trailing string", `userName eq "a" "b"`, `1:17: expected the end of the filter, found a string`},
		{"eq with no attribute", `eq "x"`, `1:1: expected an attribute name before "eq"`},
		{"and at start", `and title pr`, `1:1: expected an attribute name before "and"`},
		{"dangling and", `title pr and`, `1:13: expected a filter after "and"`},
		{"dangling or", `title pr or `, `1:13: expected a filter after "or"`},
		{"empty", ``, `1:1: empty filter`},
		{"only spaces", " \t ", `1:4: empty filter`},
		{"empty parens", `()`, `1:2: expected a filter after "(", found ")"`},
		{"missing operator", `userName`, `1:9: expected an operator after "userName", found end of input`},
		{"string as attribute", `"userName" eq "x"`, `1:1: expected an attribute name, found a string`},
		{"unterminated string", `userName eq "abc`, `1:13: unterminated string`},
		{"bad escape", `userName eq "\q"`, `1:13: invalid string: bad escape or control character`},
		{"not without parens", `not title pr`, `1:5: expected "(" after "not", found "title"`},
		{"not at end", `not`, `1:4: expected "(" after "not", found end of input`},
		{"gt boolean", `active gt true`, `1:11: operator "gt" cannot compare with true`},
		{"co null", `title co null`, `1:10: operator "co" cannot compare with null`},
		{"nested value filter", `emails[type[value eq "x"] pr]`, `1:12: value filters cannot be nested`},
		{"value filter after sub-attribute", `name.givenName[value eq "x"]`, `1:15: a value filter cannot follow the sub-attribute "name.givenName"`},
		{"two dots", `a.b.c eq 1`, `1:3: invalid sub-attribute name "b.c"`},
		{"digit first", `1abc eq 1`, `1:1: invalid attribute name "1abc"`},
		{"urn without attribute", `urn:foo: eq 1`, `1:9: expected an attribute name after the schema URN "urn:foo:"`},
		{"bare urn prefix", `urn: eq 1`, `1:5: expected an attribute name after the schema URN "urn:"`},
		{"value path without operator", `emails[type eq "work"].value`, `1:29: expected an operator after "value", found end of input`},
		{"value path dot without name", `emails[type eq "work"]. eq "x"`, `1:24: expected a sub-attribute name after "emails[…].", found ""`},
		{"line and column", "title pr and\n  userName zz 1", `2:12: unknown operator "zz" after "userName"`},
		{"control character unquoted", "userName eq ab\x1acd", `1:15: control character '\x1a' in an unquoted value`},
		{"invalid utf-8", "userName eq \"\xff\"", `1:14: invalid UTF-8`},
		{"too long", `userName eq "` + strings.Repeat("a", MaxLength) + `"`, `1:1: input is 4110 bytes, longer than the 4096 allowed`},
		{"too deep parens", deep, `1:33: filter nests deeper than 32 levels`},
		{"too deep not", deepNot, `1:165: filter nests deeper than 32 levels`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse(tc.in)
			wantError(t, tc.in, e, err, InvalidFilter, tc.detail)
		})
	}
}

func TestParseDepthLimit(t *testing.T) {
	ok := strings.Repeat("(", MaxDepth) + "a pr" + strings.Repeat(")", MaxDepth)
	if _, err := Parse(ok); err != nil {
		t.Errorf("%d levels: %v", MaxDepth, err)
	}
	// A long flat chain is not nesting: it parses without recursion.
	long := "a pr" + strings.Repeat(" or a pr", (MaxLength-4)/8)
	e, err := Parse(long)
	if err != nil {
		t.Fatalf("long chain: %v", err)
	}
	if e.String() != long {
		t.Errorf("long chain does not print back")
	}
}

// pathCases holds every PATCH path the validator collection sends, plus
// the RFC 7644 §3.5.2 forms real IdPs send.
var pathCases = []struct {
	name string
	in   string
	want Path
}{
	{"collection members", `members`, Path{Attr: at("members")}},
	{"collection remove member", `members[value eq "6c5f1e74-9b1f-4c2d-8a47-2b1f1d0e9c11"]`,
		Path{Attr: at("members"), Filter: cmpx("value", Eq, str("6c5f1e74-9b1f-4c2d-8a47-2b1f1d0e9c11"))}},
	{"collection userName", `userName`, Path{Attr: at("userName")}},
	{"collection active", `active`, Path{Attr: at("active")}},
	{"rfc member", `members[value eq "2819c223"]`, Path{Attr: at("members"), Filter: cmpx("value", Eq, str("2819c223"))}},
	{"value path sub-attribute", `emails[type eq "work"].value`, Path{Attr: at("emails.value"), Filter: cmpx("type", Eq, str("work"))}},
	{"sub-attribute", `name.givenName`, Path{Attr: at("name.givenName")}},
	{"enterprise manager", enterprise + `:manager`, Path{Attr: at(enterprise + ":manager")}},
	{"enterprise manager.value", enterprise + `:manager.value`, Path{Attr: at(enterprise + ":manager.value")}},
	{"address street", `addresses[type eq "work"].streetAddress`, Path{Attr: at("addresses.streetAddress"), Filter: cmpx("type", Eq, str("work"))}},
	{"case-insensitive", `Members[Value EQ "x"]`, Path{Attr: at("Members"), Filter: cmpx("Value", Eq, str("x"))}},
	{"spaces around", ` emails[type eq "work" and primary eq true].value `,
		Path{Attr: at("emails.value"), Filter: and(cmpx("type", Eq, str("work")), cmpx("primary", Eq, vTrue))}},
}

func TestParsePath(t *testing.T) {
	for _, tc := range pathCases {
		t.Run(tc.name, func(t *testing.T) {
			got := wantParse(t, tc.in, tc.want, ParsePath)
			roundTrip(t, tc.in, got, ParsePath)
		})
	}
}

func TestParsePathCanonical(t *testing.T) {
	p, err := ParsePath(`Emails[TYPE Eq "work"].Value`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), `Emails[TYPE eq "work"].Value`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	if got, want := p.Attr.Canonical(), "emails.value"; got != want {
		t.Errorf("Canonical() = %s, want %s", got, want)
	}
	if got, want := at(enterprise+":Manager.Value").Canonical(), strings.ToLower(enterprise)+":manager.value"; got != want {
		t.Errorf("Canonical() = %s, want %s", got, want)
	}
}

func TestParsePathErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, detail string
	}{
		{"empty", ``, `1:1: empty path`},
		{"unbalanced open", `members[value eq "x"`, `1:21: expected "]" to close "[" at 1:8, found end of input`},
		{"unbalanced close", `members]`, `1:8: unbalanced "]": no "[" to close`},
		{"trailing junk", `members[value eq "x"] junk`, `1:23: expected the end of the path, found "junk"`},
		{"missing value", `members[value eq]`, `1:17: expected a value after "eq", found "]"`},
		{"missing sub-attribute", `emails[type eq "work"].`, `1:24: expected a sub-attribute name after "emails[…].", found ""`},
		{"filter after sub-attribute", `name.givenName[value eq "x"]`, `1:15: a value filter cannot follow the sub-attribute "name.givenName"`},
		{"starts with bracket", `[value eq "x"]`, `1:1: expected an attribute name, found "["`},
		{"space in path", `user name`, `1:6: expected the end of the path, found "name"`},
		{"empty filter", `members[]`, `1:9: expected a filter after "[", found "]"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePath(tc.in)
			wantError(t, tc.in, p, err, InvalidPath, tc.detail)
		})
	}
}

// attributeCases holds every attributes= and excludedAttributes= list the
// validator collection sends (URL-decoded), and a few more.
var attributeCases = []struct {
	name string
	in   string
	want []Path
}{
	{"collection userName,emails", `userName,emails`, []Path{{Attr: at("userName")}, {Attr: at("emails")}}},
	{"collection emails type filter", `emails[type eq "work"]`, []Path{{Attr: at("emails")}}},
	{"collection emails value filter", `emails[value eq "emailName357"]`, []Path{{Attr: at("emails")}}},
	{"collection userName", `userName`, []Path{{Attr: at("userName")}}},
	{"collection excluded members", `members`, []Path{{Attr: at("members")}}},
	{"spaces, sub-attributes, urns", ` userName , name.givenName,` + enterprise + `:department`,
		[]Path{{Attr: at("userName")}, {Attr: at("name.givenName")}, {Attr: at(enterprise + ":department")}}},
	{"comma inside a filter string", `emails[value eq "a,b"],userName`, []Path{{Attr: at("emails")}, {Attr: at("userName")}}},
	{"value filter then sub-attribute", `emails[type eq "work"].value`, []Path{{Attr: at("emails.value")}}},
	{"empty entries", `userName,,emails,`, []Path{{Attr: at("userName")}, {Attr: at("emails")}}},
	{"empty", ``, nil},
}

func TestParseAttributes(t *testing.T) {
	for _, tc := range attributeCases {
		t.Run(tc.name, func(t *testing.T) {
			wantParse(t, tc.in, tc.want, ParseAttributes)
		})
	}
}

func TestParseAttributesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, detail string
	}{
		{"unbalanced bracket", `userName,emails[type eq "work"`, `1:31: expected "]" to close "[" at 1:16, found end of input`},
		{"space inside name", `userName,user name`, `1:15: expected the end of the attribute, found "name"`},
		{"bad name", `userName,9lives`, `1:10: invalid attribute name "9lives"`},
		{"bad filter", `emails[type xx "work"]`, `1:13: unknown operator "xx" after "type"`},
		{"too long", strings.Repeat("a,", MaxLength), `1:1: input is 8192 bytes, longer than the 4096 allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseAttributes(tc.in)
			wantError(t, tc.in, p, err, InvalidFilter, tc.detail)
		})
	}
}

func TestValue(t *testing.T) {
	if f, ok := num("-1.5e3").Float(); !ok || f != -1500 {
		t.Errorf("Float() = %v, %v", f, ok)
	}
	if _, ok := str("x").Float(); ok {
		t.Error("string Float() ok")
	}
	tm, ok := date("2015-10-10T14:38:21.8617979-07:00").Time()
	if !ok || tm.UTC().Hour() != 21 {
		t.Errorf("Time() = %v, %v", tm, ok)
	}
	for _, tc := range []struct {
		v    Value
		want any
	}{{str("a"), "a"}, {num("2"), 2.0}, {vTrue, true}, {vNull, nil}} {
		if got := tc.v.Any(); got != tc.want {
			t.Errorf("%v.Any() = %v, want %v", tc.v, got, tc.want)
		}
	}
	if KindDateTime.String() != "dateTime" || ValueKind(99).String() != "ValueKind(99)" {
		t.Error("ValueKind.String")
	}
}

func TestCanonicalAtBounds(t *testing.T) {
	// An unquoted value gains its quotes: an input at MaxLength prints 2 bytes
	// longer, and the reparse is refused by the bound, not mis-parsed.
	in := "userName eq " + strings.Repeat("a", MaxLength-len("userName eq "))
	e, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.String()) != MaxLength+2 {
		t.Fatalf("canonical form is %d bytes", len(e.String()))
	}
	if _, err := Parse(e.String()); !boundsError(err) {
		t.Errorf("reparse: %v, want the length refusal", err)
	}
}
