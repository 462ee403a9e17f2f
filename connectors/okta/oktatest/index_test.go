package oktatest

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestDeltaIndex checks that a delta search answers what a walk of every
// user answers, page by page, while users change, are deleted, added one by
// one or in bulk, and the clock moves either way.
func TestDeltaIndex(t *testing.T) {
	s := New(t)
	ids := s.AddPeople(50)
	rng := rand.New(rand.NewPCG(3, 4))
	g := s.AddGroup(Group{Name: "G"})
	for step := range 40 {
		s.Advance(time.Duration(rng.IntN(3000)-1000) * time.Millisecond)
		switch rng.IntN(5) {
		case 0:
			id := ids[rng.IntN(len(ids))]
			if _, ok := s.User(id); ok {
				s.DeleteUser(id)
			}
		case 1:
			ids = append(ids, s.AddPerson("p"+strconv.Itoa(step)+"@example.com", "P", "Q", Statuses[rng.IntN(len(Statuses))]))
		case 2:
			ids = append(ids, s.AddPeopleFunc(3, func(i int) Person { return Person{Login: "b" + strconv.Itoa(step*3+i)} })...)
		default:
			for range 4 {
				if id := ids[rng.IntN(len(ids))]; func() bool { _, ok := s.User(id); return ok }() {
					s.SetProfile(id, "title", strconv.Itoa(step))
					s.AddMember(g.ID, id)
				}
			}
		}
		since := s.Now().Add(-time.Duration(rng.IntN(4000)) * time.Millisecond)
		var want []string
		for _, id := range slices.Sorted(slices.Values(ids)) {
			if u, ok := s.User(id); ok && u.LastUpdated.After(since) && !slices.Contains(want, id) {
				want = append(want, id)
			}
		}
		for _, param := range []string{"search", "filter"} {
			q := url.Values{param: {`lastUpdated gt "` + since.UTC().Format(time.RFC3339Nano) + `"`}, "limit": {"7"}}
			if param == "filter" {
				q.Set("filter", q.Get("filter")+` and status eq "`+StatusActive+`"`)
			}
			var got []string
			for path := "/api/v1/users"; ; {
				resp, page := get(t, s, s.Token, path, q)
				for _, p := range page {
					got = append(got, p["id"].(string))
				}
				next := nextLink(t, resp)
				if next == "" {
					break
				}
				u, _ := url.Parse(next)
				path, q = u.Path, u.Query()
			}
			w := want
			if param == "filter" {
				w = slices.DeleteFunc(slices.Clone(want), func(id string) bool { u, _ := s.User(id); return u.Status != StatusActive })
			}
			if !slices.Equal(got, w) {
				t.Fatalf("step %d: %s since %v = %v, want %v", step, param, since, got, w)
			}
		}
	}
}
