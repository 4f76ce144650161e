// Package opaque makes the kernel's opaque secrets (refresh tokens, MFA
// challenges, password-reset and invitation tokens, API-key secrets): a
// recognisable prefix and 256 random bits, stored only as a SHA-256. A
// high-entropy secret needs no slow hash, only a one-way one.
package opaque

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// New returns a random URL-safe token with the given prefix and its hash.
func New(prefix string) (token string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token)
}

// Hash is how a token is stored and looked up.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
