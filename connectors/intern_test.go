package connectors

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestInternerSharesOneCopy(t *testing.T) {
	var in Interner
	whole := "Finance,Operations"
	a := in.Intern(whole[:7])
	b := in.Intern(strings.Clone("Finance"))
	if a != "Finance" || b != "Finance" {
		t.Fatalf("Intern = %q, %q; want Finance twice", a, b)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("the two values are separate copies, want one")
	}
	if unsafe.StringData(a) == unsafe.StringData(whole) {
		t.Error("the kept copy is part of the larger string it came from")
	}
	if got := in.Intern(""); got != "" {
		t.Errorf("Intern(\"\") = %q", got)
	}
}

func TestInternerStopsAtItsLimit(t *testing.T) {
	var in Interner
	for i := range internLimit {
		in.Intern(strconv.Itoa(i))
	}
	s := strconv.Itoa(internLimit)
	if got := in.Intern(s); got != s || unsafe.StringData(got) != unsafe.StringData(s) {
		t.Errorf("a value past the limit was copied: %q", got)
	}
	if len(in.m) != internLimit {
		t.Errorf("the table holds %d values, want %d", len(in.m), internLimit)
	}
}

func TestSharedInternsTheRepeatedFields(t *testing.T) {
	var s Shared
	u1 := User{ExternalID: "e1", Department: strings.Clone("Sales"), Title: strings.Clone("Lead")}
	u2 := User{ExternalID: "e2", Department: strings.Clone("Sales"), Title: strings.Clone("Lead")}
	s.User(&u1)
	s.User(&u2)
	if unsafe.StringData(u1.Department) != unsafe.StringData(u2.Department) || unsafe.StringData(u1.Title) != unsafe.StringData(u2.Title) {
		t.Error("department and title are not shared")
	}
	if u1.ExternalID != "e1" || u2.Department != "Sales" {
		t.Errorf("values changed: %+v %+v", u1, u2)
	}
}
