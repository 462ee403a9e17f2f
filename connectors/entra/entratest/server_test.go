package entratest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/connectors/entra/entratest"
)

func getJSON(t *testing.T, srv *entratest.Server, method, u, token string, form url.Values) (int, map[string]any) {
	t.Helper()
	var req *http.Request
	var err error
	if form != nil {
		req, err = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp.StatusCode, body
}

func TestWireFormat(t *testing.T) {
	srv := entratest.New(t)
	srv.SetPageSize(1)
	u := srv.AddUser(entratest.User{UserPrincipalName: "a@x.example"})
	srv.AddUser(entratest.User{UserPrincipalName: "b@x.example"})

	// No token: Graph's answer to a client that sent no Authorization.
	st, body := getJSON(t, srv, "GET", srv.GraphURL+"/users/delta", "", nil)
	if st != 401 || body["error"].(map[string]any)["code"] != "InvalidAuthenticationToken" {
		t.Errorf("no token: %d %v", st, body)
	}

	tokenURL := srv.URL + "/" + srv.TenantID + "/oauth2/v2.0/token"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID},
		"client_secret": {"wrong"}, "scope": {srv.URL + "/.default"}}
	st, body = getJSON(t, srv, "POST", tokenURL, "", form)
	if st != 401 || body["error"] != "invalid_client" || !strings.HasPrefix(body["error_description"].(string), "AADSTS7000215:") {
		t.Errorf("bad secret: %d %v", st, body)
	}
	form.Set("client_secret", srv.ClientSecret)
	st, body = getJSON(t, srv, "POST", tokenURL, "", form)
	tok, _ := body["access_token"].(string)
	if st != 200 || tok == "" {
		t.Fatalf("token: %d %v", st, body)
	}

	st, _ = getJSON(t, srv, "GET", srv.URL+"/"+srv.TenantID+"/v2.0/.well-known/openid-configuration", "", nil)
	if st != 200 {
		t.Errorf("openid-configuration: %d", st)
	}

	// Paging to the deltaLink, with and without "()".
	st, body = getJSON(t, srv, "GET", srv.GraphURL+"/users/delta()?$select=id,accountEnabled", tok, nil)
	next, _ := body["@odata.nextLink"].(string)
	if st != 200 || next == "" || len(body["value"].([]any)) != 1 {
		t.Fatalf("first page: %d %v", st, body)
	}
	if _, ok := body["value"].([]any)[0].(map[string]any)["accountEnabled"]; !ok {
		t.Error("selected accountEnabled is missing")
	}
	_, body = getJSON(t, srv, "GET", next, tok, nil)
	delta, _ := body["@odata.deltaLink"].(string)
	if delta == "" {
		t.Fatalf("second page has no deltaLink: %v", body)
	}
	srv.DeleteUser(u)
	_, body = getJSON(t, srv, "GET", delta, tok, nil)
	items := body["value"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["@removed"].(map[string]any)["reason"] != "changed" {
		t.Errorf("delta after a soft delete: %v", body)
	}

	// Unknown $select property, as Graph does.
	st, _ = getJSON(t, srv, "GET", srv.GraphURL+"/users/delta?$select=nope", tok, nil)
	if st != 400 {
		t.Errorf("unknown select: %d", st)
	}

	srv.ExpireDeltaTokens()
	st, body = getJSON(t, srv, "GET", delta, tok, nil)
	if st != 400 || body["error"].(map[string]any)["code"] != "syncStateNotFound" {
		t.Errorf("expired: %d %v", st, body)
	}
	if n := srv.Requests("users/delta"); n != 6 {
		t.Errorf("users/delta requests = %d, want 6", n)
	}
}
