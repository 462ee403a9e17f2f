package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Schema URNs.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// SchemaEntraGroup is the extra schema Entra ID puts on groups.
	SchemaEntraGroup = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
	schemaList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatch      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaSPC        = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaRT         = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"

	// The SCIM 1.0 names some admin-written OneLogin templates still use.
	schemaUser1       = "urn:scim:schemas:core:1.0"
	schemaEnterprise1 = "urn:scim:schemas:extension:enterprise:1.0"
)

// Resource types.
const (
	TypeUser  = "User"
	TypeGroup = "Group"
)

// Resource is one SCIM resource as an identity provider pushed it, with the
// id and the meta data learnsync keeps for it.
type Resource struct {
	// Type is TypeUser or TypeGroup; ID is learnsync's id for it.
	Type string
	ID   string
	// Attrs is the resource as pushed, normalised (see Decode), without
	// id, meta and password.
	Attrs map[string]any
	// Created and Modified are meta.created and meta.lastModified; Version
	// counts the writes (meta.version is W/"Version").
	Created, Modified time.Time
	Version           int64
}

// Limits on a request body, so that a hostile one cannot make the decoder
// work hard or recurse deeply.
const (
	// MaxBody is the largest request body, in bytes.
	MaxBody = 1 << 20
	// MaxDepth is the deepest nesting of JSON objects and arrays.
	MaxDepth = 16
)

// decodeObject decodes a JSON object, refusing bodies nested deeper than
// MaxDepth before encoding/json sees them.
func decodeObject(data []byte) (map[string]any, error) {
	if err := checkDepth(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("the body has data after its JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the body must be a JSON object")
	}
	return obj, nil
}

// checkDepth scans JSON text for its nesting depth.
func checkDepth(data []byte) error {
	depth, inString := 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return fmt.Errorf("the body is nested deeper than %d levels", MaxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// Decode reads a User or Group from a request body: the JSON is checked,
// normalised and validated. Errors are *Error (400).
func Decode(typ string, data []byte) (map[string]any, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return nil, &Error{Status: 400, Type: "invalidSyntax", Detail: err.Error()}
	}
	return Normalize(typ, obj)
}

// Normalize brings a resource into the form learnsync stores, whoever sent
// it: read-only and secret attributes dropped (id, meta, password),
// attribute names of the known schemas in their canonical case, SCIM 1.0
// schema names replaced by 2.0 ones, a single object where a list belongs
// wrapped in a list, "True"/"False" strings as booleans, a plain string as
// the enterprise manager's value, member values given as strings as
// {"value": …}. Then it checks the required attributes.
func Normalize(typ string, obj map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		switch strings.ToLower(k) {
		case "id", "meta", "password":
			continue
		case "schemas":
			out["schemas"] = normalSchemas(typ, v)
			continue
		case schemaUser1:
			// SCIM 1.0 core attributes nested under their schema name.
			if m, ok := v.(map[string]any); ok {
				for k2, v2 := range m {
					out[canonicalName(k2)] = normalValue(k2, v2)
				}
			}
			continue
		}
		name := canonicalName(k)
		if strings.EqualFold(name, schemaEnterprise1) {
			name = SchemaEnterprise
		}
		out[name] = normalValue(name, v)
	}
	if _, ok := out["schemas"]; !ok {
		out["schemas"] = normalSchemas(typ, nil)
	}
	if ext, ok := out[SchemaEnterprise].(map[string]any); ok {
		addSchema(out, SchemaEnterprise)
		if m, ok := ext["manager"].(string); ok {
			ext["manager"] = map[string]any{"value": m}
		}
	}
	return out, validate(typ, out)
}

func addSchema(obj map[string]any, urn string) {
	list, _ := obj["schemas"].([]any)
	for _, s := range list {
		if str, ok := s.(string); ok && strings.EqualFold(str, urn) {
			return
		}
	}
	obj["schemas"] = append(list, urn)
}

// normalSchemas returns the schemas list with SCIM 1.0 names replaced, or
// the core schema of typ when there is none.
func normalSchemas(typ string, v any) []any {
	core := SchemaUser
	if typ == TypeGroup {
		core = SchemaGroup
	}
	var out []any
	list, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr {
			list = []any{s}
		}
	}
	for _, s := range list {
		str, ok := s.(string)
		if !ok {
			continue
		}
		switch strings.ToLower(str) {
		case schemaUser1:
			str = core
		case schemaEnterprise1:
			str = SchemaEnterprise
		default:
			str = canonicalName(str)
		}
		out = append(out, str)
	}
	if len(out) == 0 {
		out = []any{core}
	}
	return out
}

// normalValue normalises the value of attribute name (canonical).
func normalValue(name string, v any) any {
	switch name {
	case "active", "primary":
		if s, ok := v.(string); ok {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				return true
			case "false":
				return false
			}
		}
		return v
	}
	if multiValued[name] {
		if m, ok := v.(map[string]any); ok {
			v = []any{m}
		}
		if list, ok := v.([]any); ok {
			out := make([]any, 0, len(list))
			for _, e := range list {
				if s, ok := e.(string); ok && name == "members" {
					e = map[string]any{"value": s}
				}
				out = append(out, normalValue("", e))
			}
			return out
		}
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ck := canonicalName(k)
			if ck == "$ref" && e == nil {
				continue // Entra sends "$ref": null
			}
			out[ck] = normalValue(ck, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalValue("", e)
		}
		return out
	}
	return v
}

// validate checks what a resource of typ must have.
func validate(typ string, obj map[string]any) error {
	key := "userName"
	if typ == TypeGroup {
		key = "displayName"
	}
	s, ok := obj[key].(string)
	if !ok || strings.TrimSpace(s) == "" {
		return &Error{Status: 400, Type: "invalidValue", Detail: fmt.Sprintf("%s is required and must be a non-empty string", key)}
	}
	if a, ok := obj["active"]; ok && a != nil {
		if _, isBool := a.(bool); !isBool {
			return &Error{Status: 400, Type: "invalidValue", Detail: "active must be a boolean"}
		}
	}
	if typ == TypeGroup {
		for _, m := range members(obj) {
			if m == "" {
				return &Error{Status: 400, Type: "invalidValue", Detail: "every member needs a value (the member's id)"}
			}
		}
	}
	return nil
}

// multiValued names the multi-valued attributes of the User and Group
// schemas.
var multiValued = map[string]bool{
	"emails": true, "phoneNumbers": true, "ims": true, "photos": true, "addresses": true, "groups": true,
	"entitlements": true, "roles": true, "x509Certificates": true, "members": true,
}

// canonicalNames maps the lower-cased attribute names of the User, Group
// and enterprise schemas (and their sub-attributes) to their spelling.
var canonicalNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"userName", "name", "formatted", "familyName", "givenName", "middleName", "honorificPrefix",
		"honorificSuffix", "displayName", "nickName", "profileUrl", "title", "userType", "preferredLanguage",
		"locale", "timezone", "active", "emails", "phoneNumbers", "ims", "photos", "addresses", "groups",
		"entitlements", "roles", "x509Certificates", "externalId", "members", "value", "display", "type",
		"primary", "$ref", "streetAddress", "locality", "region", "postalCode", "country", "employeeNumber",
		"costCenter", "organization", "division", "department", "manager", "schemas",
		SchemaUser, SchemaGroup, SchemaEnterprise, SchemaEntraGroup,
	} {
		m[strings.ToLower(n)] = n
	}
	return m
}()

func canonicalName(k string) string {
	if c, ok := canonicalNames[strings.ToLower(k)]; ok {
		return c
	}
	return k
}

// str returns obj[key] as a string ("" when absent or not a string).
func str(obj map[string]any, key string) string {
	s, _ := obj[key].(string)
	return s
}

// members returns the member ids of a group.
func members(obj map[string]any) []string {
	list, _ := obj["members"].([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		m, _ := e.(map[string]any)
		out = append(out, str(m, "value"))
	}
	return out
}

// Members returns the ids of a group's members, as pushed.
func (r *Resource) Members() []string { return members(r.Attrs) }

// UserName returns the user's userName.
func (r *Resource) UserName() string { return str(r.Attrs, "userName") }

// DisplayName returns the displayName.
func (r *Resource) DisplayName() string { return str(r.Attrs, "displayName") }

// ExternalID returns the externalId the identity provider gave.
func (r *Resource) ExternalID() string { return str(r.Attrs, "externalId") }

// WorkEmails returns the values of the user's emails of type work.
func (r *Resource) WorkEmails() []string {
	var out []string
	for _, e := range emails(r.Attrs) {
		if strings.EqualFold(str(e, "type"), "work") && str(e, "value") != "" {
			out = append(out, str(e, "value"))
		}
	}
	return out
}

func emails(obj map[string]any) []map[string]any {
	list, _ := obj["emails"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// Email is the user's address for the directory: the primary one, else
// the first of type work, else the first.
func (r *Resource) Email() string {
	list := emails(r.Attrs)
	for _, e := range list {
		if p, _ := e["primary"].(bool); p && str(e, "value") != "" {
			return str(e, "value")
		}
	}
	for _, e := range list {
		if strings.EqualFold(str(e, "type"), "work") && str(e, "value") != "" {
			return str(e, "value")
		}
	}
	for _, e := range list {
		if v := str(e, "value"); v != "" {
			return v
		}
	}
	return ""
}

// MirrorUser maps a User to the source's mirror: its learnsync id is the
// external id of the identity (a SCIM externalId is optional and need not
// be unique). keep names the attributes of the pushed resource the rules
// read (`user.<attribute>`); nil keeps none.
func (r *Resource) MirrorUser(keep *connectors.Selection) *connectors.User {
	name, _ := r.Attrs["name"].(map[string]any)
	ext, _ := r.Attrs[SchemaEnterprise].(map[string]any)
	manager, _ := ext["manager"].(map[string]any)
	status := connectors.StatusActive
	if a, ok := r.Attrs["active"].(bool); ok && !a {
		status = connectors.StatusInactive
	}
	return &connectors.User{
		ExternalID: r.ID, UserName: r.UserName(), Email: r.Email(),
		GivenName: str(name, "givenName"), FamilyName: str(name, "familyName"),
		DisplayName: r.DisplayName(), Title: str(r.Attrs, "title"),
		Department: str(ext, "department"), EmployeeNumber: str(ext, "employeeNumber"),
		Manager: str(manager, "value"), CostCenter: str(ext, "costCenter"),
		Status: status, Attrs: keep.Keep(func() map[string]any { return r.Attrs }),
	}
}

// MirrorGroup maps a Group to the source's mirror.
func (r *Resource) MirrorGroup() *connectors.Group {
	return &connectors.Group{ExternalID: r.ID, Name: r.DisplayName()}
}
