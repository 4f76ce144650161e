package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/opaque"
	"github.com/edulure/edulure/sdk"
)

// Session is one login: a refresh-token family.
type Session struct {
	ID         uuid.UUID  `json:"id"`
	UserID     uuid.UUID  `json:"-"`
	TenantID   *uuid.UUID `json:"tenant_id"`
	MFA        bool       `json:"mfa"`
	UserAgent  string     `json:"user_agent"`
	IP         string     `json:"ip"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt time.Time  `json:"last_used_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Current    bool       `json:"current"`
}

// RefreshPrefix marks refresh tokens so that they are recognisable in logs
// and secret scanners.
const RefreshPrefix = "edr_"

// NewSession starts a session and returns its first refresh token.
func NewSession(ctx context.Context, tx pgx.Tx, s Session, ttl time.Duration) (Session, string, error) {
	s.ID = uuid.Must(uuid.NewV7())
	err := tx.QueryRow(ctx, `INSERT INTO kernel.sessions (id, user_id, tenant_id, mfa, user_agent, ip, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval) RETURNING created_at, last_used_at, expires_at`,
		s.ID, s.UserID, s.TenantID, s.MFA, truncate(s.UserAgent, 300), s.IP, ttl.String()).Scan(&s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt)
	if err != nil {
		return Session{}, "", fmt.Errorf("creating session: %w", err)
	}
	tok, err := addRefreshToken(ctx, tx, s.ID, s.ExpiresAt)
	return s, tok, err
}

func addRefreshToken(ctx context.Context, tx pgx.Tx, sessionID uuid.UUID, expires time.Time) (string, error) {
	tok, hash := opaque.New(RefreshPrefix)
	_, err := tx.Exec(ctx, `INSERT INTO kernel.refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`, hash, sessionID, expires)
	if err != nil {
		return "", fmt.Errorf("storing refresh token: %w", err)
	}
	return tok, nil
}

// ErrRefreshReused is returned when a rotated refresh token is presented
// again: the whole session has been revoked.
var ErrRefreshReused = sdk.Errorf(sdk.ErrUnauthorized, "refresh token was already used; the session has been revoked for safety").WithCode("refresh-token-reused")

// Rotate spends a refresh token and returns its session and a new token.
// Presenting a spent token revokes the session (ErrRefreshReused): someone
// else may hold the newer one. The caller must commit the transaction even
// when ErrRefreshReused is returned, so the revocation sticks.
func Rotate(ctx context.Context, tx pgx.Tx, token string) (Session, string, error) {
	var s Session
	var usedAt *time.Time
	var tokExpires time.Time
	var revoked *time.Time
	err := tx.QueryRow(ctx, `SELECT s.id, s.user_id, s.tenant_id, s.mfa, s.expires_at, s.revoked_at, r.used_at, r.expires_at
		FROM kernel.refresh_tokens r JOIN kernel.sessions s ON s.id = r.session_id
		WHERE r.token_hash = $1 FOR UPDATE OF r, s`, opaque.Hash(token)).
		Scan(&s.ID, &s.UserID, &s.TenantID, &s.MFA, &s.ExpiresAt, &revoked, &usedAt, &tokExpires)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, "", sdk.Errorf(sdk.ErrUnauthorized, "refresh token is not valid").WithCode("invalid-refresh-token")
	}
	if err != nil {
		return Session{}, "", err
	}
	if revoked != nil {
		return Session{}, "", sdk.Errorf(sdk.ErrUnauthorized, "the session has been revoked; log in again").WithCode("session-revoked")
	}
	if usedAt != nil {
		if err := RevokeSession(ctx, tx, s.ID, "refresh token reused"); err != nil {
			return Session{}, "", err
		}
		return s, "", ErrRefreshReused
	}
	if time.Now().After(tokExpires) {
		return Session{}, "", sdk.Errorf(sdk.ErrUnauthorized, "refresh token has expired; log in again").WithCode("refresh-token-expired")
	}
	if _, err := tx.Exec(ctx, `UPDATE kernel.refresh_tokens SET used_at = now() WHERE token_hash = $1`, opaque.Hash(token)); err != nil {
		return Session{}, "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE kernel.sessions SET last_used_at = now() WHERE id = $1`, s.ID); err != nil {
		return Session{}, "", err
	}
	tok, err := addRefreshToken(ctx, tx, s.ID, s.ExpiresAt)
	return s, tok, err
}

// RevokeSession revokes one session (no-op if already revoked).
func RevokeSession(ctx context.Context, q database.Querier, id uuid.UUID, reason string) error {
	_, err := q.Exec(ctx, `UPDATE kernel.sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL`, id, reason)
	return err
}

// RevokeUserSessions revokes every session of a user except keep (may be uuid.Nil)
// and returns how many it revoked.
func RevokeUserSessions(ctx context.Context, q database.Querier, userID, keep uuid.UUID, reason string) (int64, error) {
	tag, err := q.Exec(ctx, `UPDATE kernel.sessions SET revoked_at = now(), revoked_reason = $3
		WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL`, userID, keep, reason)
	return tag.RowsAffected(), err
}

// RevokeOwnSession revokes one of the user's sessions; another user's
// session ID is not found.
func RevokeOwnSession(ctx context.Context, q database.Querier, userID, id uuid.UUID) error {
	tag, err := q.Exec(ctx, `UPDATE kernel.sessions SET revoked_at = now(), revoked_reason = 'revoked by user'
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, userID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return sdk.Errorf(sdk.ErrNotFound, "no active session %s", id)
	}
	return nil
}

// ListSessions lists a user's active sessions, newest first.
func ListSessions(ctx context.Context, q database.Querier, userID, current uuid.UUID) ([]Session, error) {
	rows, err := q.Query(ctx, `SELECT id, user_id, tenant_id, mfa, user_agent, ip, created_at, last_used_at, expires_at
		FROM kernel.sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) {
		var s Session
		err := r.Scan(&s.ID, &s.UserID, &s.TenantID, &s.MFA, &s.UserAgent, &s.IP, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt)
		s.Current = s.ID == current
		return s, err
	})
}

// RevokedSince returns sessions revoked at or after t, and the database time
// of the query (for the next call).
func RevokedSince(ctx context.Context, q database.Querier, t time.Time) ([]uuid.UUID, time.Time, error) {
	var now time.Time
	if err := q.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, t, err
	}
	rows, err := q.Query(ctx, `SELECT id FROM kernel.sessions WHERE revoked_at >= $1`, t)
	if err != nil {
		return nil, t, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return ids, now, err
}

// truncate makes s valid text of at most n bytes: bytes that are not
// UTF-8 (a header may carry any) become U+FFFD, and the cut falls
// between characters, so that Postgres stores it (SQLSTATE 22021
// otherwise) and NUL characters are dropped.
func truncate(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
