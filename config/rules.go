package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/rules"
)

// SourceRules are a source's expressions, compiled and type-checked at
// load (compileRules).
type SourceRules struct {
	// Map holds sources[].map by directory attribute.
	Map map[string]*rules.Rule
	// When is sources[].scope.when, nil when not given.
	When *rules.Rule
	// Attrs are the raw attributes of the source's users the rules read;
	// the connector keeps them (connectors.Options.Attrs).
	Attrs *connectors.Selection
}

// compileRules compiles every expression of the configuration and reports
// each problem with its field path and its place in the expression
// ("licenses[0].when: 1:8: undeclared reference to 'departmnt'").
func (c *Config) compileRules(d *decoder) {
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		s.Rules = SourceRules{}
		for _, attr := range slices.Sorted(maps.Keys(s.Map)) {
			fp := p + ".map." + attr
			if !slices.Contains(rules.Attributes, attr) {
				d.fail(fp, "unknown attribute (known: %s)", strings.Join(rules.Attributes, ", "))
				continue
			}
			if r := compileOne(d, fp, s.Map[attr], func(e string) (*rules.Rule, []rules.Issue) { return rules.CompileUser(e, rules.String) }); r != nil {
				if s.Rules.Map == nil {
					s.Rules.Map = map[string]*rules.Rule{}
				}
				s.Rules.Map[attr] = r
			}
		}
		if s.Scope.When != "" {
			s.Rules.When = compileOne(d, p+".scope.when", s.Scope.When, func(e string) (*rules.Rule, []rules.Issue) { return rules.CompileUser(e, rules.Bool) })
		}
		all := []*rules.Rule{s.Rules.When}
		for _, r := range s.Rules.Map {
			all = append(all, r)
		}
		s.Rules.Attrs = rules.Selection(all...)
	}
	for i := range c.Licenses {
		l := &c.Licenses[i]
		l.WhenRule = nil
		if l.When != "" {
			l.WhenRule = compileOne(d, fmt.Sprintf("licenses[%d].when", i), l.When, rules.CompilePerson)
		}
	}
}

func compileOne(d *decoder, path, expr string, compile func(string) (*rules.Rule, []rules.Issue)) *rules.Rule {
	r, issues := compile(expr)
	for _, iss := range issues {
		d.fail(path, "%s", iss.Error())
	}
	if len(issues) > 0 {
		return nil
	}
	return r
}
