package reconcile

import (
	"strings"
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

func TestBadDataIsCleanedOrSkippedAndReported(t *testing.T) {
	long := strings.Repeat("é", 6000) // 12 kB
	users := []connectors.User{
		user("ok", "ok@x.io"),
		user("bad-utf8", "utf8@x.io", func(u *connectors.User) { u.DisplayName = "Ren\xe9e" }),
		user("ctrl", "ctrl@x.io", func(u *connectors.User) { u.Title = "Boss\x00\x1b[31m" }),
		user("long", "long@x.io", func(u *connectors.User) { u.FamilyName = long }),
		user("bad-email", "bad\xffmail@x.io"),
		user("bad\x00id", "id@x.io"),
		user("", "noid@x.io"),
	}
	s := (&snapshot{users: users}).group("g\x01", "Evil").group("g2", "Eng\x07ineering", "ok")
	s.groups[1].Description = "line one\nline two"
	m := map[string]*Mirror{"hr": mirrorOf("hr", s)}
	d := Desire(hrRules(), m, nil, nil, t0)

	if len(d.People) != 4 {
		t.Fatalf("people = %d, want ok, utf8, ctrl and long", len(d.People))
	}
	if got := d.People["utf8@x.io"].DisplayName; got != "Ren\uFFFDe" {
		t.Errorf("invalid UTF-8 display name = %q", got)
	}
	if got := d.People["ctrl@x.io"].Title; got != "Boss[31m" {
		t.Errorf("title with control characters = %q", got)
	}
	if got := d.People["long@x.io"].FamilyName; len(got) > MaxFieldBytes || !strings.HasPrefix(long, got) || len(got) < MaxFieldBytes-1 {
		t.Errorf("10 kB name cut to %d bytes", len(got))
	}
	g := d.Groups[GroupRef{"hr", "g2"}]
	if g == nil || g.Name != "Engineering" || g.Description != "line one\nline two" {
		t.Errorf("group = %+v", g)
	}
	if _, ok := d.Groups[GroupRef{"hr", "g\x01"}]; ok {
		t.Error("a group with a control character in its id was kept")
	}
	var text []string
	for _, p := range d.Problems {
		text = append(text, p.String())
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{
		"user bad-utf8: display_name: invalid UTF-8 replaced",
		"user ctrl: title: control characters removed",
		"user long: family_name: cut from 12000 to 1024 bytes",
		"user bad-email: email to match on is not usable (invalid UTF-8 replaced): skipped",
		`user "bad\x00id": external id is empty`,
		`user "": external id is empty`,
		`group "g\x01": external id`,
		"group g2: control characters removed",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}

func TestHugeGroup(t *testing.T) {
	const n = 200_000
	users := make([]connectors.User, 0, n)
	ids := make([]string, 0, n)
	for i := range n {
		id := "u" + itoa(i)
		users = append(users, connectors.User{ExternalID: id, Email: id + "@x.io", Status: connectors.StatusActive})
		ids = append(ids, id)
	}
	s := (&snapshot{users: users}).group("all", "Everyone", ids...)
	m := map[string]*Mirror{"hr": mirrorOf("hr", s)}
	p := Diff(Desire(hrRules(), m, nil, nil, t0), NewState())
	if len(p.Members) != n {
		t.Fatalf("memberships = %d, want %d", len(p.Members), n)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}
