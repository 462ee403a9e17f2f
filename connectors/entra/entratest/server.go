// Package entratest is a fake Microsoft Graph and Microsoft Entra token
// endpoint for tests. It speaks the wire format the Graph SDK and azidentity
// expect (TLS, openid-configuration, client-credentials token requests,
// delta queries with @odata.nextLink / @odata.deltaLink, @removed,
// members@delta split across pages, Graph error bodies, 429 with
// Retry-After) and is programmable: tests add, change, disable and delete
// users, groups and members, expire delta tokens and inject faults.
//
// It depends on the standard library only, so that tests outside
// connectors/entra can use it without compiling the Graph SDK themselves.
package entratest

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/learnsync/learnsync/connectors/fault"
)

// Default credentials of a new Server.
const (
	DefaultTenantID     = "11111111-2222-3333-4444-555555555555"
	DefaultClientID     = "66666666-7777-8888-9999-000000000000"
	DefaultClientSecret = "fake-client-secret-value"
)

// UserID returns a GUID-shaped user id for n. Graph ids are GUIDs, and the
// SDK parses some of them (appRoleAssignment.principalId) as UUIDs.
func UserID(n int) string { return fmt.Sprintf("00000000-0000-0000-0001-%012d", n) }

// GroupID returns a GUID-shaped group id for n.
func GroupID(n int) string { return fmt.Sprintf("00000000-0000-0000-0002-%012d", n) }

// ServicePrincipalID returns a GUID-shaped service principal id for n.
func ServicePrincipalID(n int) string { return fmt.Sprintf("00000000-0000-0000-0003-%012d", n) }

// User is an Entra user as the fake stores it.
type User struct {
	ID                string
	UserPrincipalName string
	Mail              string
	GivenName         string
	Surname           string
	DisplayName       string
	JobTitle          string
	Department        string
	EmployeeID        string
	// Disabled is the opposite of Graph's accountEnabled.
	Disabled bool
	// UserType is "Member" (default when empty) or "Guest".
	UserType string
	// Extra are further properties, sent only when $select names them, as
	// Graph does: onPremisesExtensionAttributes (an object of
	// extensionAttribute1..15), employeeOrgData ({division, costCenter}),
	// country, extension_<appid>_<name>, ...
	Extra map[string]any
}

// Group is an Entra group as the fake stores it.
type Group struct {
	ID          string
	DisplayName string
	Description string
}

type userRec struct {
	User
	changed int    // version of the last change
	removed string // "", "changed" (soft-deleted) or "deleted"
}

type groupRec struct {
	Group
	changed int // version of the last property change
	removed string
}

type memberEvent struct {
	version       int
	group, member string
	added         bool
}

type deltaState struct {
	kind    string // "users" or "groups"
	version int
	selects []string
}

// Server is a fake Graph API and token endpoint on one TLS listener. The
// embedded fault.Server (URL, CAFile, faults, request counts) names the
// requests by endpoint: "users/delta", "groups/delta", "users",
// "users/item", "groups/members", "groups/transitiveMembers",
// "groups/transitiveMemberOf", "servicePrincipals/appRoleAssignedTo",
// "token", "openid-configuration" (the names of the connector's request
// hooks).
type Server struct {
	*fault.Server
	// GraphURL is the Graph base for the graph_url setting (URL + "/v1.0").
	GraphURL string
	// AuthorityHost is the authority_host setting (URL + "/").
	AuthorityHost string
	// TenantID, ClientID and ClientSecret are the accepted credentials.
	TenantID     string
	ClientID     string
	ClientSecret string

	mu            sync.Mutex
	version       int
	pageSize      int
	memberChunk   int
	users         map[string]*userRec
	groups        map[string]*groupRec
	members       map[string]map[string]bool
	memberLog     []memberEvent
	sps           map[string]map[string]bool
	tokens        map[string]bool
	deltaTokens   map[string]deltaState
	pages         map[string]pageRef
	expired       map[string]bool
	expiredStatus int
	expiredCode   string
	certKey       any // public key accepted for client assertions
	tokenCount    int
}

// New starts a fake on a TLS listener, writes its CA certificate to a file in
// t.TempDir() and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		TenantID:     DefaultTenantID,
		ClientID:     DefaultClientID,
		ClientSecret: DefaultClientSecret,
		pageSize:     100,
		memberChunk:  20,
		users:        map[string]*userRec{},
		groups:       map[string]*groupRec{},
		members:      map[string]map[string]bool{},
		sps:          map[string]map[string]bool{},
		tokens:       map[string]bool{},
		deltaTokens:  map[string]deltaState{},
		pages:        map[string]pageRef{},
		expired:      map[string]bool{},
	}
	s.Server = fault.Start(t, "entratest", fault.Handler{
		Endpoint: func(r *http.Request) string { ep, _ := classify(r.URL.Path); return ep },
		Answer:   func(w http.ResponseWriter, r *http.Request) { s.answer(w, r, nil) },
		Error:    s.answer,
		JSONType: jsonType,
	})
	s.GraphURL = s.URL + "/v1.0"
	s.AuthorityHost = s.URL + "/"
	return s
}

// ConfigYAML returns the connector settings that point an entra source at
// this server (client_secret auth), each line prefixed with indent.
func (s *Server) ConfigYAML(indent string) string {
	lines := []string{
		"tenant_id: " + s.TenantID,
		"auth: client_secret",
		"client_id: " + s.ClientID,
		"client_secret: " + s.ClientSecret,
		"graph_url: " + s.GraphURL,
		"authority_host: " + s.AuthorityHost,
		"ca_file: " + s.CAFile,
	}
	return indent + strings.Join(lines, "\n"+indent) + "\n"
}

// SetPageSize sets how many objects a page holds at most (default 100). A
// client's Prefer: odata.maxpagesize can make pages smaller, not larger.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(n, 1)
}

// SetMemberChunk sets how many members one occurrence of a group in a groups
// delta page carries at most (default 20). A group with more members appears
// several times, possibly across pages, each time with part of the list.
func (s *Server) SetMemberChunk(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memberChunk = max(n, 1)
}

// SetClientCertificate makes the token endpoint accept client assertions
// (JWTs) signed by the private key of this certificate's public key
// (an *rsa.PublicKey or *ecdsa.PublicKey).
func (s *Server) SetClientCertificate(publicKey any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certKey = publicKey
}

func (s *Server) bump() int {
	s.version++
	return s.version
}

// AddUser creates or replaces a user. An empty ID gets UserID(n) for the
// next free n.
func (s *Server) AddUser(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.ID = cmp.Or(u.ID, freeID(s.users, UserID))
	s.users[u.ID] = &userRec{User: u, changed: s.bump()}
	return u.ID
}

// freeID returns id(n) for the first n from len(objects)+1 on that is not
// taken.
func freeID[T any](objects map[string]T, id func(int) string) string {
	for n := len(objects) + 1; ; n++ {
		if _, taken := objects[id(n)]; !taken {
			return id(n)
		}
	}
}

// UpdateUser changes a user with fn. It fails the test helper's contract
// (panics) if the user does not exist, as that is a bug in the test.
func (s *Server) UpdateUser(id string, fn func(u *User)) {
	change(s, s.mustUser, id, func(r *userRec) { fn(&r.User); r.User.ID = id })
}

// record is a user's or a group's record: it can be marked changed.
type record interface{ stamp(version int) }

func (r *userRec) stamp(v int)  { r.changed = v }
func (r *groupRec) stamp(v int) { r.changed = v }

// change marks the record find(id) changed (for the next delta round) and
// applies fn to it, under the lock.
func change[R record](s *Server, find func(string) R, id string, fn func(R)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := find(id)
	r.stamp(s.bump())
	fn(r)
}

// DisableUser sets accountEnabled to false.
func (s *Server) DisableUser(id string) { s.UpdateUser(id, func(u *User) { u.Disabled = true }) }

// DeleteUser soft-deletes a user (Graph's @removed reason "changed": the
// user is in the recycle bin and can be restored for 30 days).
func (s *Server) DeleteUser(id string) { s.removeUser(id, "changed") }

// PurgeUser deletes a user for good (@removed reason "deleted").
func (s *Server) PurgeUser(id string) { s.removeUser(id, "deleted") }

// RestoreUser brings back a soft-deleted user.
func (s *Server) RestoreUser(id string) {
	change(s, s.mustUser, id, func(r *userRec) { r.removed = "" })
}

func (s *Server) removeUser(id, reason string) {
	change(s, s.mustUser, id, func(r *userRec) {
		r.removed = reason
		// Entra drops a deleted user from every group; the groups delta reports it.
		s.dropMember(id)
	})
}

// dropMember removes a deleted user or group from every group and every
// service principal's assignments.
func (s *Server) dropMember(id string) {
	for g, ms := range s.members {
		if ms[id] {
			s.setMember(g, id, false)
		}
	}
	for _, ps := range s.sps {
		delete(ps, id)
	}
}

func (s *Server) mustUser(id string) *userRec { return fault.Find(s.users, "entratest: no user", id) }

func (s *Server) mustGroup(id string) *groupRec {
	r, ok := s.groups[id]
	if !ok || r.removed != "" {
		panic("entratest: no group " + id)
	}
	return r
}

// AddGroup creates or replaces a group. An empty ID gets GroupID(n).
func (s *Server) AddGroup(g Group) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.ID = cmp.Or(g.ID, freeID(s.groups, GroupID))
	s.groups[g.ID] = &groupRec{Group: g, changed: s.bump()}
	if s.members[g.ID] == nil {
		s.members[g.ID] = map[string]bool{}
	}
	return g.ID
}

// UpdateGroup changes a group's properties with fn.
func (s *Server) UpdateGroup(id string, fn func(g *Group)) {
	change(s, s.mustGroup, id, func(r *groupRec) { fn(&r.Group); r.Group.ID = id })
}

// DeleteGroup deletes a group (@removed reason "deleted"). Groups it was a
// member of lose it as a member.
func (s *Server) DeleteGroup(id string) {
	change(s, s.mustGroup, id, func(r *groupRec) {
		r.removed = "deleted"
		s.dropMember(id)
		delete(s.members, id)
	})
}

// AddMember adds a user or a group (nesting) to a group.
func (s *Server) AddMember(groupID string, memberIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustGroup(groupID)
	for _, m := range memberIDs {
		if !s.isUser(m) && !s.isGroup(m) {
			panic("entratest: no user or group " + m)
		}
		if !s.members[groupID][m] {
			s.setMember(groupID, m, true)
		}
	}
}

// RemoveMember removes members from a group.
func (s *Server) RemoveMember(groupID string, memberIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustGroup(groupID)
	for _, m := range memberIDs {
		if s.members[groupID][m] {
			s.setMember(groupID, m, false)
		}
	}
}

func (s *Server) setMember(g, m string, add bool) {
	if s.members[g] == nil {
		s.members[g] = map[string]bool{}
	}
	if add {
		s.members[g][m] = true
	} else {
		delete(s.members[g], m)
	}
	s.memberLog = append(s.memberLog, memberEvent{version: s.bump(), group: g, member: m, added: add})
}

func (s *Server) isUser(id string) bool {
	r, ok := s.users[id]
	return ok && r.removed == ""
}

func (s *Server) isGroup(id string) bool {
	r, ok := s.groups[id]
	return ok && r.removed == ""
}

// AddServicePrincipal creates an enterprise application (service principal)
// with no assignments.
func (s *Server) AddServicePrincipal(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sps[id] == nil {
		s.sps[id] = map[string]bool{}
	}
}

// Assign assigns users or groups to a service principal (appRoleAssignedTo).
func (s *Server) Assign(spID string, principalIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sps[spID] == nil {
		s.sps[spID] = map[string]bool{}
	}
	for _, p := range principalIDs {
		s.sps[spID][p] = true
	}
}

// Unassign removes assignments from a service principal.
func (s *Server) Unassign(spID string, principalIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range principalIDs {
		delete(s.sps[spID], p)
	}
}

// ExpireDeltaTokens makes every deltaLink and nextLink issued so far answer
// 400 syncStateNotFound, as Graph does for tokens older than about 7 days.
func (s *Server) ExpireDeltaTokens() {
	s.ExpireDeltaTokensWith(http.StatusBadRequest, "syncStateNotFound")
}

// ExpireDeltaTokensWith is ExpireDeltaTokens with another answer, such as
// 410 resyncRequired.
func (s *Server) ExpireDeltaTokensWith(status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok := range s.deltaTokens {
		s.expired[tok] = true
	}
	for tok := range s.pages {
		s.expired[tok] = true
	}
	s.expiredStatus, s.expiredCode = status, code
}

// Inject adds a fault (see fault.Fault). "{{graph}}" in its Body stands
// for GraphURL. An error status without a Code gets Graph's code for it.
func (s *Server) Inject(f fault.Fault) {
	f.Body = strings.ReplaceAll(f.Body, "{{graph}}", s.GraphURL)
	s.Server.Inject(f)
}

// Queries returns the raw query strings of every request to endpoint, in order.
func (s *Server) Queries(endpoint string) []string {
	var qs []string
	for _, r := range s.RequestLog() {
		if r.Endpoint == endpoint {
			qs = append(qs, r.RawQuery)
		}
	}
	return qs
}

// TokensIssued returns how many access tokens the token endpoint issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCount
}

// Users returns the ids of the live users, sorted.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, r := range s.users {
		if r.removed == "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
