package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/sdk"
)

// Member is a user's membership in a tenant.
type Member struct {
	UserID      uuid.UUID `json:"user_id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Roles       []string  `json:"roles"`
	MFAEnabled  bool      `json:"mfa_enabled"`
	// EmailVerified: the member has shown they read mail sent to Email;
	// until then they can be given no further role.
	EmailVerified bool      `json:"email_verified"`
	JoinedAt      time.Time `json:"joined_at"`
}

// AddMember adds a user to a tenant with roles. A user already a member is
// a conflict.
func AddMember(ctx context.Context, tx pgx.Tx, tenantID, userID uuid.UUID, roles []string) error {
	_, err := tx.Exec(ctx, `INSERT INTO kernel.memberships (tenant_id, user_id, roles) VALUES ($1, $2, $3)`, tenantID, userID, roles)
	if database.IsUniqueViolation(err, "memberships_pkey") {
		return sdk.Errorf(sdk.ErrConflict, "already a member of this institution").WithCode("already-member")
	}
	if err != nil {
		return fmt.Errorf("adding member: %w", err)
	}
	return notifyMembership(ctx, tx, tenantID, userID)
}

const memberSelect = `SELECT m.user_id, u.email, u.display_name, m.roles, u.mfa_enabled_at IS NOT NULL, u.email_verified_at IS NOT NULL, m.created_at
	FROM kernel.memberships m JOIN kernel.users u ON u.id = m.user_id`

func scanMember(row pgx.Row) (Member, error) {
	var m Member
	err := row.Scan(&m.UserID, &m.Email, &m.DisplayName, &m.Roles, &m.MFAEnabled, &m.EmailVerified, &m.JoinedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, sdk.Errorf(sdk.ErrNotFound, "no such member in this institution")
	}
	return m, err
}

// GetMember loads one member of a tenant.
func GetMember(ctx context.Context, q database.Querier, tenantID, userID uuid.UUID) (Member, error) {
	return scanMember(q.QueryRow(ctx, memberSelect+` WHERE m.tenant_id = $1 AND m.user_id = $2`, tenantID, userID))
}

// ListMembers pages through a tenant's members by user ID, after the given ID.
func ListMembers(ctx context.Context, q database.Querier, tenantID uuid.UUID, after uuid.UUID, limit int) ([]Member, error) {
	rows, err := q.Query(ctx, memberSelect+` WHERE m.tenant_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3`, tenantID, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) { return scanMember(r) })
}

// SetMemberRoles replaces a member's roles and returns the previous ones.
func SetMemberRoles(ctx context.Context, tx pgx.Tx, tenantID, userID uuid.UUID, roles []string) ([]string, error) {
	var before []string
	err := tx.QueryRow(ctx, `SELECT roles FROM kernel.memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE`, tenantID, userID).Scan(&before)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no such member in this institution")
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE kernel.memberships SET roles = $3, updated_at = now() WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID, roles); err != nil {
		return nil, err
	}
	return before, notifyMembership(ctx, tx, tenantID, userID)
}

// RemoveMember removes a member.
func RemoveMember(ctx context.Context, tx pgx.Tx, tenantID, userID uuid.UUID) error {
	tag, err := tx.Exec(ctx, `DELETE FROM kernel.memberships WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return sdk.Errorf(sdk.ErrNotFound, "no such member in this institution")
	}
	return notifyMembership(ctx, tx, tenantID, userID)
}

// CountAdmins counts members holding the admin role, excluding one user.
func CountAdmins(ctx context.Context, q database.Querier, tenantID, except uuid.UUID) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM kernel.memberships WHERE tenant_id = $1 AND user_id <> $2 AND 'admin' = ANY(roles)`, tenantID, except).Scan(&n)
	return n, err
}

// MemberRoles returns a user's roles in a tenant, or ErrNotFound.
func MemberRoles(ctx context.Context, q database.Querier, tenantID, userID uuid.UUID) ([]string, error) {
	var roles []string
	// An institution being offboarded has no members any more.
	err := q.QueryRow(ctx, `SELECT m.roles FROM kernel.memberships m JOIN kernel.tenants t ON t.id = m.tenant_id
		WHERE m.tenant_id = $1 AND m.user_id = $2 AND t.offboarding_at IS NULL`, tenantID, userID).Scan(&roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrForbidden, "you are not a member of this institution").WithCode("not-a-member")
	}
	return roles, err
}

// Membership is one of a user's tenants.
type Membership struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Slug     string    `json:"slug"`
	Name     string    `json:"name"`
	Roles    []string  `json:"roles"`
}

// UserMemberships lists the tenants a user belongs to.
func UserMemberships(ctx context.Context, q database.Querier, userID uuid.UUID) ([]Membership, error) {
	rows, err := q.Query(ctx, `SELECT t.id, t.slug, t.name, m.roles FROM kernel.memberships m JOIN kernel.tenants t ON t.id = m.tenant_id
		WHERE m.user_id = $1 AND t.offboarding_at IS NULL ORDER BY t.slug`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) {
		var m Membership
		return m, r.Scan(&m.TenantID, &m.Slug, &m.Name, &m.Roles)
	})
}

// Change topics published on the edulure_changes channel when the
// transaction commits; every replica drops its cached copy.
const (
	TopicMembership = "membership" // arg: "<tenant>:<user>"
	TopicRoles      = "roles"      // arg: "<tenant>"
)

func notifyMembership(ctx context.Context, tx pgx.Tx, tenantID, userID uuid.UUID) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify('edulure_changes', $1)`, TopicMembership+":"+tenantID.String()+":"+userID.String())
	return err
}
