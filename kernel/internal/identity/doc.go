// Package identity stores who people are and how they prove it: users and
// argon2id password hashes with lockout, sessions as refresh-token families
// with reuse detection, TOTP second factors with recovery codes and replay
// protection, API keys for service accounts, and password-reset tokens.
// Functions take a database.Querier or pgx.Tx so that the caller chooses the
// transaction (and writes the audit entry and event in the same one).
package identity
