package tenancy

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/sdk"
)

// Role is a role as a tenant sees it: built-in (with the shipped or the
// tenant's overridden grants) or custom.
type Role struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Permissions []string   `json:"permissions"`
	Builtin     bool       `json:"builtin"`
	Customised  bool       `json:"customised"` // a built-in role whose grants the tenant changed
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
}

// RoleName is the form of a role name.
var RoleName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// StoredRoles returns a tenant's role rows: custom roles and overrides.
func StoredRoles(ctx context.Context, q database.Querier, tenantID uuid.UUID) ([]Role, error) {
	rows, err := q.Query(ctx, `SELECT name, description, permissions, builtin, updated_at FROM kernel.roles WHERE tenant_id = $1 ORDER BY name`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Role, error) {
		var x Role
		var at time.Time
		err := r.Scan(&x.Name, &x.Description, &x.Permissions, &x.Builtin, &at)
		x.UpdatedAt = &at
		x.Customised = x.Builtin
		return x, err
	})
}

// AllStoredRoles returns every tenant's role rows, for loading the policy data.
func AllStoredRoles(ctx context.Context, q database.Querier) (map[uuid.UUID]map[string][]string, error) {
	rows, err := q.Query(ctx, `SELECT tenant_id, name, permissions FROM kernel.roles`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]map[string][]string{}
	for rows.Next() {
		var t uuid.UUID
		var name string
		var perms []string
		if err := rows.Scan(&t, &name, &perms); err != nil {
			return nil, err
		}
		if out[t] == nil {
			out[t] = map[string][]string{}
		}
		out[t][name] = perms
	}
	return out, rows.Err()
}

// EffectiveRoles merges the built-in defaults with a tenant's rows.
func EffectiveRoles(stored []Role, builtin []string, defaults map[string][]string, descriptions map[string]string) []Role {
	byName := map[string]Role{}
	for _, b := range builtin {
		byName[b] = Role{Name: b, Description: descriptions[b], Permissions: defaults[b], Builtin: true}
	}
	for _, r := range stored {
		if b, ok := byName[r.Name]; ok && r.Description == "" {
			r.Description = b.Description
		}
		r.Builtin = slices.Contains(builtin, r.Name)
		byName[r.Name] = r
	}
	out := make([]Role, 0, len(byName))
	for _, r := range byName {
		if r.Permissions == nil {
			r.Permissions = []string{}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Builtin != out[j].Builtin {
			return out[i].Builtin
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// PutRole creates or replaces a tenant's role row.
func PutRole(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, r Role) error {
	_, err := tx.Exec(ctx, `INSERT INTO kernel.roles (tenant_id, name, description, permissions, builtin) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, name) DO UPDATE SET description = excluded.description, permissions = excluded.permissions, updated_at = now()`,
		tenantID, r.Name, r.Description, r.Permissions, r.Builtin)
	if err != nil {
		return err
	}
	return notifyRoles(ctx, tx, tenantID)
}

// DeleteRole removes a tenant's role row: a custom role disappears, a
// built-in role returns to its defaults.
func DeleteRole(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, name string) error {
	tag, err := tx.Exec(ctx, `DELETE FROM kernel.roles WHERE tenant_id = $1 AND name = $2`, tenantID, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return sdk.Errorf(sdk.ErrNotFound, "no role %q defined in this institution", name)
	}
	return notifyRoles(ctx, tx, tenantID)
}

// RoleInUse reports how many members hold a role.
func RoleInUse(ctx context.Context, q database.Querier, tenantID uuid.UUID, name string) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM kernel.memberships WHERE tenant_id = $1 AND $2 = ANY(roles)`, tenantID, name).Scan(&n)
	return n, err
}

// CustomRoleExists reports whether a tenant defines a custom role.
func CustomRoleExists(ctx context.Context, q database.Querier, tenantID uuid.UUID, name string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM kernel.roles WHERE tenant_id = $1 AND name = $2)`, tenantID, name).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return ok, err
}

func notifyRoles(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify('edulure_changes', $1)`, TopicRoles+":"+tenantID.String())
	return err
}
