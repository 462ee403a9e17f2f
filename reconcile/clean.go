package reconcile

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFieldBytes bounds a profile attribute or group name. Longer values are
// cut (at a character boundary) and reported: they are almost always a
// broken export, and the learning platform has limits of its own.
const MaxFieldBytes = 1024

// cleanText makes a value from a source safe to store and show: invalid
// UTF-8 becomes U+FFFD, control characters go, and the result is trimmed and
// cut to MaxFieldBytes. It says what it did, or "" when nothing was needed.
func cleanText(s string) (string, string) { return clean(s, false) }

// cleanMultiline is cleanText for descriptions, which may hold line breaks
// and tabs.
func cleanMultiline(s string) (string, string) { return clean(s, true) }

func clean(s string, multiline bool) (string, string) {
	if s == "" {
		return s, ""
	}
	var what []string
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		what = append(what, "invalid UTF-8 replaced")
	}
	control := func(r rune) bool {
		return unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r'))
	}
	if strings.IndexFunc(s, control) >= 0 {
		s = strings.Map(func(r rune) rune {
			if control(r) {
				return -1
			}
			return r
		}, s)
		what = append(what, "control characters removed")
	}
	if len(s) > MaxFieldBytes {
		cut := MaxFieldBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		what = append(what, fmt.Sprintf("cut from %d to %d bytes", len(s), cut))
		s = s[:cut]
	}
	if t := strings.TrimSpace(s); t != s {
		s = t
	}
	return s, strings.Join(what, ", ")
}

// cleanProfile cleans every attribute of p in place and returns one line per
// attribute it changed.
func cleanProfile(p *Profile) []string {
	var out []string
	for _, f := range profileFields {
		v := f.get(p)
		clean, what := cleanText(*v)
		if what != "" {
			out = append(out, f.name+": "+what)
		}
		*v = clean
	}
	return out
}

// validID reports whether an external id can be used as it is.
func validID(id string) bool {
	return id != "" && utf8.ValidString(id) && strings.IndexFunc(id, unicode.IsControl) < 0 && len(id) <= MaxFieldBytes
}
