package httpapi

import (
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
)

// CreateTenantRequest creates an institution. With admin_email, the person
// becomes its first admin: at once if they have an account whose address is
// verified, else by an invitation (returned, and sent as an event).
type CreateTenantRequest struct {
	Slug       string `json:"slug"`
	Name       string `json:"name"`
	AdminEmail string `json:"admin_email,omitempty"`
}

// TenantCreated is the new institution and how its first admin was set up.
type TenantCreated struct {
	tenancy.Tenant
	Admin           *tenancy.Member    `json:"admin,omitempty"`
	AdminInvitation *InvitationCreated `json:"admin_invitation,omitempty"`
}

func (s *Server) createTenant(c echo.Context) error {
	var req CreateTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var fe fieldErrors
	fe.add(tenancy.ValidateSlug(req.Slug))
	name, e := tenancy.ValidateName(req.Name)
	fe.add(e)
	var email string
	if req.AdminEmail != "" {
		var e *sdk.FieldError
		email, e = identity.ValidateEmail(req.AdminEmail)
		if e != nil {
			e.Field = "admin_email"
		}
		fe.add(e)
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out TenantCreated
	err := s.inTx(c, func(t *txc) error {
		tn, err := tenancy.CreateTenant(ctx, t, req.Slug, name)
		if err != nil {
			return err
		}
		out.Tenant = tn
		if err := t.event(outbox.TenantCreated, tn.ID, map[string]any{"tenant_id": tn.ID, "slug": tn.Slug, "name": tn.Name}); err != nil {
			return err
		}
		if err := t.audit(uuid.Nil, "platform.tenant.created", tn.ID.String(), map[string]any{"slug": tn.Slug, "name": tn.Name}); err != nil {
			return err
		}
		if err := t.audit(tn.ID, "tenancy.tenant.created", tn.ID.String(), map[string]any{"slug": tn.Slug}); err != nil {
			return err
		}
		if email == "" {
			return nil
		}
		// Only an account that has proven it owns the address becomes admin
		// at once; anyone else (no account, or an unverified one, which
		// anybody could have signed up) gets an invitation sent there.
		u, err := identity.GetUserByEmail(ctx, t, email)
		if err == nil && !u.EmailVerified {
			err = sdk.ErrNotFound
		}
		switch {
		case err == nil:
			if err := tenancy.AddMember(ctx, t, tn.ID, u.ID, []string{"admin"}); err != nil {
				return err
			}
			m, err := tenancy.GetMember(ctx, t, tn.ID, u.ID)
			if err != nil {
				return err
			}
			out.Admin = &m
			if err := t.event(outbox.MemberJoined, tn.ID, map[string]any{"user_id": u.ID, "roles": []string{"admin"}}); err != nil {
				return err
			}
			return t.audit(tn.ID, "tenancy.member.joined", u.ID.String(), map[string]any{"roles": []string{"admin"}})
		case errors.Is(err, sdk.ErrNotFound):
			inv, tok, err := tenancy.CreateInvitation(ctx, t, tenancy.Invitation{TenantID: tn.ID, Email: email, Roles: []string{"admin"}})
			if err != nil {
				return err
			}
			out.AdminInvitation = &InvitationCreated{Invitation: inv, Token: tok}
			if err := t.event(outbox.InvitationCreated, tn.ID, map[string]any{
				"invitation_id": inv.ID, "email": email, "roles": inv.Roles, "token": tok,
				"tenant_slug": tn.Slug, "tenant_name": tn.Name, "expires_at": inv.ExpiresAt,
			}); err != nil {
				return err
			}
			return t.audit(tn.ID, "tenancy.invitation.created", inv.ID.String(), map[string]any{"email": email, "roles": inv.Roles})
		default:
			return err
		}
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listTenants(c echo.Context) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	after, err := afterString(pg)
	if err != nil {
		return err
	}
	ts, err := tenancy.ListTenants(c.Request().Context(), s.Pool, after, pg.Limit+1)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(ts, pg.Limit, func(t tenancy.Tenant) []string { return key(t.Slug) }))
}

func (s *Server) getTenantByID(c echo.Context) error {
	id, err := pathUUID(c, "tenant_id")
	if err != nil {
		return err
	}
	tn, err := tenancy.GetTenant(c.Request().Context(), s.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tn)
}

func (s *Server) listKeys(c echo.Context) error {
	return c.JSON(http.StatusOK, whole(s.Keyring.Keys()))
}

// RotatedResponse names the new signing key.
type RotatedResponse struct {
	KID string `json:"kid"`
}

func (s *Server) rotateKey(c echo.Context) error {
	kid, err := s.Keyring.Rotate(c.Request().Context())
	if err != nil {
		return err
	}
	if err := s.inTx(c, func(t *txc) error { return t.audit(uuid.Nil, "platform.keys.rotated", kid, nil) }); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, RotatedResponse{KID: kid})
}

func (s *Server) retireKey(c echo.Context) error {
	kid := c.Param("kid")
	known := false
	for _, k := range s.Keyring.Keys() {
		known = known || (k.KID == kid && !k.Retired)
	}
	if !known {
		return sdk.Errorf(sdk.ErrNotFound, "no unretired signing key %q", kid)
	}
	if err := s.Keyring.Retire(c.Request().Context(), kid); err != nil {
		return sdk.Errorf(sdk.ErrConflict, "%v", err).WithCode("cannot-retire-key")
	}
	if err := s.inTx(c, func(t *txc) error { return t.audit(uuid.Nil, "platform.keys.retired", kid, nil) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) platformAudit(c echo.Context) error { return s.listAudit(c, uuid.Nil) }

func (s *Server) verifyPlatformAudit(c echo.Context) error {
	res, err := audit.Verify(c.Request().Context(), s.Pool, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
