package identity

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/opaque"
	"github.com/edulure/edulure/sdk"
)

// ResetPrefix marks password-reset tokens.
const ResetPrefix = "edp_"

// ResetTTL is how long a password-reset token lives.
const ResetTTL = time.Hour

// NewPasswordReset issues a single-use reset token for a user. Earlier
// unused tokens of the user are spent, so only the newest works.
func NewPasswordReset(ctx context.Context, tx pgx.Tx, userID uuid.UUID) (string, time.Time, error) {
	if _, err := tx.Exec(ctx, `UPDATE kernel.password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, userID); err != nil {
		return "", time.Time{}, err
	}
	tok, hash := opaque.New(ResetPrefix)
	var exp time.Time
	err := tx.QueryRow(ctx, `INSERT INTO kernel.password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, now() + $3::interval) RETURNING expires_at`,
		hash, userID, ResetTTL.String()).Scan(&exp)
	return tok, exp, err
}

// SpendPasswordReset consumes a reset token and returns its user.
func SpendPasswordReset(ctx context.Context, tx pgx.Tx, token string) (uuid.UUID, error) {
	var userID uuid.UUID
	err := tx.QueryRow(ctx, `UPDATE kernel.password_resets SET used_at = now()
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id`, opaque.Hash(token)).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, sdk.Errorf(sdk.ErrGone, "the reset token is not valid, has expired or was already used; request a new one").WithCode("invalid-reset-token")
	}
	return userID, err
}
