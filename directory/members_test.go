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
