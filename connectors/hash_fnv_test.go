package connectors

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
)

// The hashes are stored with every mirrored row: the in-place FNV-1a must
// give what hash/fnv gave, or every stored hash would differ after an
// upgrade.
func TestHashesAreFNV(t *testing.T) {
	field := func(h interface{ Write([]byte) (int, error) }, s string) {
		var n [8]byte
		for i := range n {
			n[i] = byte(uint64(len(s)) >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(s))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		return string(b)
	}
	for range 500 {
		u := User{ExternalID: str(), UserName: str(), Email: str(), GivenName: str(), FamilyName: str(), DisplayName: str(),
			Title: str(), Department: str(), EmployeeNumber: str(), Manager: str(), CostCenter: str(), Status: StatusActive}
		if rnd.IntN(2) == 0 {
			u.Attrs = str()
		}
		h := fnv.New64a()
		for _, s := range []string{u.ExternalID, u.UserName, u.Email, u.GivenName, u.FamilyName, u.DisplayName,
			u.Title, u.Department, u.EmployeeNumber, u.Manager, u.CostCenter, string(u.Status)} {
			field(h, s)
		}
		if u.Attrs != "" {
			field(h, u.Attrs)
		}
		if want := nonZero(h.Sum64()); UserHash(&u) != want {
			t.Fatalf("UserHash(%+v) = %d, hash/fnv gives %d", u, UserHash(&u), want)
		}

		g := Group{ExternalID: str(), Name: str(), Description: str()}
		members := []string{str(), str(), str()}
		n := uint64(len(members))
		gh := fnv.New64a()
		for _, s := range []string{g.ExternalID, g.Name, g.Description} {
			field(gh, s)
		}
		sum := gh.Sum64()
		for _, id := range members {
			m := fnv.New64a()
			m.Write([]byte(id))
			x := m.Sum64()
			x ^= x >> 33
			x *= 0xff51afd7ed558ccd
			x ^= x >> 33
			sum += x
		}
		if want := nonZero(sum ^ (n * 0x9e3779b97f4a7c15)); GroupHash(&g, slices.Values(members)) != want {
			t.Fatalf("GroupHash = %d, hash/fnv gives %d", GroupHash(&g, slices.Values(members)), want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { UserHash(&User{ExternalID: "u1", Email: "a@example.com"}) }); n != 0 {
		t.Errorf("UserHash allocates %v times", n)
	}
}
