package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/opaque"
	"github.com/edulure/edulure/sdk"
)

// APIKeyPrefix starts every API key: "edk_<key id>_<secret>".
const APIKeyPrefix = "edk_"

// APIKey is a service account's credential. The secret is never stored.
type APIKey struct {
	ID          uuid.UUID  `json:"id"`
	TenantID    uuid.UUID  `json:"tenant_id"`
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	CreatedBy   *uuid.UUID `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

// CreateAPIKey stores a key and returns it with its full secret, which the
// caller shows once.
func CreateAPIKey(ctx context.Context, tx pgx.Tx, k APIKey) (APIKey, string, error) {
	k.ID = uuid.Must(uuid.NewV7())
	secret, _ := opaque.New("")
	full := APIKeyPrefix + strings.ReplaceAll(k.ID.String(), "-", "") + "_" + secret
	err := tx.QueryRow(ctx, `INSERT INTO kernel.api_keys (id, tenant_id, name, secret_hash, permissions, created_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
		k.ID, k.TenantID, k.Name, opaque.Hash(full), k.Permissions, k.CreatedBy, k.ExpiresAt).Scan(&k.CreatedAt)
	if err != nil {
		return APIKey{}, "", fmt.Errorf("storing API key: %w", err)
	}
	return k, full, nil
}

const apiKeyColumns = `id, tenant_id, name, permissions, created_by, created_at, expires_at, revoked_at, last_used_at`

func scanAPIKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	err := row.Scan(&k.ID, &k.TenantID, &k.Name, &k.Permissions, &k.CreatedBy, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt)
	return k, err
}

// ListAPIKeys lists a tenant's keys, newest first.
func ListAPIKeys(ctx context.Context, q database.Querier, tenantID uuid.UUID) ([]APIKey, error) {
	rows, err := q.Query(ctx, `SELECT `+apiKeyColumns+` FROM kernel.api_keys WHERE tenant_id = $1 ORDER BY created_at DESC`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanAPIKey(r) })
}

// RevokeAPIKey revokes a key of the tenant; another tenant's key is not found.
func RevokeAPIKey(ctx context.Context, q database.Querier, tenantID, id uuid.UUID) (APIKey, error) {
	k, err := scanAPIKey(q.QueryRow(ctx, `UPDATE kernel.api_keys SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 AND tenant_id = $2 RETURNING `+apiKeyColumns, id, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, sdk.Errorf(sdk.ErrNotFound, "no API key %s in this institution", id)
	}
	return k, err
}

// AuthenticateAPIKey resolves a presented key. It records the last use at
// most once a minute, to keep writes off the hot path.
func AuthenticateAPIKey(ctx context.Context, q database.Querier, presented string) (APIKey, error) {
	bad := sdk.Errorf(sdk.ErrUnauthorized, "API key is not valid").WithCode("invalid-api-key")
	rest, ok := strings.CutPrefix(presented, APIKeyPrefix)
	if !ok || len(presented) > 200 {
		return APIKey{}, bad
	}
	idHex, _, ok := strings.Cut(rest, "_")
	id, err := uuid.Parse(idHex)
	if !ok || err != nil {
		return APIKey{}, bad
	}
	var hash []byte
	var k APIKey
	err = q.QueryRow(ctx, `SELECT `+apiKeyColumns+`, secret_hash FROM kernel.api_keys WHERE id = $1`, id).
		Scan(&k.ID, &k.TenantID, &k.Name, &k.Permissions, &k.CreatedBy, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, bad
	}
	if err != nil {
		return APIKey{}, err
	}
	if string(hash) != string(opaque.Hash(presented)) {
		return APIKey{}, bad
	}
	if k.RevokedAt != nil {
		return APIKey{}, sdk.Errorf(sdk.ErrUnauthorized, "API key has been revoked").WithCode("api-key-revoked")
	}
	now := time.Now()
	if k.ExpiresAt != nil && now.After(*k.ExpiresAt) {
		return APIKey{}, sdk.Errorf(sdk.ErrUnauthorized, "API key has expired").WithCode("api-key-expired")
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
		if _, err := q.Exec(ctx, `UPDATE kernel.api_keys SET last_used_at = now() WHERE id = $1`, k.ID); err != nil {
			return APIKey{}, err
		}
		k.LastUsedAt = &now
	}
	return k, nil
}

// RevokeKeysCreatedBy revokes every live API key a user created, in any
// institution, and returns how many.
func RevokeKeysCreatedBy(ctx context.Context, q database.Querier, userID uuid.UUID) (int64, error) {
	tag, err := q.Exec(ctx, `UPDATE kernel.api_keys SET revoked_at = now() WHERE created_by = $1 AND revoked_at IS NULL`, userID)
	return tag.RowsAffected(), err
}
