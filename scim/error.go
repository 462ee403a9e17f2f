package scim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error is a SCIM error answer (RFC 7644 §3.12): the HTTP status, the
// scimType (for 400 and 409) and a detail for the admin reading it.
type Error struct {
	Status int
	Type   string
	Detail string
	// RetryAfter, in seconds, is sent with 429 and 503.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Type != "" {
		return e.Type + ": " + e.Detail
	}
	return e.Detail
}

// Errors the store returns.
var (
	// ErrNotFound: no resource with that id in this source.
	ErrNotFound = errors.New("resource not found")
	// ErrUniqueness: another user of the source has that userName.
	ErrUniqueness = errors.New("userName is already taken")
)

// errorBody is the JSON of an Error.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// writeError sends err as a SCIM error: an *Error as it is, the store's
// sentinels as 404 and 409, anything else as 500 without its text.
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, ErrNotFound):
		e = &Error{Status: http.StatusNotFound, Detail: "resource not found"}
	case errors.Is(err, ErrUniqueness):
		e = &Error{Status: http.StatusConflict, Type: "uniqueness", Detail: err.Error()}
	default:
		e = &Error{Status: http.StatusInternalServerError, Detail: "internal error"}
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, errorBody{Schemas: []string{schemaError}, Status: strconv.Itoa(e.Status), ScimType: e.Type, Detail: e.Detail})
}

// writeJSON sends v with status as application/scim+json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"schemas":["`+schemaError+`"],"status":"500","detail":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/scim+json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

func badRequest(typ, detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: typ, Detail: detail}
}
