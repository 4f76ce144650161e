package tenancy

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

// InvitationPrefix marks invitation tokens.
const InvitationPrefix = "edi_"

// InvitationTTL is how long an invitation stays valid.
const InvitationTTL = 7 * 24 * time.Hour

// Invitation is an offer to join a tenant with roles.
type Invitation struct {
	ID         uuid.UUID  `json:"id"`
	TenantID   uuid.UUID  `json:"tenant_id"`
	Email      string     `json:"email"`
	Roles      []string   `json:"roles"`
	InvitedBy  *uuid.UUID `json:"invited_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	AcceptedAt *time.Time `json:"accepted_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Status     string     `json:"status"` // pending, accepted, revoked, expired
}

// CreateInvitation stores an invitation and returns it with its token, which
// is sent to the invitee (and shown once to the inviter).
func CreateInvitation(ctx context.Context, tx pgx.Tx, inv Invitation) (Invitation, string, error) {
	tok, hash := opaque.New(InvitationPrefix)
	inv.ID = uuid.Must(uuid.NewV7())
	err := tx.QueryRow(ctx, `INSERT INTO kernel.invitations (id, tenant_id, email, roles, token_hash, invited_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval) RETURNING created_at, expires_at`,
		inv.ID, inv.TenantID, inv.Email, inv.Roles, hash, inv.InvitedBy, InvitationTTL.String()).Scan(&inv.CreatedAt, &inv.ExpiresAt)
	inv.Status = "pending"
	return inv, tok, err
}

const invitationColumns = `id, tenant_id, email, roles, invited_by, created_at, expires_at, accepted_at, revoked_at`

func scanInvitation(row pgx.Row) (Invitation, error) {
	var i Invitation
	err := row.Scan(&i.ID, &i.TenantID, &i.Email, &i.Roles, &i.InvitedBy, &i.CreatedAt, &i.ExpiresAt, &i.AcceptedAt, &i.RevokedAt)
	switch {
	case i.AcceptedAt != nil:
		i.Status = "accepted"
	case i.RevokedAt != nil:
		i.Status = "revoked"
	case time.Now().After(i.ExpiresAt):
		i.Status = "expired"
	default:
		i.Status = "pending"
	}
	return i, err
}

// ListInvitations lists a tenant's invitations, newest first, before the given ID.
func ListInvitations(ctx context.Context, q database.Querier, tenantID uuid.UUID, before uuid.UUID, limit int) ([]Invitation, error) {
	rows, err := q.Query(ctx, `SELECT `+invitationColumns+` FROM kernel.invitations
		WHERE tenant_id = $1 AND ($2 = '00000000-0000-0000-0000-000000000000'::uuid OR id < $2) ORDER BY id DESC LIMIT $3`, tenantID, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invitation, error) { return scanInvitation(r) })
}

// RevokeInvitation revokes a pending invitation of the tenant.
func RevokeInvitation(ctx context.Context, tx pgx.Tx, tenantID, id uuid.UUID) (Invitation, error) {
	inv, err := scanInvitation(tx.QueryRow(ctx, `SELECT `+invitationColumns+` FROM kernel.invitations WHERE id = $1 AND tenant_id = $2 FOR UPDATE`, id, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Invitation{}, sdk.Errorf(sdk.ErrNotFound, "no invitation %s in this institution", id)
	}
	if err != nil {
		return Invitation{}, err
	}
	if inv.Status != "pending" {
		return Invitation{}, sdk.Errorf(sdk.ErrConflict, "the invitation is %s, not pending", inv.Status).WithCode("invitation-not-pending")
	}
	_, err = tx.Exec(ctx, `UPDATE kernel.invitations SET revoked_at = now() WHERE id = $1`, id)
	inv.Status = "revoked"
	return inv, err
}

// ErrInvitation is an unknown, spent, revoked or expired invitation token.
var ErrInvitation = sdk.Errorf(sdk.ErrGone, "the invitation is not valid, has expired, was revoked or was already used").WithCode("invalid-invitation")

// AcceptInvitation spends an invitation for a user whose email matches it
// and adds the membership. It returns the invitation.
func AcceptInvitation(ctx context.Context, tx pgx.Tx, token string, userID uuid.UUID, email string) (Invitation, error) {
	if !strings.HasPrefix(token, InvitationPrefix) || len(token) > 200 {
		return Invitation{}, ErrInvitation
	}
	inv, err := scanInvitation(tx.QueryRow(ctx, `SELECT `+invitationColumns+` FROM kernel.invitations WHERE token_hash = $1 FOR UPDATE`, opaque.Hash(token)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Invitation{}, ErrInvitation
	}
	if err != nil {
		return Invitation{}, err
	}
	if inv.Status != "pending" {
		return Invitation{}, ErrInvitation
	}
	if !strings.EqualFold(inv.Email, email) {
		return Invitation{}, sdk.Errorf(sdk.ErrForbidden, "this invitation was sent to another email address").WithCode("invitation-email-mismatch")
	}
	if _, err := tx.Exec(ctx, `UPDATE kernel.invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1`, inv.ID, userID); err != nil {
		return Invitation{}, err
	}
	if err := AddMember(ctx, tx, inv.TenantID, userID, inv.Roles); err != nil {
		return Invitation{}, err
	}
	inv.Status = "accepted"
	return inv, nil
}
