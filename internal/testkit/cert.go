package testkit

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"testing"
)

// SelfSigned signs tmpl with key itself and returns the certificate (DER)
// and the key (PKCS #8, DER), for tests that need a certificate of their own.
func SelfSigned(tb testing.TB, tmpl *x509.Certificate, key crypto.Signer) (certDER, keyDER []byte) {
	tb.Helper()
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return certDER, keyDER
}
