package httpapi

import (
	"context"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/sdk"
)

// The rule behind every grant: nobody gives what they do not hold. An API
// key gets a subset of its creator's permissions; a role is granted, an
// invitation names roles, and a role is defined only with permissions the
// caller holds themselves (one's own roles included). Taking away is not a
// grant and is not limited.

// heldPermissions is everything the principal may do in its institution:
// a user's roles' grants, or an API key's permissions as far as its
// creator still holds them.
func (s *Server) heldPermissions(ctx context.Context, p *Principal) ([]string, error) {
	return s.Authz.Granted(ctx, s.authzInput(p, ""))
}

// rolePermissions is what holding roles grants in an institution, by its
// current definitions.
func (s *Server) rolePermissions(ctx context.Context, tenantID uuid.UUID, roles []string) ([]string, error) {
	return s.Authz.Granted(ctx, authz.Input{Subject: authz.Subject{Type: "user"}, Roles: roles, Tenant: tenantID.String()})
}

// checkRoleGrants refuses requested roles (field.i) that grant a permission
// the caller lacks. Roles in already (the member holds them) are not
// granted by the request and are not checked.
func (s *Server) checkRoleGrants(c echo.Context, p *Principal, field string, requested, already []string) error {
	ctx := c.Request().Context()
	held, err := s.heldPermissions(ctx, p)
	if err != nil {
		return err
	}
	var fe fieldErrors
	for i, role := range requested {
		if slices.Contains(already, role) {
			continue
		}
		perms, err := s.rolePermissions(ctx, p.TenantID, []string{role})
		if err != nil {
			return err
		}
		var missing []string
		for _, perm := range perms {
			if !slices.Contains(held, perm) {
				missing = append(missing, perm)
			}
		}
		if len(missing) > 0 {
			fe.addf(field+"."+itoa(i), "role %q grants %s, which you do not hold", role, strings.Join(missing, ", "))
		}
	}
	return exceedsOwn(fe)
}

// exceedsOwn is the 403 for a grant beyond the caller's own permissions, or
// nil when fe is empty.
func exceedsOwn(fe fieldErrors) error {
	if len(fe) == 0 {
		return nil
	}
	return &sdk.Error{
		Kind: sdk.ErrForbidden, Code: "exceeds-own-permissions",
		Detail: "you can grant only permissions you hold yourself: " + fe[0].Field + ": " + fe[0].Message,
		Fields: fe,
	}
}
