package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/connectors"
)

func okta() map[string]any {
	m, err := ParseAttrs(`{"status":"ACTIVE","profile":{"division":"Sales","countryCode":"FR","userType":"Employee","level":3,"tags":["a","b"]}}`)
	if err != nil {
		panic(err)
	}
	return m
}

func TestUserRules(t *testing.T) {
	tests := []struct {
		name, expr string
		kind       Kind
		want       any
		err        string
	}{
		{"select", `user.profile.division`, String, "Sales", ""},
		{"has", `has(user.profile.division) ? user.profile.division : "none"`, String, "Sales", ""},
		{"has missing", `has(user.profile.dept) ? user.profile.dept : "none"`, String, "none", ""},
		{"concat", `user.profile.countryCode + "-" + user.profile.division`, String, "FR-Sales", ""},
		{"int compare", `user.profile.level == 3`, Bool, true, ""},
		{"list in", `"b" in user.profile.tags`, Bool, true, ""},
		{"strings ext", `user.profile.division.lowerAscii()`, String, "sales", ""},
		{"scope", `user.profile.userType != "Contractor"`, Bool, true, ""},
		{"status", `user.status == "ACTIVE"`, Bool, true, ""},
		{"missing key", `user.profile.nope == "x"`, Bool, false, "no such key: nope"},
		{"wrong type at run time", `user.profile.level`, String, "", "yields int, want string"},
		{"not bool at run time", `user.profile.division`, Bool, false, "yields string, want bool"},
		{"cost limit", `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a+b+c+d+e > 0)))))`, Bool, false, ErrCost.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, iss := CompileUser(tt.expr, tt.kind)
			if iss != nil {
				t.Fatalf("compile: %v", iss)
			}
			var got any
			var err error
			if tt.kind == String {
				got, err = r.UserString(okta())
			} else {
				got, err = r.UserBool(okta())
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("= %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCostLimitIsErrCost(t *testing.T) {
	r, iss := CompileUser(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a+b+c+d+e > 0)))))`, Bool)
	if iss != nil {
		t.Fatal(iss)
	}
	if _, err := r.UserBool(okta()); !errors.Is(err, ErrCost) {
		t.Errorf("err = %v, want ErrCost", err)
	}
}

func TestPersonRules(t *testing.T) {
	p := &Person{Department: "Engineering", CostCenter: "FR-42", Email: "a@x.test",
		Groups: []string{"okta/Engineering"}, Sources: []string{"okta"}}
	tests := []struct {
		expr string
		want bool
	}{
		{`person.department == "Engineering"`, true},
		{`"okta/Engineering" in person.groups && person.cost_center.startsWith("FR-")`, true},
		{`person.cost_center.startsWith("DE-")`, false},
		{`"entra" in person.sources`, false},
		{`person.email.endsWith("@x.test")`, true},
	}
	for _, tt := range tests {
		r, iss := CompilePerson(tt.expr)
		if iss != nil {
			t.Fatalf("%s: %v", tt.expr, iss)
		}
		got, err := r.PersonBool(p)
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}

func TestCompileIssues(t *testing.T) {
	tests := []struct {
		name, expr string
		person     bool
		kind       Kind
		want       []string
	}{
		{"undeclared", `departmnt == "Sales"`, true, Bool, []string{"1:1: undeclared reference to 'departmnt'"}},
		{"unknown field", `person.departmnt == "Sales"`, true, Bool, []string{"1:7: undefined field 'departmnt'"}},
		{"syntax", `user.profile.division ==`, false, Bool, []string{"1:25: Syntax error: mismatched input '<EOF>' expecting"}},
		{"not bool", `person.department`, true, Bool, []string{"1:1: yields string, want bool"}},
		{"not string", `user.profile.x == "y"`, false, String, []string{"1:1: yields bool, want string"}},
		{"two problems", `person.a == person.b`, true, Bool, []string{"1:7: undefined field 'a'", "1:19: undefined field 'b'"}},
		{"empty", `  `, false, Bool, []string{"empty expression"}},
		{"too long", strings.Repeat("a", maxExprLen+1), false, Bool, []string{"expression longer than"}},
		{"groups second line", "person.groups.size() > 0 &&\n  person.nope", true, Bool, []string{"2:9: undefined field 'nope'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var iss []Issue
			if tt.person {
				_, iss = CompilePerson(tt.expr)
			} else {
				_, iss = CompileUser(tt.expr, tt.kind)
			}
			if len(iss) != len(tt.want) {
				t.Fatalf("issues = %v, want %d", iss, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(iss[i].Error(), w) {
					t.Errorf("issue %d = %q, want prefix %q", i, iss[i].Error(), w)
				}
			}
		})
	}
}

func TestSelection(t *testing.T) {
	var rs []*Rule
	for _, e := range []string{
		`has(user.profile.division) ? user.profile.division : user.profile["department"]`,
		`user.status == "ACTIVE" && "x" in user.groups_list`,
		`user.onPremisesExtensionAttributes.extensionAttribute1.startsWith("C")`,
		`user.profile.division.size() > 0`,
	} {
		r, iss := CompileUser(e, Bool)
		if iss != nil {
			r, iss = CompileUser(e, String)
		}
		if iss != nil {
			t.Fatalf("%s: %v", e, iss)
		}
		rs = append(rs, r)
	}
	sel := Selection(rs...)
	raw := map[string]any{
		"id": "1", "status": "ACTIVE", "groups_list": []any{"x"},
		"profile":                       map[string]any{"division": "Sales", "department": "S", "secret": "no"},
		"onPremisesExtensionAttributes": map[string]any{"extensionAttribute1": "C1", "extensionAttribute2": "no"},
	}
	got := sel.Keep(func() map[string]any { return raw })
	want := `{"groups_list":["x"],"onPremisesExtensionAttributes":{"extensionAttribute1":"C1"},"profile":{"department":"S","division":"Sales"},"status":"ACTIVE"}`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Keep (-want +got):\n%s", diff)
	}
	if Selection() != nil {
		t.Error("Selection() of no rules is not nil")
	}
	whole, _ := CompileUser(`size(user) > 0`, Bool)
	if s := Selection(whole); s == nil || !s.All {
		t.Errorf("a rule reading user whole keeps %+v, want All", s)
	}
	var none *connectors.Selection
	if none.Keep(func() map[string]any { panic("built") }) != "" {
		t.Error("nil selection keeps something")
	}
}

func TestReadsGroups(t *testing.T) {
	a, _ := CompilePerson(`"okta/x" in person.groups`)
	b, _ := CompilePerson(`person.department == "x"`)
	if !a.ReadsGroups() || b.ReadsGroups() {
		t.Errorf("ReadsGroups = %v, %v; want true, false", a.ReadsGroups(), b.ReadsGroups())
	}
}

// Optional selection reads an attribute that may be missing without an
// error, and the attribute is kept for it.
func TestOptionalSelect(t *testing.T) {
	r, iss := CompileUser(`user.?profile.?division.orValue("none")`, String)
	if iss != nil {
		t.Fatal(iss)
	}
	for attrs, want := range map[string]string{`{"profile":{"division":"Sales"}}`: "Sales", `{"profile":{}}`: "none", `{}`: "none"} {
		m, _ := ParseAttrs(attrs)
		if got, err := r.UserString(m); err != nil || got != want {
			t.Errorf("%s: = %q, %v; want %q", attrs, got, err, want)
		}
	}
	kept := Selection(r).Keep(func() map[string]any {
		return map[string]any{"profile": map[string]any{"division": "S", "x": 1}, "y": 2}
	})
	if kept != `{"profile":{"division":"S"}}` {
		t.Errorf("kept %s", kept)
	}
}

// Expressions whose static cost is bounded run without cost tracking;
// the others keep the runtime limit.
func TestBoundedCost(t *testing.T) {
	for expr, want := range map[string]bool{
		`user.title != "Contractor"`:                                             true,
		`user.department + "-" + user.employee_number.substring(0, 2)`:           true,
		`user.list.all(x, user.list.all(y, user.list.all(z, x == y && y == z)))`: false,
	} {
		env, _ := userEnv()
		ast, iss := env.Compile(expr)
		if iss != nil && iss.Err() != nil {
			t.Fatal(iss.Err())
		}
		if got := boundedCost(env, ast, sizeBound{max: MaxAttrsBytes}); got != want {
			t.Errorf("%s: bounded = %v, want %v", expr, got, want)
		}
	}
	env, _ := personEnv()
	for expr, want := range map[string]bool{`person.department == "Sales"`: true, `"x" in person.groups`: false} {
		ast, _ := env.Compile(expr)
		if got := boundedCost(env, ast, sizeBound{max: MaxFieldBytes, unboundedLists: true}); got != want {
			t.Errorf("%s: bounded = %v, want %v", expr, got, want)
		}
	}
}
