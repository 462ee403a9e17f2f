package entratest

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors/fault"
)

// round is one paged answer in progress: a delta round or a plain listing.
type round struct {
	kind    string // "users", "groups" (delta) or "" (listing)
	path    string // path of the nextLinks
	context string
	items   []map[string]any
	version int
	selects []string
}

// jsonType is the Content-Type of Graph's JSON answers.
const jsonType = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"

type pageRef struct {
	r      *round
	offset int
}

// answer gives the real answer or, for a fault (not nil), the error answer
// for its status: the token endpoint's, or Graph's once the request is
// authorized.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, f *fault.Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, parts := classify(r.URL.Path)
	switch ep {
	case "openid-configuration", "token":
		if f != nil {
			code, msg := faultError(f)
			aadError(w, f.Status, code, 0, msg)
			return
		}
		if parts[0] != s.TenantID {
			aadError(w, http.StatusBadRequest, "invalid_request", 90002,
				fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", parts[0]))
			return
		}
		if ep == "token" {
			s.token(w, r)
		} else {
			s.openID(w)
		}
		return
	case "unknown":
		http.NotFound(w, r)
		return
	}

	// Graph: a missing token is what the SDK sends to a host outside its
	// allowed list, so answer it like Graph does.
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if auth == "" {
		graphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return
	}
	if !ok || !s.tokens[tok] {
		graphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots (.).")
		return
	}
	if r.Method != http.MethodGet {
		graphError(w, r, http.StatusMethodNotAllowed, "Request_BadRequest", "The fake only serves GET.")
		return
	}
	if f != nil {
		code, msg := faultError(f)
		graphError(w, r, f.Status, code, msg)
		return
	}
	q := r.URL.Query()
	switch ep {
	case "users/delta", "groups/delta":
		s.delta(w, r, strings.TrimSuffix(ep, "/delta"), q)
	case "users":
		s.listUsers(w, r, q)
	case "users/item":
		u, ok := s.users[parts[1]]
		if !ok || u.removed != "" {
			notFound(w, r, parts[1])
			return
		}
		sel, err := checkSelect(q, userProps)
		if err != nil {
			graphError(w, r, http.StatusBadRequest, "Request_BadRequest", err.Error())
			return
		}
		body := renderUser(&u.User, sel)
		body["@odata.context"] = s.GraphURL + "/$metadata#users/$entity"
		writeJSON(w, http.StatusOK, body)
	case "groups/members", "groups/transitiveMembers":
		s.listMembers(w, r, q, parts[1], parts[2], ep == "groups/transitiveMembers")
	case "groups/transitiveMemberOf":
		s.listMemberOf(w, r, q, parts[1], parts[2])
	case "servicePrincipals/appRoleAssignedTo":
		s.listAssignments(w, r, q, parts[1])
	default:
		graphError(w, r, http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("Resource not found for the segment '%s'.", r.URL.Path))
	}
}

// classify names the endpoint of a path and returns its variable parts:
// the tenant for the token endpoints; for Graph the object id and the cast.
func classify(p string) (string, []string) {
	if rest, ok := strings.CutPrefix(p, "/v1.0/"); ok {
		seg := strings.Split(rest, "/")
		for i := range seg {
			seg[i] = strings.TrimSuffix(seg[i], "()")
		}
		cast := ""
		if n := len(seg); n > 1 && (strings.HasPrefix(seg[n-1], "graph.") || strings.HasPrefix(seg[n-1], "microsoft.graph.")) {
			cast = seg[n-1]
			cast = cast[strings.LastIndex(cast, ".")+1:]
			seg = seg[:len(seg)-1]
		}
		switch {
		case len(seg) == 1 && seg[0] == "users" && cast == "":
			return "users", seg
		case len(seg) == 2 && seg[1] == "delta" && (seg[0] == "users" || seg[0] == "groups"):
			return seg[0] + "/delta", seg
		case len(seg) == 2 && seg[0] == "users" && cast == "":
			return "users/item", seg
		case len(seg) == 3 && seg[0] == "groups":
			return "groups/" + seg[2], []string{seg[0], seg[1], cast}
		case len(seg) == 3 && seg[0] == "servicePrincipals" && seg[2] == "appRoleAssignedTo":
			return "servicePrincipals/appRoleAssignedTo", seg
		}
		return "graph/other", seg
	}
	seg := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case len(seg) == 4 && seg[1] == "v2.0" && seg[2] == ".well-known" && seg[3] == "openid-configuration":
		return "openid-configuration", seg
	case len(seg) == 4 && seg[1] == "oauth2" && seg[2] == "v2.0" && seg[3] == "token":
		return "token", seg
	}
	return "unknown", seg
}

// graphCodes are the codes Graph and the token endpoint send with a status.
var graphCodes = map[int]string{
	http.StatusUnauthorized:        "InvalidAuthenticationToken",
	http.StatusTooManyRequests:     "TooManyRequests",
	http.StatusInternalServerError: "generalException",
	http.StatusServiceUnavailable:  "serviceNotAvailable",
}

// graphMessages are the messages Graph sends with some statuses.
var graphMessages = map[int]string{
	http.StatusUnauthorized:    "Access token has expired or is not yet valid.",
	http.StatusTooManyRequests: "Too many requests.",
}

// faultError is the code and message of the error body for a fault.
func faultError(f *fault.Fault) (code, msg string) {
	code = cmp.Or(f.Code, graphCodes[f.Status], http.StatusText(f.Status))
	return code, cmp.Or(f.Message, graphMessages[f.Status], "Injected fault.")
}

func (s *Server) openID(w http.ResponseWriter) {
	base := s.URL + "/" + s.TenantID
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		aadError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.")
		return
	}
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	}
	if f.Get("client_id") != s.ClientID {
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", f.Get("client_id"), s.TenantID))
		return
	}
	if a := f.Get("client_assertion"); a != "" {
		if err := s.checkAssertion(a); err != nil {
			aadError(w, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation: "+err.Error())
			return
		}
	} else if f.Get("client_secret") != s.ClientSecret {
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.ClientID))
		return
	}
	// MSAL adds openid, profile and offline_access to the resource scope.
	resource := false
	for _, sc := range strings.Fields(f.Get("scope")) {
		resource = resource || strings.HasSuffix(sc, "/.default")
	}
	if !resource {
		aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
		return
	}
	tok := newToken()
	s.tokens[tok] = true
	s.tokenCount++
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     3599,
		"ext_expires_in": 3599,
		"access_token":   tok,
	})
}

// checkAssertion verifies a client assertion JWT (RS256 or PS256, or ES256)
// with the registered certificate's public key.
func (s *Server) checkAssertion(a string) error {
	if s.certKey == nil {
		return fmt.Errorf("no certificate registered for the application")
	}
	jwt, err := fault.ParseJWT(a)
	if err != nil {
		return err
	}
	if jwt.Iss != s.ClientID || jwt.Sub != s.ClientID {
		return fmt.Errorf("iss and sub must be the client id")
	}
	sig, err := jwt.Signature()
	if err != nil {
		return err
	}
	sum := jwt.Sum
	switch k := s.certKey.(type) {
	case *rsa.PublicKey:
		switch jwt.Alg {
		case "RS256":
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig)
		case "PS256":
			return rsa.VerifyPSS(k, crypto.SHA256, sum[:], sig, nil)
		}
	case *ecdsa.PublicKey:
		if jwt.Alg == "ES256" && len(sig) == 64 {
			if ecdsa.Verify(k, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
				return nil
			}
			return fmt.Errorf("bad signature")
		}
	}
	return fmt.Errorf("unsupported algorithm %q", jwt.Alg)
}

var userProps = []string{"id", "businessPhones", "displayName", "givenName", "jobTitle", "mail",
	"mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName",
	"accountEnabled", "department", "employeeId", "userType", "manager",
	"onPremisesExtensionAttributes", "employeeOrgData", "country", "city", "companyName", "employeeType", "usageLocation"}

// extensionProp is the shape of a directory extension property
// (extension_<app id without dashes>_<name>): Graph knows those an
// application registered; the fake knows those any user holds.
var extensionProp = regexp.MustCompile(`^extension_[0-9a-f]{32}_[A-Za-z0-9_]+$`)

// defaultUserProps is what Graph returns without $select: note that
// accountEnabled, department, employeeId and userType are not in it.
var defaultUserProps = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail",
	"mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName"}

var groupProps = []string{"id", "displayName", "description", "mail", "mailEnabled",
	"securityEnabled", "groupTypes", "members"}

var defaultGroupProps = []string{"displayName", "description", "mail", "mailEnabled", "securityEnabled", "groupTypes"}

func checkSelect(q url.Values, known []string) ([]string, error) {
	raw := q.Get("$select")
	if raw == "" {
		return nil, nil
	}
	var sel []string
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		ok := slices.Contains(known, f) || (slices.Contains(known, "userPrincipalName") && extensionProp.MatchString(f))
		if !ok {
			return nil, fmt.Errorf("Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", f)
		}
		sel = append(sel, f)
	}
	return sel, nil
}

func null(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// render is the JSON of the object id with the properties sel (defaults
// when nil): prop gives a property's value, and false for one that is not
// rendered (the id, navigation properties).
func render(id string, sel, defaults []string, prop func(f string) (any, bool)) map[string]any {
	if sel == nil {
		sel = defaults
	}
	m := map[string]any{"id": id}
	for _, f := range sel {
		if v, ok := prop(f); ok {
			m[f] = v
		}
	}
	return m
}

func renderUser(u *User, sel []string) map[string]any {
	text := map[string]string{"displayName": u.DisplayName, "givenName": u.GivenName, "surname": u.Surname,
		"jobTitle": u.JobTitle, "mail": u.Mail, "userPrincipalName": u.UserPrincipalName,
		"department": u.Department, "employeeId": u.EmployeeID}
	return render(u.ID, sel, defaultUserProps, func(f string) (any, bool) {
		if v, ok := text[f]; ok {
			return null(v), true
		}
		switch f {
		case "businessPhones":
			return []string{}, true
		case "accountEnabled":
			return !u.Disabled, true
		case "userType":
			return cmp.Or(u.UserType, "Member"), true
		case "id", "manager":
			return nil, false
		}
		if v, ok := u.Extra[f]; ok {
			return v, true
		}
		if f == "onPremisesExtensionAttributes" {
			// Graph sends all fifteen, null when unset.
			m := map[string]any{}
			for i := 1; i <= 15; i++ {
				m[fmt.Sprintf("extensionAttribute%d", i)] = nil
			}
			return m, true
		}
		return nil, true
	})
}

func renderGroup(g *Group, sel []string) map[string]any {
	return render(g.ID, sel, defaultGroupProps, func(f string) (any, bool) {
		switch f {
		case "displayName":
			return null(g.DisplayName), true
		case "description":
			return null(g.Description), true
		case "mailEnabled":
			return false, true
		case "securityEnabled":
			return true, true
		case "groupTypes":
			return []string{}, true
		case "id", "members":
			return nil, false
		}
		return nil, true
	})
}

func (s *Server) memberRef(id string, removed bool) map[string]any {
	t := "#microsoft.graph.user"
	if _, ok := s.groups[id]; ok {
		t = "#microsoft.graph.group"
	}
	m := map[string]any{"@odata.type": t, "id": id}
	if removed {
		m["@removed"] = map[string]any{"reason": "deleted"}
	}
	return m
}

func (s *Server) delta(w http.ResponseWriter, r *http.Request, kind string, q url.Values) {
	maxPage := s.pageSize
	if p := r.Header.Get("Prefer"); p != "" {
		for _, part := range strings.Split(p, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "odata.maxpagesize="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 && n < maxPage {
					maxPage = n
				}
			}
		}
	}
	if tok := q.Get("$skiptoken"); tok != "" {
		ref, ok := s.pages[tok]
		if !ok || s.expired[tok] || ref.r.kind != kind {
			s.expiredError(w, r)
			return
		}
		s.writePage(w, ref.r, ref.offset, maxPage)
		return
	}
	rd := &round{kind: kind, path: "/" + kind + "/delta", version: s.version,
		context: s.GraphURL + "/$metadata#" + kind}
	if tok := q.Get("$deltatoken"); tok != "" {
		st, ok := s.deltaTokens[tok]
		if !ok || s.expired[tok] || st.kind != kind {
			s.expiredError(w, r)
			return
		}
		rd.selects = st.selects
		rd.items = s.changes(kind, st.version, st.selects)
	} else {
		known := userProps
		if kind == "groups" {
			known = groupProps
		}
		sel, err := checkSelect(q, known)
		if err != nil {
			graphError(w, r, http.StatusBadRequest, "Request_BadRequest", err.Error())
			return
		}
		rd.selects = sel
		rd.items = s.changes(kind, -1, sel)
	}
	s.writePage(w, rd, 0, maxPage)
}

func (s *Server) expiredError(w http.ResponseWriter, r *http.Request) {
	status, code := http.StatusBadRequest, "syncStateNotFound"
	if s.expiredStatus != 0 {
		status, code = s.expiredStatus, s.expiredCode
	}
	graphError(w, r, status, code, "The sync state generation is not found or has expired. Start a new round of synchronization.")
}

func (s *Server) writePage(w http.ResponseWriter, rd *round, offset, size int) {
	end := min(offset+size, len(rd.items))
	body := map[string]any{
		"@odata.context": rd.context,
		"value":          rd.items[offset:end],
	}
	if end < len(rd.items) {
		tok := newToken()
		s.pages[tok] = pageRef{r: rd, offset: end}
		body["@odata.nextLink"] = s.GraphURL + rd.path + "?$skiptoken=" + tok
	} else if rd.kind != "" {
		tok := newToken()
		s.deltaTokens[tok] = deltaState{kind: rd.kind, version: rd.version, selects: rd.selects}
		body["@odata.deltaLink"] = s.GraphURL + rd.path + "?$deltatoken=" + tok
	}
	writeJSON(w, http.StatusOK, body)
}

// changes lists the delta items of kind since version (-1: the initial round).
func (s *Server) changes(kind string, since int, sel []string) []map[string]any {
	if kind == "users" {
		return s.userChanges(since, sel)
	}
	return s.groupChanges(since, sel)
}

// userChanges is the users delta after the version since (-1: every
// user that is not deleted).
func (s *Server) userChanges(since int, sel []string) []map[string]any {
	var ids []string
	for id, u := range s.users {
		if since < 0 && u.removed == "" || since >= 0 && u.changed > since {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	items := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		u := s.users[id]
		if u.removed != "" {
			items = append(items, map[string]any{"id": id, "@removed": map[string]any{"reason": u.removed}})
			continue
		}
		items = append(items, renderUser(&u.User, sel))
	}
	return items
}

// memberDelta is the member changes per group after the version since
// (-1: every member): the net change of each pair.
func (s *Server) memberDelta(since int) map[string][]map[string]any {
	memberDelta := map[string][]map[string]any{}
	if since < 0 {
		for g, ms := range s.members {
			if !s.isGroup(g) {
				continue
			}
			ids := make([]string, 0, len(ms))
			for m := range ms {
				ids = append(ids, m)
			}
			sort.Strings(ids)
			for _, m := range ids {
				memberDelta[g] = append(memberDelta[g], s.memberRef(m, false))
			}
		}
	} else {
		type pair struct{ g, m string }
		before, after := map[pair]bool{}, map[pair]bool{}
		var order []pair
		for _, e := range s.memberLog {
			p := pair{e.group, e.member}
			if e.version <= since {
				before[p] = e.added
				continue
			}
			if _, seen := after[p]; !seen {
				order = append(order, p)
			}
			after[p] = e.added
		}
		sort.Slice(order, func(i, j int) bool {
			if order[i].g != order[j].g {
				return order[i].g < order[j].g
			}
			return order[i].m < order[j].m
		})
		for _, p := range order {
			if after[p] != before[p] {
				memberDelta[p.g] = append(memberDelta[p.g], s.memberRef(p.m, !after[p]))
			}
		}
	}
	return memberDelta
}

// groupChanges is the groups delta after the version since (-1: every
// group that is not deleted), with members@delta when sel has members.
func (s *Server) groupChanges(since int, sel []string) []map[string]any {
	withMembers := slices.Contains(sel, "members")
	var memberDelta map[string][]map[string]any
	if withMembers {
		memberDelta = s.memberDelta(since)
	}
	var ids []string
	for id, g := range s.groups {
		switch {
		case since < 0 && g.removed == "":
		case since >= 0 && (g.changed > since || len(memberDelta[id]) > 0):
		default:
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)

	// A group's members come in chunks; the chunks of big groups are
	// interleaved with other groups, so one group spans several pages.
	var items []map[string]any
	for chunk := 0; ; chunk++ {
		more := false
		for _, id := range ids {
			g := s.groups[id]
			ms := memberDelta[id]
			lo := chunk * s.memberChunk
			if g.removed != "" {
				if chunk == 0 {
					items = append(items, map[string]any{"id": id, "@removed": map[string]any{"reason": g.removed}})
				}
				continue
			}
			if chunk > 0 && lo >= len(ms) {
				continue
			}
			var item map[string]any
			if chunk == 0 && (since < 0 || g.changed > since) {
				item = renderGroup(&g.Group, sel)
			} else {
				item = map[string]any{"id": id}
			}
			if withMembers && (len(ms) > 0 || since < 0) {
				part := ms[min(lo, len(ms)):min(lo+s.memberChunk, len(ms))]
				item["members@delta"] = append([]map[string]any{}, part...)
			}
			items = append(items, item)
			if lo+s.memberChunk < len(ms) {
				more = true
			}
		}
		if !more {
			break
		}
	}
	return items
}

var inFilter = regexp.MustCompile(`^id in \((.*)\)$`)
var eqFilter = regexp.MustCompile(`^id eq '([^']*)'$`)

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, q url.Values) {
	if s.nextPage(w, r, q) {
		return
	}
	sel, err := checkSelect(q, userProps)
	if err != nil {
		graphError(w, r, http.StatusBadRequest, "Request_BadRequest", err.Error())
		return
	}
	var ids []string
	if f := q.Get("$filter"); f != "" {
		if m := inFilter.FindStringSubmatch(f); m != nil {
			for _, v := range strings.Split(m[1], ",") {
				ids = append(ids, strings.Trim(strings.TrimSpace(v), "'"))
			}
			if len(ids) > 15 {
				graphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15.")
				return
			}
		} else if m := eqFilter.FindStringSubmatch(f); m != nil {
			ids = []string{m[1]}
		} else {
			graphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported Query.")
			return
		}
	} else {
		for id := range s.users {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	rd := &round{path: "/users", context: s.GraphURL + "/$metadata#users"}
	for _, id := range ids {
		if u, ok := s.users[id]; ok && u.removed == "" {
			rd.items = append(rd.items, renderUser(&u.User, sel))
		}
	}
	s.writePage(w, rd, 0, s.pageSize)
}

// listMembers serves /groups/{id}/members and /transitiveMembers, with the
// optional graph.user or graph.group cast.
func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, q url.Values, gid, cast string, transitive bool) {
	if s.nextPage(w, r, q) {
		return
	}
	if !s.isGroup(gid) {
		notFound(w, r, gid)
		return
	}
	sel, err := checkSelect(q, userProps)
	if err != nil {
		graphError(w, r, http.StatusBadRequest, "Request_BadRequest", err.Error())
		return
	}
	found := map[string]bool{}
	var walk func(g string)
	walk = func(g string) {
		for m := range s.members[g] {
			if found[m] {
				continue
			}
			found[m] = true
			if transitive && s.isGroup(m) {
				walk(m)
			}
		}
	}
	walk(gid)
	delete(found, gid)
	ids := slices.Sorted(maps.Keys(found))
	seg := "members"
	if transitive {
		seg = "transitiveMembers"
	}
	rd := &round{path: "/groups/" + gid + "/" + seg, context: s.GraphURL + "/$metadata#users"}
	if cast != "" {
		rd.path += "/graph." + cast
	}
	for _, m := range ids {
		switch {
		case s.isUser(m) && (cast == "" || cast == "user"):
			item := renderUser(&s.users[m].User, sel)
			item["@odata.type"] = "#microsoft.graph.user"
			rd.items = append(rd.items, item)
		case s.isGroup(m) && (cast == "" || cast == "group"):
			item := renderGroup(&s.groups[m].Group, nil)
			item["@odata.type"] = "#microsoft.graph.group"
			rd.items = append(rd.items, item)
		}
	}
	s.writePage(w, rd, 0, s.pageSize)
}

// listMemberOf serves /groups/{id}/transitiveMemberOf[/graph.group].
func (s *Server) listMemberOf(w http.ResponseWriter, r *http.Request, q url.Values, gid, cast string) {
	if s.nextPage(w, r, q) {
		return
	}
	if !s.isGroup(gid) {
		notFound(w, r, gid)
		return
	}
	found := map[string]bool{}
	var walk func(id string)
	walk = func(id string) {
		for g, ms := range s.members {
			if ms[id] && s.isGroup(g) && !found[g] {
				found[g] = true
				walk(g)
			}
		}
	}
	walk(gid)
	delete(found, gid)
	ids := slices.Sorted(maps.Keys(found))
	rd := &round{path: "/groups/" + gid + "/transitiveMemberOf", context: s.GraphURL + "/$metadata#groups"}
	if cast != "" {
		rd.path += "/graph." + cast
	}
	for _, g := range ids {
		item := renderGroup(&s.groups[g].Group, nil)
		item["@odata.type"] = "#microsoft.graph.group"
		rd.items = append(rd.items, item)
	}
	s.writePage(w, rd, 0, s.pageSize)
}

func (s *Server) listAssignments(w http.ResponseWriter, r *http.Request, q url.Values, spID string) {
	if s.nextPage(w, r, q) {
		return
	}
	ps, ok := s.sps[spID]
	if !ok {
		notFound(w, r, spID)
		return
	}
	ids := make([]string, 0, len(ps))
	for p := range ps {
		ids = append(ids, p)
	}
	sort.Strings(ids)
	rd := &round{path: "/servicePrincipals/" + spID + "/appRoleAssignedTo",
		context: s.GraphURL + "/$metadata#servicePrincipals('" + spID + "')/appRoleAssignedTo"}
	for i, p := range ids {
		item := map[string]any{
			"id":                   fmt.Sprintf("assignment-%s-%d", p[len(p)-4:], i),
			"deletedDateTime":      nil,
			"appRoleId":            "00000000-0000-0000-0000-000000000000",
			"createdDateTime":      "2026-01-05T10:00:00Z",
			"principalId":          p,
			"resourceDisplayName":  "learnsync",
			"resourceId":           spID,
			"principalDisplayName": nil,
		}
		switch {
		case s.isUser(p):
			item["principalType"] = "User"
			item["principalDisplayName"] = s.users[p].DisplayName
		case s.isGroup(p):
			item["principalType"] = "Group"
			item["principalDisplayName"] = s.groups[p].DisplayName
		default:
			continue
		}
		rd.items = append(rd.items, item)
	}
	s.writePage(w, rd, 0, s.pageSize)
}

func notFound(w http.ResponseWriter, r *http.Request, id string) {
	graphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", jsonType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// graphError writes Graph's error body.
func graphError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("request-id", newToken())
	writeJSON(w, status, map[string]any{
		"error": map[string]any{
			"code":    code,
			"message": msg,
			"innerError": map[string]any{
				"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        newToken(),
				"client-request-id": r.Header.Get("client-request-id"),
			},
		},
	})
}

// aadError writes the token endpoint's error body.
func aadError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	desc := msg
	var codes []int
	if aadsts != 0 {
		desc = fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			aadsts, msg, newToken(), newToken(), time.Now().UTC().Format("2006-01-02 15:04:05Z"))
		codes = []int{aadsts}
	}
	fault.WriteJSON(w, status, "application/json; charset=utf-8", map[string]any{
		"error":             code,
		"error_description": desc,
		"error_codes":       codes,
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          newToken(),
		"correlation_id":    newToken(),
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

// nextPage serves the page a $skiptoken names, if the request has one, and
// reports whether it did (an unknown token gets Graph's error).
func (s *Server) nextPage(w http.ResponseWriter, r *http.Request, q url.Values) bool {
	tok := q.Get("$skiptoken")
	if tok == "" {
		return false
	}
	ref, ok := s.pages[tok]
	if !ok {
		graphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
		return true
	}
	s.writePage(w, ref.r, ref.offset, s.pageSize)
	return true
}
