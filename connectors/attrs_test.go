package connectors

import (
	"encoding/json"
	"testing"
)

// Keep writes strings as encoding/json does (but for its HTML escaping),
// and the same object always gives the same text.
func TestKeepEncoding(t *testing.T) {
	sel := &Selection{}
	sel.Add([]string{"s"})
	sel.Add([]string{"n", "x"})
	sel.Add([]string{"whole"})
	for _, s := range []string{"plain", `q"uote\back`, "tab\tnl\nret\r", "\x01\x1f", "bad\xffutf8", "é😀", "\u2028"} {
		raw := map[string]any{"s": s, "n": map[string]any{"x": 1.5, "y": "no"}, "whole": []any{"a", nil, true}, "other": 1}
		got := sel.Keep(func() map[string]any { return raw })
		want, _ := json.Marshal(map[string]any{"n": map[string]any{"x": 1.5}, "s": s, "whole": []any{"a", nil, true}})
		var g, w any
		if err := json.Unmarshal([]byte(got), &g); err != nil {
			t.Fatalf("%q: Keep wrote invalid JSON %s: %v", s, got, err)
		}
		_ = json.Unmarshal(want, &w)
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("%q: Keep = %s, want %s", s, got, want)
		}
	}
	whole := &Selection{All: true}
	if got := whole.Keep(func() map[string]any { return map[string]any{"b": 1, "a": "x"} }); got != `{"a":"x","b":1}` {
		t.Errorf("All keeps %s", got)
	}
	if got := sel.Keep(func() map[string]any { return map[string]any{"n": "not an object"} }); got != `{"n":{}}` {
		t.Errorf("a scalar where an object was selected keeps %s", got)
	}
}
