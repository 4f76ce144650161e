package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// newSecret returns a random URL-safe token with the given prefix and
// 256 bits of entropy, and its SHA-256 for storage.
func newSecret(prefix string) (token string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashSecret(token)
}

// HashSecret is how opaque tokens are stored: high-entropy secrets need no
// slow hash, only a one-way one.
func HashSecret(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
