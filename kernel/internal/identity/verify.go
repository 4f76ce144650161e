package identity

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/opaque"
	"github.com/edulure/edulure/sdk"
)

// An account's email address is verified once its owner has shown they
// read mail sent to it: the link of a verification token, an invitation's
// token, or a password-reset token (each was sent to the address).

// VerificationPrefix marks email-verification tokens.
const VerificationPrefix = "edv_"

// VerificationTTL is how long an email-verification token lives.
const VerificationTTL = 24 * time.Hour

// NewEmailVerification issues a single-use token that verifies the user's
// current address. Earlier unused tokens of the user are spent, so only the
// newest works. Only the token's SHA-256 is stored.
func NewEmailVerification(ctx context.Context, tx pgx.Tx, u User) (string, time.Time, error) {
	if _, err := tx.Exec(ctx, `UPDATE kernel.email_verifications SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, u.ID); err != nil {
		return "", time.Time{}, err
	}
	tok, hash := opaque.New(VerificationPrefix)
	var exp time.Time
	err := tx.QueryRow(ctx, `INSERT INTO kernel.email_verifications (token_hash, user_id, email, expires_at) VALUES ($1, $2, $3, now() + $4::interval) RETURNING expires_at`,
		hash, u.ID, u.Email, VerificationTTL.String()).Scan(&exp)
	return tok, exp, err
}

// ErrVerificationToken is an unknown, spent or expired verification token.
var ErrVerificationToken = sdk.Errorf(sdk.ErrGone, "the verification token is not valid, has expired or was already used; log in and ask for a new one").WithCode("invalid-verification-token")

// SpendEmailVerification consumes a verification token, marks the address
// it was sent to verified, and returns the user.
func SpendEmailVerification(ctx context.Context, tx pgx.Tx, token string) (uuid.UUID, error) {
	var userID uuid.UUID
	var sentTo string
	err := tx.QueryRow(ctx, `UPDATE kernel.email_verifications SET used_at = now()
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id, email`, opaque.Hash(token)).Scan(&userID, &sentTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, ErrVerificationToken
	}
	if err != nil {
		return uuid.Nil, err
	}
	u, err := GetUser(ctx, tx, userID)
	if err != nil {
		return uuid.Nil, err
	}
	if !strings.EqualFold(u.Email, sentTo) { // the token proves the address it went to, not another
		return uuid.Nil, ErrVerificationToken
	}
	_, err = MarkEmailVerified(ctx, tx, userID)
	return userID, err
}

// MarkEmailVerified records that the user's address is proven and spends
// any verification tokens still pending. It reports whether the address
// was unverified until now.
func MarkEmailVerified(ctx context.Context, q database.Querier, userID uuid.UUID) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE kernel.users SET email_verified_at = now(), updated_at = now() WHERE id = $1 AND email_verified_at IS NULL`, userID)
	if err != nil {
		return false, err
	}
	if _, err := q.Exec(ctx, `UPDATE kernel.email_verifications SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, userID); err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}
