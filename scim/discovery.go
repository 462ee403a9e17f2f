package scim

import (
	"net/http"
	"strings"
)

// discoveryName is the canonical name of a discovery endpoint, for
// metrics.
func discoveryName(s string) string {
	switch strings.ToLower(s) {
	case "resourcetypes":
		return "ResourceTypes"
	case "schemas":
		return "Schemas"
	}
	return "ServiceProviderConfig"
}

// serveDiscovery answers /ServiceProviderConfig (also at
// /serviceConfiguration, where Microsoft's validator looks),
// /ResourceTypes[/name] and /Schemas[/urn].
func serveDiscovery(req *request, rest []string) {
	switch req.resource {
	case "ServiceProviderConfig":
		writeJSON(req.w, http.StatusOK, serviceProviderConfig(req.base))
	case "ResourceTypes":
		types := resourceTypes(req.base)
		if len(rest) == 2 {
			for _, t := range types {
				if strings.EqualFold(t["id"].(string), rest[1]) {
					writeJSON(req.w, http.StatusOK, t)
					return
				}
			}
			writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such resource type"})
			return
		}
		writeJSON(req.w, http.StatusOK, NewListResponse(len(types), 1, types))
	case "Schemas":
		schemas := schemaDocs(req.base)
		if len(rest) >= 2 {
			id := strings.Join(rest[1:], "/")
			for _, s := range schemas {
				if strings.EqualFold(s["id"].(string), id) {
					writeJSON(req.w, http.StatusOK, s)
					return
				}
			}
			writeError(req.w, &Error{Status: http.StatusNotFound, Detail: "no such schema"})
			return
		}
		writeJSON(req.w, http.StatusOK, NewListResponse(len(schemas), 1, schemas))
	}
}

func serviceProviderConfig(base string) map[string]any {
	supported := func(ok bool) map[string]any { return map[string]any{"supported": ok} }
	return map[string]any{
		"schemas":          []string{schemaSPC},
		"documentationUri": "https://github.com/learnsync/learnsync/blob/main/docs/scim.md",
		"patch":            supported(true),
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxCount},
		"changePassword":   supported(false),
		"sort":             supported(false),
		"etag":             supported(true),
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
			"description": "The bearer token configured for this scim source (config.token).",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": base + "/ServiceProviderConfig"},
	}
}

func resourceTypes(base string) []map[string]any {
	return []map[string]any{
		{
			"schemas": []string{schemaRT}, "id": "User", "name": "User", "endpoint": "/Users",
			"description": "User Account", "schema": SchemaUser,
			"schemaExtensions": []map[string]any{{"schema": SchemaEnterprise, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/User"},
		},
		{
			"schemas": []string{schemaRT}, "id": "Group", "name": "Group", "endpoint": "/Groups",
			"description": "Group", "schema": SchemaGroup,
			"meta": map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/Group"},
		},
	}
}

// attr describes one attribute of a schema document.
func attr(name, typ string, multi bool, subs ...map[string]any) map[string]any {
	a := map[string]any{
		"name": name, "type": typ, "multiValued": multi, "required": false,
		"caseExact": name == "id" || name == "externalId", "mutability": "readWrite", "returned": "default",
		"uniqueness": "none",
	}
	if name == "userName" {
		a["required"], a["uniqueness"] = true, "server"
	}
	if name == "password" {
		a["mutability"], a["returned"] = "writeOnly", "never"
	}
	if len(subs) > 0 {
		a["subAttributes"] = subs
	}
	return a
}

func multi(name string, extra ...map[string]any) map[string]any {
	subs := append([]map[string]any{attr("value", "string", false), attr("display", "string", false),
		attr("type", "string", false), attr("primary", "boolean", false)}, extra...)
	return attr(name, "complex", true, subs...)
}

func schemaDocs(base string) []map[string]any {
	s := func(str string) map[string]any { return attr(str, "string", false) }
	user := []map[string]any{
		s("userName"),
		attr("name", "complex", false, s("formatted"), s("familyName"), s("givenName"), s("middleName"),
			s("honorificPrefix"), s("honorificSuffix")),
		s("displayName"), s("nickName"), attr("profileUrl", "reference", false), s("title"), s("userType"),
		s("preferredLanguage"), s("locale"), s("timezone"), attr("active", "boolean", false), s("password"),
		multi("emails"), multi("phoneNumbers"), multi("ims"), multi("photos"),
		attr("addresses", "complex", true, s("formatted"), s("streetAddress"), s("locality"), s("region"),
			s("postalCode"), s("country"), s("type"), attr("primary", "boolean", false)),
		multi("groups"), multi("entitlements"), multi("roles"), multi("x509Certificates"), s("externalId"),
	}
	group := []map[string]any{
		attr("displayName", "string", false), s("externalId"),
		attr("members", "complex", true, s("value"), s("display"), attr("$ref", "reference", false), s("type")),
	}
	enterprise := []map[string]any{
		s("employeeNumber"), s("costCenter"), s("organization"), s("division"), s("department"),
		attr("manager", "complex", false, s("value"), attr("$ref", "reference", false), s("displayName")),
	}
	doc := func(id, name, desc string, attrs []map[string]any) map[string]any {
		return map[string]any{
			"schemas": []string{schemaSchema}, "id": id, "name": name, "description": desc, "attributes": attrs,
			"meta": map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + id},
		}
	}
	return []map[string]any{
		doc(SchemaUser, "User", "User Account", user),
		doc(SchemaGroup, "Group", "Group", group),
		doc(SchemaEnterprise, "EnterpriseUser", "Enterprise User", enterprise),
	}
}
