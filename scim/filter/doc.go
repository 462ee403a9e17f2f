// Package filter parses SCIM 2.0 filters (RFC 7644 §3.4.2.2), PATCH paths
// (§3.5.2) and attribute lists into a small exported AST, prints that AST back
// as canonical filter syntax, and evaluates it against decoded JSON resources.
//
// The parser is hand-written recursive descent rather than
// github.com/scim2/filter-parser: the dialects real senders use (unquoted
// values, Entra's emails[type eq "work"].value eq "x") would need a tokenising
// pre-pass that is half a parser anyway, and owning the scanner gives exact
// error positions, bounded nesting and no new dependency.
//
// Leniency: operators, and/or/not, true/false/null and attribute names are
// case-insensitive; runs of spaces, tabs and line breaks separate tokens; an
// unquoted value that is not true, false, null or a JSON number is a string;
// a value path followed by a sub-attribute comparison,
// emails[type eq "work"].value eq "x", is normalised to the equivalent
// emails[type eq "work" and value eq "x"]. Input longer than [MaxLength] bytes
// or nesting deeper than [MaxDepth] is refused with an [*Error].
package filter
