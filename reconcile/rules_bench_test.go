package reconcile

import (
	"fmt"
	"testing"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/rules"
)

// BenchmarkDesireRules is Desire over 100k users without and with the rules
// of cmd/learnsync's BenchmarkRules: what the rules cost the planner.
//
//	go test -run '^$' -bench DesireRules -count 3 ./reconcile/
func BenchmarkDesireRules(b *testing.B) {
	m := NewMirror("hr")
	depts := []string{"Engineering", "Sales", "Legal"}
	for i := range 100_000 {
		id := fmt.Sprintf("e%06d", i)
		dept := depts[i%3]
		m.Users[id] = &connectors.User{ExternalID: id, Email: id + "@x.test", Department: dept, Title: "Engineer",
			EmployeeNumber: fmt.Sprintf("%06d", i), Status: connectors.StatusActive,
			Attrs: fmt.Sprintf(`{"department":%q,"employee_number":"%06d","title":"Engineer"}`, dept, i)}
	}
	mirrors := map[string]*Mirror{"hr": m}
	compile := func(expr string, kind rules.Kind, person bool) *rules.Rule {
		var r *rules.Rule
		var iss []rules.Issue
		if person {
			r, iss = rules.CompilePerson(expr)
		} else {
			r, iss = rules.CompileUser(expr, kind)
		}
		if iss != nil {
			b.Fatal(iss)
		}
		return r
	}
	plain := Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}},
		Licenses: []LicenseRule{{Name: "basic", AllActive: true}, {Name: "pro", AllActive: true}}}
	withRules := plain
	withRules.Sources = []SourceRules{{Name: "hr",
		Map:  map[string]*rules.Rule{"cost_center": compile(`user.department + "-" + user.employee_number.substring(0, 2)`, rules.String, false)},
		When: compile(`user.title != "Contractor"`, rules.Bool, false)}}
	withRules.Licenses = []LicenseRule{
		{Name: "basic", AllActive: true, When: compile(`"hr" in person.sources`, rules.Bool, true)},
		{Name: "pro", AllActive: true, When: compile(`person.department != "" && person.cost_center.contains("-")`, rules.Bool, true)},
	}
	for _, v := range []struct {
		name string
		r    Rules
	}{{"plain", plain}, {"rules", withRules}} {
		b.Run(v.name, func(b *testing.B) {
			for range b.N {
				d := Desire(v.r, mirrors, nil, nil, t0)
				if len(d.People) != 100_000 {
					b.Fatalf("%d people", len(d.People))
				}
			}
		})
	}
}
