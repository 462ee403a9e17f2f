package fault

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// WriteJSON answers status with v encoded as JSON (ending in a newline)
// and the Content-Type contentType: the way the fakes write their IdP's
// error bodies.
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Find returns the object id of a fake's model m, and panics with
// missing + " " + id where m has none: a test that names an object the
// fake does not hold is a bug in the test.
func Find[T any](m map[string]T, missing, id string) T {
	v, ok := m[id]
	if !ok {
		panic(missing + " " + id)
	}
	return v
}

// JWT is a client assertion as the fakes' token endpoints read it: the
// header's alg, the claims they check, and what the signature signs.
// ParseJWT does not verify the signature; the fake does, with the key it
// has registered.
type JWT struct {
	Alg           string
	Iss, Sub, Aud string
	Exp           int64
	// Sum is the SHA-256 of the signed part (header.claims).
	Sum [sha256.Size]byte

	sig string
}

// ParseJWT splits a compact JWT and decodes its header and claims.
func ParseJWT(s string) (*JWT, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, err
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, err
	}
	return &JWT{
		Alg: header.Alg, Iss: claims.Iss, Sub: claims.Sub, Aud: claims.Aud, Exp: claims.Exp,
		Sum: sha256.Sum256([]byte(parts[0] + "." + parts[1])),
		sig: parts[2],
	}, nil
}

// Signature decodes the JWT's signature.
func (j *JWT) Signature() ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(j.sig)
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
