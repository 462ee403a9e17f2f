package oktatest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors/fault"
)

// oauthClient is an API service app allowed to use the client-credentials
// flow with a private key.
type oauthClient struct {
	id     string
	key    *rsa.PublicKey
	scopes []string
}

// EnableOAuth registers an API service app with clientID that may be granted
// scopes, and returns its new RSA private key as PKCS#8 PEM (the form
// `openssl genpkey` writes). Access tokens from POST /oauth2/v1/token are
// then accepted as Bearer tokens, for the families their scopes cover.
func (s *Server) EnableOAuth(clientID string, scopes ...string) []byte {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("oktatest: generate key: " + err.Error())
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic("oktatest: marshal key: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth = &oauthClient{id: clientID, key: &key.PublicKey, scopes: slices.Clone(scopes)}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	fault.WriteJSON(w, status, "application/json", map[string]string{"error": code, "error_description": desc})
}

// token answers the client-credentials grant with a private_key_jwt client
// assertion. The SDK sends its parameters in the query string.
func (s *Server) token(w http.ResponseWriter, r *http.Request, now time.Time) {
	_ = r.ParseForm()
	if s.oauth == nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	if r.Form.Get("grant_type") != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	if r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "client_assertion_type is missing or wrong.")
		return
	}
	if !s.validAssertion(r.Form.Get("client_assertion")) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "The client_assertion signature is invalid.")
		return
	}
	scopes := strings.Fields(r.Form.Get("scope"))
	if len(scopes) == 0 {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.")
		return
	}
	for _, sc := range scopes {
		if !slices.Contains(s.oauth.scopes, sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "The following scopes are not allowed: "+sc)
			return
		}
	}
	tok := "eyfake." + randomString(40)
	s.tokens[tok] = scopes
	writeJSON(w, map[string]any{
		"token_type":   "Bearer",
		"expires_in":   3600,
		"access_token": tok,
		"scope":        strings.Join(scopes, " "),
	})
}

// validAssertion checks an RS256 JWT signed by the registered key, issued by
// and about the client, for this org's token endpoint, not expired.
func (s *Server) validAssertion(jwt string) bool {
	claims, err := fault.ParseJWT(jwt)
	if err != nil {
		return false
	}
	sig, err := claims.Signature()
	if err != nil || claims.Alg != "RS256" {
		return false
	}
	if rsa.VerifyPKCS1v15(s.oauth.key, crypto.SHA256, claims.Sum[:], sig) != nil {
		return false
	}
	return claims.Iss == s.oauth.id && claims.Sub == s.oauth.id &&
		claims.Aud == s.Server.URL+"/oauth2/v1/token" && time.Unix(claims.Exp, 0).After(time.Now())
}
