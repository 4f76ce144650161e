package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
)

// Sealer seals and opens secrets. The associated data binds a ciphertext to
// its purpose ("signing-key:<kid>"), so one cannot be swapped for another.
type Sealer struct{ aead cipher.AEAD }

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; the nonce is prepended to the result.
func (s *Sealer) Seal(plaintext, associated []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, associated)
}

// ErrOpen means the ciphertext was not sealed with this key and purpose.
var ErrOpen = errors.New("seal: cannot open: wrong EDULURE_SECRET_KEY or tampered data")

// Open decrypts what Seal produced.
func (s *Sealer) Open(sealed, associated []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrOpen
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], associated)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// storedAnswerPrefix marks a sealed stored answer of an Idempotency-Key
// (rows written before sealing hold the plain answer until they expire).
var storedAnswerPrefix = []byte("edulure-sealed:v1:")

func storedAnswerAAD(scope, key string) []byte {
	return []byte("idempotency:" + scope + "\x00" + key)
}

// SealStoredAnswer seals the answer kept for the retries of a request with
// an Idempotency-Key, bound to its scope and key.
func (s *Sealer) SealStoredAnswer(scope, key string, body []byte) []byte {
	return append(slices.Clip(storedAnswerPrefix), s.Seal(body, storedAnswerAAD(scope, key))...)
}

// OpenStoredAnswer opens what SealStoredAnswer sealed; an unsealed (older)
// answer is returned as it is.
func (s *Sealer) OpenStoredAnswer(scope, key string, stored []byte) ([]byte, error) {
	sealed, ok := bytes.CutPrefix(stored, storedAnswerPrefix)
	if !ok {
		return stored, nil
	}
	body, err := s.Open(sealed, storedAnswerAAD(scope, key))
	if err != nil {
		return nil, fmt.Errorf("opening the stored answer of an Idempotency-Key: %w", err)
	}
	return body, nil
}
