package sdk_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
)

func testKeys(t testing.TB) (ed25519.PrivateKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": "k1", "use": "sig", "alg": "EdDSA", "x": base64.RawURLEncoding.EncodeToString(pub)}}})
	require.NoError(t, err)
	return priv, jwks
}

func TestVerifySignature(t *testing.T) {
	priv, jwks := testKeys(t)
	payload := []byte(`{"n":1}`)
	claims := sdk.SignatureClaims{Issuer: "i", Plugin: "governance", Purpose: "governance.x", SHA256: "", IssuedAt: 1}
	sum := sha256Hex(payload)
	claims.SHA256 = sum
	jws, err := sdk.SignatureJWS(priv, "k1", claims)
	require.NoError(t, err)
	got, err := sdk.VerifySignature(jwks, sdk.Signature{KeyID: "k1", Algorithm: "EdDSA", JWS: jws}, payload)
	require.NoError(t, err)
	require.Equal(t, claims, got)

	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	parts := strings.Split(jws, ".")
	resign := func(header map[string]any) string {
		in := enc(header) + "." + parts[1]
		return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
	}
	for name, bad := range map[string]string{
		"not a JWS":          "abc",
		"a JWT":              resign(map[string]any{"alg": "EdDSA", "kid": "k1", "typ": "JWT"}),
		"alg none":           resign(map[string]any{"alg": "none", "kid": "k1", "typ": sdk.SignatureType}),
		"unknown key":        resign(map[string]any{"alg": "EdDSA", "kid": "k2", "typ": sdk.SignatureType}),
		"critical header":    resign(map[string]any{"alg": "EdDSA", "kid": "k1", "typ": sdk.SignatureType, "crit": []string{"b64"}}),
		"signature stripped": parts[0] + "." + parts[1] + ".",
		"claims changed":     parts[0] + "." + enc(map[string]any{"sha256": sum, "purpose": "governance.y"}) + "." + parts[2],
	} {
		_, err := sdk.VerifySignature(jwks, sdk.Signature{JWS: bad}, payload)
		require.ErrorIs(t, err, sdk.ErrSignature, name)
	}
	_, err = sdk.VerifySignature(jwks, sdk.Signature{JWS: jws}, []byte(`{"n":2}`))
	require.ErrorIs(t, err, sdk.ErrSignature, "another payload")
	_, err = sdk.VerifySignature([]byte(`{"keys":[]}`), sdk.Signature{JWS: jws}, payload)
	require.ErrorIs(t, err, sdk.ErrSignature, "another key set")
	_, err = sdk.VerifySignature(jwks, sdk.Signature{KeyID: "k9", JWS: jws}, payload)
	require.ErrorIs(t, err, sdk.ErrSignature, "a key ID beside it that is not the header's")
}

// FuzzVerifySignature: whatever an auditor is handed, verification
// answers an error or the claims, never panics, and never accepts a
// signature of another payload.
func FuzzVerifySignature(f *testing.F) {
	priv, jwks := testKeys(f)
	payload := []byte("p")
	jws, err := sdk.SignatureJWS(priv, "k1", sdk.SignatureClaims{Plugin: "g", Purpose: "g.x", SHA256: sha256Hex(payload)})
	require.NoError(f, err)
	f.Add(jws, []byte("p"), []byte(jwks))
	f.Add("a.b.c", []byte(""), []byte(`{"keys":[{"kid":"k1","kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`))
	f.Add(jws+"x", []byte("p"), []byte(`null`))
	f.Fuzz(func(t *testing.T, s string, p []byte, set []byte) {
		c, err := sdk.VerifySignature(set, sdk.Signature{JWS: s}, p)
		if err == nil && c.SHA256 != sha256Hex(p) {
			t.Fatalf("accepted a signature of another payload")
		}
	})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
