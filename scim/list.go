package scim

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/learnsync/learnsync/scim/filter"
)

// The list, paging and attribute-selection code here is shared by every
// view of resources: it works on query parameters and JSON objects only.

// Paging bounds.
const (
	// DefaultCount is the page size when a list asks for none.
	DefaultCount = 100
	// MaxCount is the largest page (ServiceProviderConfig filter.maxResults).
	MaxCount = 1000
)

// ListParams are the query parameters of a list or a read.
type ListParams struct {
	// Filter is nil for none.
	Filter filter.Expr
	// StartIndex is 1-based; Count the page size.
	StartIndex, Count int
	// Attributes and Excluded select what each resource shows.
	Attributes, Excluded []filter.Path
}

// param returns the query parameter name, whatever its case.
func param(q url.Values, name string) (string, bool) {
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// ParseListParams reads filter, startIndex, count, attributes and
// excludedAttributes. Errors are *Error (400).
func ParseListParams(q url.Values) (*ListParams, error) {
	p := &ListParams{StartIndex: 1, Count: DefaultCount}
	if s, ok := param(q, "filter"); ok && strings.TrimSpace(s) != "" {
		e, err := filter.Parse(s)
		if err != nil {
			return nil, filterError(err)
		}
		p.Filter = e
	}
	if s, ok := param(q, "startIndex"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, badRequest("invalidValue", "startIndex must be an integer")
		}
		p.StartIndex = max(n, 1)
	}
	if s, ok := param(q, "count"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, badRequest("invalidValue", "count must be an integer")
		}
		p.Count = min(max(n, 0), MaxCount)
	}
	var err error
	if p.Attributes, p.Excluded, err = parseSelection(q); err != nil {
		return nil, err
	}
	return p, nil
}

// parseSelection reads attributes and excludedAttributes.
func parseSelection(q url.Values) (attrs, excluded []filter.Path, err error) {
	if s, ok := param(q, "attributes"); ok {
		if attrs, err = filter.ParseAttributes(s); err != nil {
			return nil, nil, filterError(err)
		}
	}
	if s, ok := param(q, "excludedAttributes"); ok {
		if excluded, err = filter.ParseAttributes(s); err != nil {
			return nil, nil, filterError(err)
		}
	}
	return attrs, excluded, nil
}

func filterError(err error) error {
	var fe *filter.Error
	if errors.As(err, &fe) {
		return badRequest(fe.Type, fe.Detail)
	}
	return badRequest("invalidFilter", err.Error())
}

// ListResponse is the JSON of a list answer.
type ListResponse struct {
	Schemas      []string         `json:"schemas"`
	TotalResults int              `json:"totalResults"`
	StartIndex   int              `json:"startIndex"`
	ItemsPerPage int              `json:"itemsPerPage"`
	Resources    []map[string]any `json:"Resources"`
}

// NewListResponse wraps one page of resources.
func NewListResponse(total, startIndex int, page []map[string]any) *ListResponse {
	if page == nil {
		page = []map[string]any{}
	}
	return &ListResponse{Schemas: []string{schemaList}, TotalResults: total, StartIndex: startIndex,
		ItemsPerPage: len(page), Resources: page}
}

// alwaysReturned are shown whatever attributes asks for.
var alwaysReturned = []string{"id", "schemas", "meta"}

// Project selects the attributes of obj that attrs names (all when empty)
// and drops those excluded names; id, schemas and meta always stay.
func Project(obj map[string]any, attrs, excluded []filter.Path) map[string]any {
	out := obj
	if len(attrs) > 0 {
		out = make(map[string]any, len(attrs)+len(alwaysReturned))
		for _, k := range alwaysReturned {
			if v, ok := obj[k]; ok {
				out[k] = v
			}
		}
		for _, p := range attrs {
			include(out, obj, p.Attr)
		}
	} else if len(excluded) > 0 {
		out = make(map[string]any, len(obj))
		for k, v := range obj {
			out[k] = v
		}
	}
	for _, p := range excluded {
		exclude(out, p.Attr)
	}
	return out
}

// attrTarget resolves a's container in obj: the extension it names, or obj.
// whole is set when a names an extension as a whole.
func attrTarget(obj map[string]any, a filter.AttrPath) (key string, container map[string]any, whole bool) {
	if full := a.URN + ":" + a.Name; a.URN != "" && extensionKey(full) != "" {
		return keyFold(obj, extensionKey(full)), obj, true
	}
	if isExtension(a.URN) {
		k := keyFold(obj, a.URN)
		ext, _ := obj[k].(map[string]any)
		return k, ext, false
	}
	return "", obj, false
}

func include(out, obj map[string]any, a filter.AttrPath) {
	extKey, src, whole := attrTarget(obj, a)
	if whole {
		if v, ok := obj[extKey]; ok {
			out[extKey] = v
		}
		return
	}
	if src == nil {
		return
	}
	dst := out
	if extKey != "" {
		d, _ := out[extKey].(map[string]any)
		if d == nil {
			d = map[string]any{}
			out[extKey] = d
		}
		dst = d
	}
	name := keyFold(src, a.Name)
	v, ok := src[name]
	if !ok {
		return
	}
	if a.Sub == "" {
		dst[name] = v
		return
	}
	dst[name] = pick(v, a.Sub, dst[name])
}

// pick keeps sub of a complex value (or of each value of a list), merged
// with what was picked before.
func pick(v any, sub string, before any) any {
	switch x := v.(type) {
	case map[string]any:
		m, _ := before.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		k := keyFold(x, sub)
		if s, ok := x[k]; ok {
			m[k] = s
		}
		return m
	case []any:
		prev, _ := before.([]any)
		out := make([]any, len(x))
		for i, e := range x {
			var b any
			if i < len(prev) {
				b = prev[i]
			}
			out[i] = pick(e, sub, b)
		}
		return out
	}
	return v
}

func exclude(out map[string]any, a filter.AttrPath) {
	extKey, c, whole := attrTarget(out, a)
	if whole {
		delete(out, extKey)
		return
	}
	if c == nil {
		return
	}
	name := keyFold(c, a.Name)
	if extKey == "" && (name == "id" || name == "schemas" || name == "meta") {
		return
	}
	if a.Sub == "" {
		delete(c, name)
		return
	}
	if m, ok := c[name].(map[string]any); ok {
		cp := make(map[string]any, len(m))
		for k, v := range m {
			if !strings.EqualFold(k, a.Sub) {
				cp[k] = v
			}
		}
		c[name] = cp
	}
}
