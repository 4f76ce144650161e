// Package identity stores who people are and how they prove it: users and
// argon2id password hashes with lockout, sessions as refresh-token families
// with reuse detection, TOTP second factors with recovery codes, replay
// protection and an account-level lockout, API keys for service accounts,
// password-reset tokens, and email-verification tokens.
// Functions take a database.Querier or pgx.Tx so that the caller chooses the
// transaction (and writes the audit entry and event in the same one).
package identity
