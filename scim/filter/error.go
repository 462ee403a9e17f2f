package filter

import (
	"fmt"
	"unicode/utf8"
)

// The SCIM error types (RFC 7644 §3.12 scimType) an [*Error] carries.
const (
	// InvalidFilter is the scimType for a bad filter or attribute list.
	InvalidFilter = "invalidFilter"
	// InvalidPath is the scimType for a bad PATCH path.
	InvalidPath = "invalidPath"
)

// Bounds on what the parsers accept, so a hostile query cannot make them
// work hard or recurse deeply.
const (
	// MaxLength is the longest input, in bytes.
	MaxLength = 4096
	// MaxDepth is the deepest nesting of parentheses, brackets and not.
	MaxDepth = 32
)

// Error is a parse error, ready to be sent as a SCIM 400 answer: Type is the
// scimType and Detail says where (line:column, 1-based) and what.
type Error struct {
	// Type is InvalidFilter or InvalidPath.
	Type string
	// Detail is "line:col: what went wrong".
	Detail string
	// Pos is the byte offset in the input where the problem was found.
	Pos int
}

// Error returns the scimType and the detail.
func (e *Error) Error() string { return e.Type + ": " + e.Detail }

// errorAt builds an *Error for src at byte offset pos.
func errorAt(typ, src string, pos int, format string, args ...any) *Error {
	if pos > len(src) {
		pos = len(src)
	}
	line, col := lineCol(src, pos)
	return &Error{
		Type:   typ,
		Detail: fmt.Sprintf("%d:%d: ", line, col) + fmt.Sprintf(format, args...),
		Pos:    pos,
	}
}

// lineCol turns a byte offset into a 1-based line and column (in runes).
func lineCol(src string, pos int) (line, col int) {
	line, col = 1, 1
	for i := 0; i < pos && i < len(src); {
		r, n := utf8.DecodeRuneInString(src[i:])
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i += n
	}
	return line, col
}
