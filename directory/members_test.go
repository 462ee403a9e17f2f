package directory

import (
	"slices"
	"testing"
)

func TestMembersEncodingRoundTrips(t *testing.T) {
	for _, ids := range [][]string{
		nil,
		{"00u1"},
		{"a", "b", "c"},
		{`back\slash`, "new\nline", `\n`, `\`, "", "end\\"},
	} {
		var got []string
		decodeMembers(encodeMembers(ids), func(id string) { got = append(got, id) })
		want := ids
		if len(want) == 1 && want[0] == "" {
			want = nil
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("round trip of %q = %q", ids, got)
		}
	}
}

func TestPackedColumnsRoundTrip(t *testing.T) { eachBackend(t, testPackedColumnsRoundTrip) }

func testPackedColumnsRoundTrip(t *testing.T) {
	ctx := t.Context()
	s := openFresh(t)
	values := []string{"", "a:b", "12:34", "Zoë O'Brien 👩‍💻", "line\nbreak", ":"}
	var got [6]string
	var packed string
	q := "SELECT " + pack("CAST(?1 AS TEXT)", "CAST(?2 AS TEXT)", "CAST(?3 AS TEXT)", "CAST(?4 AS TEXT)", "CAST(?5 AS TEXT)", "CAST(?6 AS TEXT)")
	args := []any{values[0], values[1], values[2], values[3], values[4], values[5]}
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&packed); err != nil {
		t.Fatal(err)
	}
	if err := unpack(packed, &got[0], &got[1], &got[2], &got[3], &got[4], &got[5]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[:], values) {
		t.Errorf("unpack(pack(%q)) = %q", values, got)
	}
	if err := unpack("3:ab", &got[0]); err == nil {
		t.Error("a short value unpacked")
	}
	if err := unpack("1:ab", &got[0]); err == nil {
		t.Error("left-over bytes accepted")
	}
}
