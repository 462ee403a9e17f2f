package scim

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/scim/filter"
)

// JSON returns the resource as served: its attributes, id and meta. base is
// the source's base URL.
func (r *Resource) JSON(base string) map[string]any {
	out := make(map[string]any, len(r.Attrs)+2)
	for k, v := range r.Attrs {
		out[k] = v
	}
	out["id"] = r.ID
	out["meta"] = map[string]any{
		"resourceType": r.Type,
		"created":      r.Created.UTC().Format(time.RFC3339Nano),
		"lastModified": r.Modified.UTC().Format(time.RFC3339Nano),
		"version":      r.ETag(),
		"location":     base + "/" + endpoint(r.Type) + "/" + r.ID,
	}
	return out
}

// ETag is the weak entity tag of the resource's version.
func (r *Resource) ETag() string { return `W/"` + strconv.FormatInt(r.Version, 10) + `"` }

func endpoint(typ string) string {
	if typ == TypeGroup {
		return "Groups"
	}
	return "Users"
}

// readBody reads a request body of at most MaxBody bytes (413 past it).
func readBody(req *request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(req.w, req.r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Detail: "the body is larger than 1 MiB"}
		}
		return nil, badRequest("invalidSyntax", "the body could not be read")
	}
	return data, nil
}

// checkMatch answers If-Match: * or the resource's ETag (weak or strong).
func checkMatch(req *request, r *Resource) error {
	im := strings.TrimSpace(req.r.Header.Get("If-Match"))
	if im == "" || im == "*" {
		return nil
	}
	want := strings.TrimPrefix(r.ETag(), "W/")
	for _, t := range strings.Split(im, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == want {
			return nil
		}
	}
	return &Error{Status: http.StatusPreconditionFailed, Detail: "the resource has changed: its version is " + r.ETag()}
}

// getMatching reads the resource req names for a write, which If-Match
// may make conditional.
func getMatching(tx Tx, req *request, typ string) (*Resource, error) {
	r, err := tx.Get(typ, req.id)
	if err != nil {
		return nil, err
	}
	if err := checkMatch(req, r); err != nil {
		return nil, err
	}
	return r, nil
}

// send answers with one resource, its attributes selected by the query.
func send(req *request, status int, r *Resource) {
	attrs, excluded, err := parseSelection(req.r.URL.Query())
	if err != nil {
		writeError(req.w, err)
		return
	}
	req.w.Header().Set("ETag", r.ETag())
	if status == http.StatusCreated {
		req.w.Header().Set("Location", req.base+"/"+endpoint(r.Type)+"/"+r.ID)
	}
	writeJSON(req.w, status, Project(r.JSON(req.base), attrs, excluded))
}

// decodeBody reads and decodes the request's resource.
func decodeBody(req *request, typ string) (map[string]any, error) {
	data, err := readBody(req)
	if err != nil {
		return nil, err
	}
	return Decode(typ, data)
}

func (h *Handler) written(req *request) {
	if h.opts.Written != nil {
		h.opts.Written(req.src.Name)
	}
}

// update runs fn in one write transaction of the store (see
// Store.UpdateSCIM). The handler's writes take turns here, in Go, before
// they ask SQLite for its one write lock: writers that wait inside SQLite
// sleep in its busy handler (1, 2, 5, ... up to 100 ms a step) and miss
// the moment the lock is free, which put tens of milliseconds on the p99
// of concurrent pushes. A request whose client goes away stops waiting.
func (h *Handler) update(req *request, fn func(Tx) error) error {
	ctx := req.r.Context()
	select {
	case h.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.writing }()
	return h.opts.Store.UpdateSCIM(ctx, req.src.Name, fn)
}

func (h *Handler) create(req *request, typ string) {
	attrs, err := decodeBody(req, typ)
	if err != nil {
		writeError(req.w, err)
		return
	}
	r := &Resource{Type: typ, ID: newID(), Attrs: attrs}
	if err := h.update(req, func(tx Tx) error { return tx.Put(r) }); err != nil {
		h.fail(req, err)
		return
	}
	h.written(req)
	send(req, http.StatusCreated, r)
}

// fail answers err, logging what the client is not told.
func (h *Handler) fail(req *request, err error) {
	var e *Error
	if !errors.As(err, &e) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUniqueness) {
		h.log.Error("scim request failed", "source", req.src.Name, "method", req.r.Method, "path", req.r.URL.Path, "error", err)
	}
	writeError(req.w, err)
}

func (h *Handler) get(req *request, typ string) {
	r, err := h.opts.Store.GetSCIM(req.r.Context(), req.src.Name, typ, req.id)
	if err != nil {
		h.fail(req, err)
		return
	}
	send(req, http.StatusOK, r)
}

// change reads the resource, lets edit compute its new attributes and
// writes them, all in one transaction. An edit that changes nothing
// writes nothing.
func (h *Handler) change(req *request, typ string, edit func(old *Resource) (map[string]any, error)) (*Resource, bool, error) {
	var out *Resource
	changed := false
	err := h.update(req, func(tx Tx) error {
		old, err := getMatching(tx, req, typ)
		if err != nil {
			return err
		}
		attrs, err := edit(old)
		if err != nil {
			return err
		}
		out = old
		if reflect.DeepEqual(attrs, old.Attrs) {
			return nil
		}
		changed = true
		out = &Resource{Type: typ, ID: old.ID, Attrs: attrs, Created: old.Created, Version: old.Version}
		return tx.Put(out)
	})
	return out, changed, err
}

func (h *Handler) replace(req *request, typ string) {
	attrs, err := decodeBody(req, typ)
	if err != nil {
		writeError(req.w, err)
		return
	}
	r, changed, err := h.change(req, typ, func(*Resource) (map[string]any, error) { return attrs, nil })
	if err != nil {
		h.fail(req, err)
		return
	}
	if changed {
		h.written(req)
	}
	send(req, http.StatusOK, r)
}

func (h *Handler) patch(req *request, typ string) {
	data, err := readBody(req)
	if err != nil {
		writeError(req.w, err)
		return
	}
	ops, err := decodePatch(data)
	if err != nil {
		writeError(req.w, err)
		return
	}
	r, changed, err := h.change(req, typ, func(old *Resource) (map[string]any, error) {
		attrs := deepCopy(old.Attrs).(map[string]any)
		if err := applyPatch(attrs, ops); err != nil {
			return nil, err
		}
		return Normalize(typ, attrs)
	})
	if err != nil {
		h.fail(req, err)
		return
	}
	if changed {
		h.written(req)
	}
	// 204 as Microsoft's validator expects; the resource itself for a
	// client that asks for attributes, and for Okta, which reads it.
	q := req.r.URL.Query()
	_, wantsAttrs := param(q, "attributes")
	if wantsAttrs || strings.HasPrefix(req.r.UserAgent(), "Okta") {
		send(req, http.StatusOK, r)
		return
	}
	req.w.Header().Set("ETag", r.ETag())
	req.w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) delete(req *request, typ string) {
	err := h.update(req, func(tx Tx) error {
		if _, err := getMatching(tx, req, typ); err != nil {
			return err
		}
		if typ == TypeUser {
			if err := dropMember(tx, req.id); err != nil {
				return err
			}
		}
		return tx.Delete(typ, req.id)
	})
	if err != nil {
		h.fail(req, err)
		return
	}
	h.written(req)
	req.w.WriteHeader(http.StatusNoContent)
}

// dropMember removes a deleted user from the groups that list it.
func dropMember(tx Tx, id string) error {
	groups, err := tx.GroupsWith(id)
	if err != nil {
		return err
	}
	for _, gid := range groups {
		g, err := tx.Get(TypeGroup, gid)
		if err != nil {
			return err
		}
		g.Attrs["members"] = removeValues(asList(g.Attrs["members"]), map[string]any{"value": id})
		if err := tx.Put(g); err != nil {
			return err
		}
	}
	return nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// list answers a query: an indexed lookup when the filter has an equality
// test on an indexed attribute (the rest of the filter is checked on what
// it finds), a page read from the store when there is no filter, else
// every resource of the source checked with the filter (push-side stores
// are small).
func (h *Handler) list(req *request, typ string) {
	p, err := ParseListParams(req.r.URL.Query())
	if err != nil {
		writeError(req.w, err)
		return
	}
	q := Query{Offset: p.StartIndex - 1, Limit: p.Count}
	if p.Filter != nil {
		q = Query{Lookup: lookupOf(typ, p.Filter), Limit: -1}
	}
	page, err := h.opts.Store.ListSCIM(req.r.Context(), req.src.Name, typ, q)
	if err != nil {
		h.fail(req, err)
		return
	}
	total := page.Total
	var out []map[string]any
	if p.Filter == nil {
		for _, r := range page.Resources {
			out = append(out, Project(r.JSON(req.base), p.Attributes, p.Excluded))
		}
	} else {
		var matched []map[string]any
		for _, r := range page.Resources {
			if obj := r.JSON(req.base); filter.Match(p.Filter, obj) {
				matched = append(matched, obj)
			}
		}
		total = len(matched)
		from := min(p.StartIndex-1, len(matched))
		to := min(from+p.Count, len(matched))
		for _, obj := range matched[from:to] {
			out = append(out, Project(obj, p.Attributes, p.Excluded))
		}
	}
	writeJSON(req.w, http.StatusOK, NewListResponse(total, p.StartIndex, out))
}

// lookupOf finds in e an equality test on an indexed attribute that every
// match must pass, or returns nil.
func lookupOf(typ string, e filter.Expr) *Lookup {
	switch e := e.(type) {
	case filter.Logical:
		if e.Op != filter.And {
			return nil
		}
		if l := lookupOf(typ, e.Left); l != nil {
			return l
		}
		return lookupOf(typ, e.Right)
	case filter.Compare:
		a := e.Path
		if e.Op != filter.Eq || a.Sub != "" || isExtension(a.URN) || e.Value.Kind == filter.KindNull {
			return nil
		}
		switch name := strings.ToLower(a.Name); {
		case name == "id":
			return &Lookup{Attr: LookupID, Key: e.Value.Text}
		case name == "externalid":
			return &Lookup{Attr: LookupExternalID, Key: e.Value.Text}
		case name == "username" && typ == TypeUser:
			return &Lookup{Attr: LookupUserName, Key: strings.ToLower(e.Value.Text)}
		case name == "displayname" && typ == TypeGroup:
			return &Lookup{Attr: LookupDisplayName, Key: strings.ToLower(e.Value.Text)}
		}
	case filter.ValuePath:
		if typ != TypeUser || !strings.EqualFold(e.Path.Name, "emails") || isExtension(e.Path.URN) {
			return nil
		}
		elem := map[string]any{}
		if !equalities(e.Filter, elem) {
			return nil
		}
		t, _ := filter.Lookup(elem, "type")
		v, _ := filter.Lookup(elem, "value")
		ts, _ := t.(string)
		vs, ok := v.(string)
		if strings.EqualFold(ts, "work") && ok {
			return &Lookup{Attr: LookupWorkEmail, Key: strings.ToLower(vs)}
		}
	}
	return nil
}
