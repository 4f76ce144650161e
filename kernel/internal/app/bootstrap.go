package app

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
)

// CreateTenant creates an institution from the command line (audited as the
// system acting for an operator at the console).
func CreateTenant(ctx context.Context, pool *pgxpool.Pool, slug, name string) (tenancy.Tenant, error) {
	if fe := tenancy.ValidateSlug(slug); fe != nil {
		return tenancy.Tenant{}, sdk.Invalid(*fe)
	}
	name, fe := tenancy.ValidateName(name)
	if fe != nil {
		return tenancy.Tenant{}, sdk.Invalid(*fe)
	}
	var t tenancy.Tenant
	err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if t, err = tenancy.CreateTenant(ctx, tx, slug, name); err != nil {
			return err
		}
		if _, err := outbox.Add(ctx, tx, outbox.Event{Type: outbox.TenantCreated, TenantID: t.ID.String(), Actor: "system:cli", Data: map[string]any{"tenant_id": t.ID, "slug": slug, "name": name}}); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{ActorType: "system", ActorID: "cli", Action: "platform.tenant.created", Target: t.ID.String(), Data: map[string]any{"slug": slug}})
	})
	return t, err
}

// UserSpec describes a user created from the command line.
type UserSpec struct {
	Email, Name, Password string
	Operator              bool
	Tenant                string   // slug to join, optional
	Roles                 []string // roles in Tenant
}

// CreateUser creates a user (and membership) from the command line. A new
// user's address counts as verified (the operator vouches for it). An
// existing user with that email is reused for the membership if their
// address is verified.
func CreateUser(ctx context.Context, pool *pgxpool.Pool, s UserSpec) (identity.User, error) {
	email, fe := identity.ValidateEmail(s.Email)
	if fe != nil {
		return identity.User{}, sdk.Invalid(*fe)
	}
	name, fe := identity.ValidateDisplayName(s.Name)
	if fe != nil {
		return identity.User{}, sdk.Invalid(*fe)
	}
	var u identity.User
	err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		u, err = identity.GetUserByEmail(ctx, tx, email)
		if errors.Is(err, sdk.ErrNotFound) {
			if fe := identity.ValidatePassword("password", s.Password, email); fe != nil {
				return sdk.Invalid(*fe)
			}
			if u, err = identity.CreateUser(ctx, tx, email, name, s.Password, s.Operator); err != nil {
				return err
			}
			// The operator at the console vouches for the address.
			if _, err := identity.MarkEmailVerified(ctx, tx, u.ID); err != nil {
				return err
			}
			u.EmailVerified = true
			if _, err := outbox.Add(ctx, tx, outbox.Event{Type: outbox.UserCreated, Actor: "system:cli", Data: map[string]any{"user_id": u.ID, "email": email, "display_name": name}}); err != nil {
				return err
			}
			if _, err := outbox.Add(ctx, tx, outbox.Event{Type: outbox.EmailVerified, Actor: "system:cli", Data: map[string]any{"user_id": u.ID, "email": email}}); err != nil {
				return err
			}
			if err := audit.Append(ctx, tx, audit.Entry{ActorType: "system", ActorID: "cli", Action: "identity.user.created", Target: u.ID.String(), Data: map[string]any{"operator": s.Operator}}); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if s.Tenant == "" {
			return nil
		}
		// An existing account whose address nobody has proven may belong
		// to someone who signed up with another person's address: it gets
		// no role from the console either.
		if !u.EmailVerified {
			return sdk.Errorf(sdk.ErrConflict, "the account %s has not verified its email address, so it is given no role; invite the address instead (POST /api/v1/tenant/invitations), or have its owner verify it first", email).WithCode("email-unverified")
		}
		t, err := tenancy.GetTenantBySlug(ctx, tx, s.Tenant)
		if err != nil {
			return err
		}
		roles := s.Roles
		if len(roles) == 0 {
			roles = []string{"learner"}
		}
		if err := tenancy.AddMember(ctx, tx, t.ID, u.ID, roles); err != nil {
			return err
		}
		if _, err := outbox.Add(ctx, tx, outbox.Event{Type: outbox.MemberJoined, TenantID: t.ID.String(), Actor: "system:cli", Data: map[string]any{"user_id": u.ID, "roles": roles}}); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{TenantID: t.ID.String(), ActorType: "system", ActorID: "cli", Action: "tenancy.member.joined", Target: u.ID.String(), Data: map[string]any{"roles": roles}})
	})
	return u, err
}
