package reconcile

import (
	"fmt"
	"testing"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/rules"
	"github.com/learnsync/learnsync/rules/rulestest"
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
	plain := Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}},
		Licenses: []LicenseRule{{Name: "basic", AllActive: true}, {Name: "pro", AllActive: true}}}
	withRules := plain
	withRules.Sources = []SourceRules{{Name: "hr",
		Map:  map[string]*rules.Rule{"cost_center": rulestest.User(b, `user.department + "-" + user.employee_number.substring(0, 2)`, rules.String)},
		When: rulestest.User(b, `user.title != "Contractor"`, rules.Bool)}}
	withRules.Licenses = []LicenseRule{
		{Name: "basic", AllActive: true, When: rulestest.Person(b, `"hr" in person.sources`)},
		{Name: "pro", AllActive: true, When: rulestest.Person(b, `person.department != "" && person.cost_center.contains("-")`)},
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
