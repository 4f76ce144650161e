package tenancy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/sdk"
)

// Tenant is an institution.
type Tenant struct {
	ID               uuid.UUID `json:"id"`
	Slug             string    `json:"slug"`
	Name             string    `json:"name"`
	SelfSignup       bool      `json:"self_signup"`
	MFARequiredRoles []string  `json:"mfa_required_roles"`
	// ErasureCoolOffHours is how long an erasure request waits before it
	// runs, during which it can be cancelled (default 168: 7 days).
	ErasureCoolOffHours int       `json:"erasure_cool_off_hours"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// SlugPattern is the form of a tenant slug.
var SlugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateSlug checks a slug.
func ValidateSlug(slug string) *sdk.FieldError {
	if !SlugPattern.MatchString(slug) {
		return &sdk.FieldError{Field: "slug", Message: "must be 1 to 63 lowercase letters, digits and inner hyphens"}
	}
	return nil
}

// ValidateName checks an institution name.
func ValidateName(name string) (string, *sdk.FieldError) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 || strings.ContainsAny(name, "\x00\r\n") {
		return "", &sdk.FieldError{Field: "name", Message: "must be 1 to 200 characters on one line"}
	}
	return name, nil
}

// CreateTenant creates an institution.
func CreateTenant(ctx context.Context, tx pgx.Tx, slug, name string) (Tenant, error) {
	t := Tenant{ID: uuid.Must(uuid.NewV7()), Slug: slug, Name: name, MFARequiredRoles: []string{}, ErasureCoolOffHours: DefaultErasureCoolOffHours}
	err := tx.QueryRow(ctx, `INSERT INTO kernel.tenants (id, slug, name) VALUES ($1, $2, $3) RETURNING created_at, updated_at`,
		t.ID, slug, name).Scan(&t.CreatedAt, &t.UpdatedAt)
	if database.IsUniqueViolation(err, "tenants_slug_key") {
		return Tenant{}, sdk.Errorf(sdk.ErrConflict, "an institution with slug %q already exists", slug).WithCode("slug-taken")
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("creating tenant: %w", err)
	}
	return t, nil
}

const tenantColumns = `id, slug, name, self_signup, mfa_required_roles, erasure_cool_off_hours, created_at, updated_at`

func scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Slug, &t.Name, &t.SelfSignup, &t.MFARequiredRoles, &t.ErasureCoolOffHours, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, sdk.Errorf(sdk.ErrNotFound, "no such institution")
	}
	return t, err
}

// GetTenant loads a tenant by ID.
func GetTenant(ctx context.Context, q database.Querier, id uuid.UUID) (Tenant, error) {
	return scanTenant(q.QueryRow(ctx, `SELECT `+tenantColumns+` FROM kernel.tenants WHERE id = $1`, id))
}

// GetTenantBySlug loads a tenant by slug.
func GetTenantBySlug(ctx context.Context, q database.Querier, slug string) (Tenant, error) {
	t, err := scanTenant(q.QueryRow(ctx, `SELECT `+tenantColumns+` FROM kernel.tenants WHERE slug = $1`, slug))
	if errors.Is(err, sdk.ErrNotFound) {
		return Tenant{}, sdk.Errorf(sdk.ErrNotFound, "no institution with slug %q", slug)
	}
	return t, err
}

// ListTenants pages through tenants by slug, after the given slug.
func ListTenants(ctx context.Context, q database.Querier, after string, limit int) ([]Tenant, error) {
	rows, err := q.Query(ctx, `SELECT `+tenantColumns+` FROM kernel.tenants WHERE slug > $1 ORDER BY slug LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tenant, error) { return scanTenant(r) })
}

// Settings are the fields a tenant admin may change; nil leaves a field alone.
type Settings struct {
	Name                *string
	SelfSignup          *bool
	MFARequiredRoles    *[]string
	ErasureCoolOffHours *int
}

// The erasure cool-off: its default and its bounds, in hours.
const (
	DefaultErasureCoolOffHours = 168
	MaxErasureCoolOffHours     = 2160
)

// UpdateSettings changes a tenant's settings and returns the result.
func UpdateSettings(ctx context.Context, tx pgx.Tx, id uuid.UUID, s Settings) (Tenant, error) {
	return scanTenant(tx.QueryRow(ctx, `UPDATE kernel.tenants SET
		name = coalesce($2, name), self_signup = coalesce($3, self_signup),
		mfa_required_roles = coalesce($4, mfa_required_roles), erasure_cool_off_hours = coalesce($5, erasure_cool_off_hours), updated_at = now()
		WHERE id = $1 RETURNING `+tenantColumns, id, s.Name, s.SelfSignup, s.MFARequiredRoles, s.ErasureCoolOffHours))
}
