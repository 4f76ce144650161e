// Package token issues and verifies the kernel's access tokens: short-lived
// EdDSA JWTs signed by a keyring of Ed25519 keys kept (sealed) in Postgres so
// that every replica shares them. The newest key signs; every key that is not
// retired verifies, so rotation logs nobody out. Public keys are published as
// a JWKS. Verified tokens are cached until they expire.
package token
