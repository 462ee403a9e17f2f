package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/learnsync/learnsync/connectors"
)

// jsonUser is one element of "users". Its fields are those of the file
// format; the connector maps it to connectors.User.
type jsonUser struct {
	ID             string `json:"id"`
	UserName       string `json:"user_name"`
	Email          string `json:"email"`
	GivenName      string `json:"given_name"`
	FamilyName     string `json:"family_name"`
	DisplayName    string `json:"display_name"`
	Title          string `json:"title"`
	Department     string `json:"department"`
	EmployeeNumber string `json:"employee_number"`
	Manager        string `json:"manager"`
	CostCenter     string `json:"cost_center"`
	Status         string `json:"status"`
	// Attributes are the user's own attributes for the rules
	// (`user.attributes.<name>`).
	Attributes map[string]any `json:"attributes"`
}

// get is one key of the record as the rules see it.
func (r *jsonUser) get(name string) (any, bool) {
	switch name {
	case "id":
		return r.ID, true
	case "user_name":
		return r.UserName, true
	case "email":
		return r.Email, true
	case "given_name":
		return r.GivenName, true
	case "family_name":
		return r.FamilyName, true
	case "display_name":
		return r.DisplayName, true
	case "title":
		return r.Title, true
	case "department":
		return r.Department, true
	case "employee_number":
		return r.EmployeeNumber, true
	case "manager":
		return r.Manager, true
	case "cost_center":
		return r.CostCenter, true
	case "status":
		return r.Status, true
	case "attributes":
		if r.Attributes == nil {
			return map[string]any{}, true
		}
		return r.Attributes, true
	}
	return nil, false
}

// raw is the record as the rules see it: its keys and values.
func (r *jsonUser) raw() map[string]any {
	m := map[string]any{"id": r.ID, "user_name": r.UserName, "email": r.Email, "given_name": r.GivenName,
		"family_name": r.FamilyName, "display_name": r.DisplayName, "title": r.Title, "department": r.Department,
		"employee_number": r.EmployeeNumber, "manager": r.Manager, "cost_center": r.CostCenter, "status": r.Status}
	m["attributes"] = r.Attributes
	if r.Attributes == nil {
		m["attributes"] = map[string]any{}
	}
	return m
}

// jsonGroup is one element of "groups".
type jsonGroup struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Members     []string `json:"members"`
}

// progressEvery is how many records pass between Progress hooks and
// cancellation checks.
const progressEvery = 4096

// readJSON reads {"users": [...], "groups": [...]} one element at a time, so
// that only the result and one record are in memory, never the document.
func (s *snapshot) readJSON(ctx context.Context, r io.Reader, hooks connectors.Hooks) error {
	dec := json.NewDecoder(r)
	// An unknown key is most likely a typo that would silently drop data.
	dec.DisallowUnknownFields()

	tok, err := dec.Token()
	if err != nil {
		return jsonFatal(dec, "", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &posError{offset: 0, err: errors.New(`the file must hold one JSON object: {"users": [...], "groups": [...]}`)}
	}
	var seenUsers, seenGroups bool
	for dec.More() {
		at := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return jsonFatal(dec, "", err)
		}
		key, _ := tok.(string)
		switch key {
		case "users":
			if seenUsers {
				return &posError{offset: at, err: errors.New(`"users" appears twice`)}
			}
			seenUsers = true
			err = s.readUsers(ctx, dec, hooks)
		case "groups":
			if seenGroups {
				return &posError{offset: at, err: errors.New(`"groups" appears twice`)}
			}
			seenGroups = true
			err = s.readGroups(ctx, dec, hooks)
		default:
			return &posError{offset: at, err: fmt.Errorf("unknown key %q: want users and groups", key)}
		}
		if err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return jsonFatal(dec, "", err)
	}
	at := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return jsonFatal(dec, "", err)
		}
		return &posError{offset: at, err: errors.New("data after the JSON object")}
	}
	s.resolveMembers()
	return nil
}

// openArray consumes the '[' of key's value; it reports false for null.
func openArray(dec *json.Decoder, key string) (bool, error) {
	at := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return false, jsonFatal(dec, key, err)
	}
	if tok == nil {
		return false, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return false, &posError{offset: at, err: fmt.Errorf("%s: must be an array", key)}
	}
	return true, nil
}

func (s *snapshot) readUsers(ctx context.Context, dec *json.Decoder, hooks connectors.Hooks) error {
	ok, err := openArray(dec, "users")
	if !ok {
		return err
	}
	var rec jsonUser
	var u connectors.User
	for pos := 0; dec.More(); pos++ {
		if pos%progressEvery == 0 && pos > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			hooks.OnProgress(connectors.Progress{Users: len(s.users), Groups: len(s.groups)})
		}
		rec = jsonUser{}
		at := dec.InputOffset()
		if err := dec.Decode(&rec); err != nil {
			if reason, ok := recordError(err); ok {
				s.rejectUser(pos, strings.TrimSpace(rec.ID), reason)
				continue
			}
			return jsonFatalAt(dec, at, s.userWhere(pos), err)
		}
		u = connectors.User{
			ExternalID:     rec.ID,
			UserName:       rec.UserName,
			Email:          rec.Email,
			GivenName:      rec.GivenName,
			FamilyName:     rec.FamilyName,
			DisplayName:    rec.DisplayName,
			Title:          rec.Title,
			Department:     rec.Department,
			EmployeeNumber: rec.EmployeeNumber,
			Manager:        rec.Manager,
			CostCenter:     rec.CostCenter,
			Attrs:          s.attrs.KeepLookup(rec.get, rec.raw),
		}
		s.addUser(pos, &u, rec.Status)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return jsonFatal(dec, "users", err)
	}
	return nil
}

func (s *snapshot) readGroups(ctx context.Context, dec *json.Decoder, hooks connectors.Hooks) error {
	ok, err := openArray(dec, "groups")
	if !ok {
		return err
	}
	var rec jsonGroup
	for pos := 0; dec.More(); pos++ {
		if pos%progressEvery == 0 && pos > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			hooks.OnProgress(connectors.Progress{Users: len(s.users), Groups: len(s.groups)})
		}
		// Reuse the member buffer: addGroup keeps an exact-size copy.
		rec = jsonGroup{Members: rec.Members[:0]}
		at := dec.InputOffset()
		if err := dec.Decode(&rec); err != nil {
			if reason, ok := recordError(err); ok {
				id := strings.TrimSpace(rec.ID)
				if id != "" {
					reason = fmt.Sprintf("id %q: %s", id, reason)
				}
				s.problem(s.groupWhere(pos), reason)
				continue
			}
			return jsonFatalAt(dec, at, s.groupWhere(pos), err)
		}
		s.addGroup(pos, connectors.Group{ExternalID: rec.ID, Name: rec.Name, Description: rec.Description}, rec.Members)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return jsonFatal(dec, "groups", err)
	}
	return nil
}

// recordError tells an error confined to one record (a number where a
// string belongs) from one that stops the read. encoding/json has consumed
// the whole record when it reports a type error, so the read can go on.
func recordError(err error) (string, bool) {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return "", false
	}
	if te.Field == "" {
		return fmt.Sprintf("want an object, got %s", te.Value), true
	}
	return fmt.Sprintf("%s: want %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value), true
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct":
		return "an object"
	}
	return k
}

// jsonFatal wraps an error that ends the read at the decoder's position.
func jsonFatal(dec *json.Decoder, where string, err error) error {
	return jsonFatalAt(dec, dec.InputOffset(), where, err)
}

func jsonFatalAt(dec *json.Decoder, at int64, where string, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &posError{offset: at, syntax: true, err: fmt.Errorf("invalid JSON: %w", err)}
	case (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && at == 0:
		return &posError{err: errors.New("invalid JSON: the file is empty")}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &posError{offset: at, syntax: true, err: errors.New("invalid JSON: unexpected end of file (is it truncated?)")}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// A typo in a key would silently drop data: refuse the file.
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if where != "" {
			msg = where + ": " + msg
		}
		return &posError{offset: at, err: errors.New(msg)}
	case where != "":
		return &posError{offset: at, err: fmt.Errorf("%s: %w", where, err)}
	}
	return &posError{offset: at, err: err}
}

// syntaxOffset returns the offset of the first syntax error in data, or -1.
// It runs only after a failed read, to turn it into a line and column.
func syntaxOffset(data []byte) int64 {
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if se.Offset > 0 && se.Offset < int64(len(data)) {
			// Offset counts the bytes read, the bad one included.
			return se.Offset - 1
		}
		return se.Offset
	}
	return -1
}
