package scim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// userJSON is a person as a SCIM User of the read view. Empty attributes
// are left out (unassigned, RFC 7643 §2.5).
func userJSON(u *DirUser, base string) map[string]any {
	id := strconv.FormatInt(u.ID, 10)
	obj := map[string]any{
		"schemas": []string{SchemaUser, SchemaEnterprise},
		"id":      id,
		"active":  u.Active,
		"meta":    metaJSON("User", base+"/Users/"+id, u.Created, u.Modified),
	}
	setString(obj, "userName", u.UserName)
	setString(obj, "displayName", u.DisplayName)
	setString(obj, "title", u.Title)
	name := map[string]any{}
	setString(name, "givenName", u.GivenName)
	setString(name, "familyName", u.FamilyName)
	if f := strings.TrimSpace(u.GivenName + " " + u.FamilyName); f != "" {
		name["formatted"] = f
	}
	if len(name) > 0 {
		obj["name"] = name
	}
	if u.Email != "" {
		obj["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	if len(u.Groups) > 0 {
		groups := make([]any, len(u.Groups))
		for i, g := range u.Groups {
			gid := strconv.FormatInt(g.ID, 10)
			groups[i] = map[string]any{"value": gid, "display": g.Display, "$ref": base + "/Groups/" + gid, "type": "direct"}
		}
		obj["groups"] = groups
	}
	if len(u.Entitlements) > 0 {
		ents := make([]any, len(u.Entitlements))
		for i, e := range u.Entitlements {
			ents[i] = map[string]any{"value": e}
		}
		obj["entitlements"] = ents
	}
	ext := map[string]any{}
	setString(ext, "employeeNumber", u.EmployeeNumber)
	setString(ext, "department", u.Department)
	setString(ext, "costCenter", u.CostCenter)
	if u.Manager != "" {
		ext["manager"] = map[string]any{"value": u.Manager}
	}
	if len(ext) > 0 {
		obj[SchemaEnterprise] = ext
	}
	return obj
}

// groupJSON is a group of the directory as a SCIM Group: displayName is
// source/name, as the users' groups show it.
func groupJSON(g *DirGroup, base string, noMembers bool) map[string]any {
	id := strconv.FormatInt(g.ID, 10)
	obj := map[string]any{
		"schemas":     []string{SchemaGroup},
		"id":          id,
		"displayName": g.Source + "/" + g.Name,
		"meta":        metaJSON("Group", base+"/Groups/"+id, g.Created, g.Modified),
	}
	setString(obj, "externalId", g.ExternalID)
	if !noMembers {
		members := make([]any, len(g.Members))
		for i, m := range g.Members {
			mid := strconv.FormatInt(m.ID, 10)
			members[i] = map[string]any{"value": mid, "display": m.Display, "$ref": base + "/Users/" + mid, "type": "User"}
		}
		obj["members"] = members
	}
	return obj
}

// metaJSON is a resource's meta; version is its last modification, which
// changes whenever what the view shows of it does.
func metaJSON(typ, location string, created, modified time.Time) map[string]any {
	return map[string]any{
		"resourceType": typ,
		"location":     location,
		"created":      created.UTC().Format(time.RFC3339Nano),
		"lastModified": modified.UTC().Format(time.RFC3339Nano),
		"version":      `W/"` + strconv.FormatInt(modified.UnixNano(), 36) + `"`,
	}
}

func setString(obj map[string]any, key, v string) {
	if v != "" {
		obj[key] = v
	}
}

// serveReadDiscovery answers the discovery endpoints of the read view: the
// push side's documents, with the view's abilities and every attribute
// read-only.
func serveReadDiscovery(req *request, rest []string) {
	if req.resource != "ServiceProviderConfig" {
		serveDiscovery(req, rest)
		return
	}
	spc := serviceProviderConfig(req.base)
	spc["patch"] = map[string]any{"supported": false}
	spc["etag"] = map[string]any{"supported": false}
	spc["documentationUri"] = "https://github.com/learnsync/learnsync/blob/main/docs/scim.md#the-read-view-scimv2"
	spc["authenticationSchemes"] = []map[string]any{{
		"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
		"description": "The read view's token (server.public.read_token).",
	}}
	writeJSON(req.w, http.StatusOK, spc)
}
