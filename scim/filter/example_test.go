package filter_test

import (
	"errors"
	"fmt"

	"github.com/learnsync/learnsync/scim/filter"
)

func ExampleParse() {
	// Entra's form, with an unquoted value and odd casing.
	e, err := filter.Parse(`Emails[Type EQ work].Value eq "babs@example.com"`)
	if err != nil {
		panic(err)
	}
	fmt.Println(e)
	vp := e.(filter.ValuePath)
	fmt.Println(vp.Path.Canonical())
	// Output:
	// Emails[Type eq "work" and Value eq "babs@example.com"]
	// emails
}

func ExampleParse_error() {
	_, err := filter.Parse(`userName eq`)
	var fe *filter.Error
	if errors.As(err, &fe) {
		fmt.Println(fe.Type, fe.Detail)
	}
	// Output:
	// invalidFilter 1:12: expected a value after "eq"
}

func ExampleMatch() {
	user := map[string]any{
		"userName": "BJensen",
		"emails": []any{
			map[string]any{"type": "work", "value": "bjensen@example.com"},
		},
	}
	e, _ := filter.Parse(`userName eq "bjensen" and emails[type eq "work"]`)
	fmt.Println(filter.Match(e, user))
	// Output: true
}

func ExampleParsePath() {
	p, _ := filter.ParsePath(`addresses[type eq "work"].streetAddress`)
	fmt.Println(p.Attr.Name, p.Filter, p.Attr.Sub)
	// Output: addresses type eq "work" streetAddress
}

func ExampleParseAttributes() {
	paths, _ := filter.ParseAttributes(`userName,emails[type eq "work"]`)
	for _, p := range paths {
		fmt.Println(p)
	}
	// Output:
	// userName
	// emails
}
