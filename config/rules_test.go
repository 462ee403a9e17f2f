package config_test

import (
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

// Every expression is compiled and type-checked at load; each problem is
// reported with its field path and its place in the expression, all at
// once.
func TestRuleProblems(t *testing.T) {
	src := func(extra string) string {
		return "directory: {dsn: x.db}\nsources:\n  - name: hr\n    type: fake\n    config: {path: org.json}\n" + extra
	}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"valid rules", src("    map:\n      department: 'has(user.profile.division) ? user.profile.division : user.profile.department'\n" +
			"      cost_center: 'user.profile.countryCode + \"-\" + user.profile.division'\n" +
			"    scope: {when: 'user.profile.userType != \"Contractor\"'}\n" +
			"licenses:\n  - name: eng-eu\n    seats: 500\n    when: '\"hr/Engineering\" in person.groups && person.cost_center.startsWith(\"FR-\")'\n"), nil},
		{"when alone is enough", src("licenses:\n  - {name: sales, when: 'person.department == \"Sales\"'}\n"), nil},
		{"when with groups", src("licenses:\n  - {name: sales, groups: [Sales], when: 'person.title != \"\"'}\n"), nil},
		{"license typo", src("licenses:\n  - {name: pro, when: 'person.departmnt == \"Sales\"'}\n"),
			[]string{"licenses[0].when: 1:7: undefined field 'departmnt'"}},
		{"undeclared variable", src("licenses:\n  - {name: pro, when: 'departmnt == \"Sales\"'}\n"),
			[]string{"licenses[0].when: 1:1: undeclared reference to 'departmnt'"}},
		{"user is not declared for licenses", src("licenses:\n  - {name: pro, when: 'user.x == \"y\"'}\n"),
			[]string{"licenses[0].when: 1:1: undeclared reference to 'user'"}},
		{"person is not declared for scope", src("    scope: {when: 'person.department == \"x\"'}\n"),
			[]string{"sources[0].scope.when: 1:1: undeclared reference to 'person'"}},
		{"scope not bool", src("    scope: {when: 'user.profile.division + \"x\"'}\n"),
			[]string{"sources[0].scope.when: 1:1: yields string, want bool"}},
		{"map not string", src("    map: {title: 'user.a == \"b\"'}\n"), []string{"sources[0].map.title: 1:1: yields bool, want string"}},
		{"map unknown attribute", src("    map: {country: 'user.country'}\n"), []string{"sources[0].map.country: unknown attribute"}},
		{"map syntax", src("    map: {title: 'user.a +'}\n"), []string{"sources[0].map.title: 1:9: Syntax error"}},
		{"map not a mapping", src("    map: [a]\n"), []string{"sources[0].map: must be a mapping, got a list"}},
		{"map twice", src("    map:\n      title: 'user.a'\n      title: 'user.b'\n"), []string{"sources[0].map.title: given twice"}},
		{"empty when", src("licenses:\n  - {name: pro, when: ' '}\n"), []string{"licenses[0].when: empty expression"}},
		{"all at once", src("    map: {title: 'user.a +', department: 'user.b == 1'}\n    scope: {when: 'nope'}\n" +
			"licenses:\n  - {name: a, when: 'person.x'}\n  - name: b\n    groups: [g]\n    when: |\n      person.y == 1 ||\n        person.z\n"),
			[]string{"sources[0].map.department: 1:1: yields bool, want string", "sources[0].map.title: 1:9: Syntax error",
				"sources[0].scope.when: 1:1: undeclared reference to 'nope'", "licenses[0].when: 1:7: undefined field 'x'",
				"licenses[1].when: 1:7: undefined field 'y'", "licenses[1].when: 2:9: undefined field 'z'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParse(t, tt.doc, tt.want)
		})
	}
}

// The compiled rules reach the connector options: the raw attributes the
// rules read, and nothing for a source without rules.
func TestRulesCompiled(t *testing.T) {
	cfg := mustParse(t, "directory: {dsn: x.db}\nsources:\n  - name: hr\n    type: fake\n    config: {path: org.json}\n"+
		"    map: {department: 'user.profile.division'}\n    scope: {when: 'user.status == \"ACTIVE\"'}\n"+
		"  - {name: two, type: fake, config: {path: org.json}}\n"+
		"licenses:\n  - {name: pro, when: 'person.department == \"Sales\"'}\n", nil)
	s := cfg.Sources[0]
	if s.Rules.Map["department"] == nil || s.Rules.When == nil || cfg.Licenses[0].WhenRule == nil {
		t.Fatalf("rules not compiled: %+v, %+v", s.Rules, cfg.Licenses[0])
	}
	got := cfg.ConnectorOptions("hr").Attrs.Keep(func() map[string]any {
		return map[string]any{"status": "ACTIVE", "id": "x", "profile": map[string]any{"division": "S", "other": "o"}}
	})
	if want := `{"profile":{"division":"S"},"status":"ACTIVE"}`; got != want {
		t.Errorf("kept %s, want %s", got, want)
	}
	if a := cfg.ConnectorOptions("two").Attrs; a != (*connectors.Selection)(nil) {
		t.Errorf("source without rules keeps %+v", a)
	}
}
