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

func TestSharedFieldsLeftReturnsWhatItCouldNotIntern(t *testing.T) {
	var s Shared
	for i := range internLimit {
		s.fields[2].Intern("name " + strconv.Itoa(i)) // display names full
	}
	row := "Sales|Pat Doe|Lead"
	dept, display, title := row[:5], row[6:13], row[14:]
	var given, family, manager, cost string
	left := s.FieldsLeft(nil, &given, &family, &display, &title, &dept, &manager, &cost)
	if len(left) != 1 || left[0] != &display {
		t.Fatalf("left = %v, want the display name only", left)
	}
	if display != "Pat Doe" || unsafe.StringData(display) != unsafe.StringData(row[6:]) {
		t.Errorf("the display name was changed: %q", display)
	}
	if dept != "Sales" || title != "Lead" || unsafe.StringData(dept) == unsafe.StringData(row) {
		t.Errorf("department %q and title %q not interned as copies of their own", dept, title)
	}
	if v, ok := s.fields[2].Known("name 7"); !ok || v != "name 7" {
		t.Errorf("Known of a kept value = %q, %v", v, ok)
	}
	if _, ok := s.fields[2].Known(""); !ok {
		t.Error("Known(\"\") = false")
	}
}
