package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
)

func (s *Server) getTenant(c echo.Context) error {
	tn, err := tenancy.GetTenant(c.Request().Context(), s.Pool, principalOf(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tn)
}

// UpdateTenantRequest changes the caller's institution; absent fields stay.
type UpdateTenantRequest struct {
	Name             *string   `json:"name,omitempty"`
	SelfSignup       *bool     `json:"self_signup,omitempty"`
	MFARequiredRoles *[]string `json:"mfa_required_roles,omitempty"`
	// ErasureCoolOffHours is how long an erasure request waits, cancellable,
	// before it runs: 0 to 2160 hours.
	ErasureCoolOffHours *int `json:"erasure_cool_off_hours,omitempty"`
}

func (s *Server) updateTenant(c echo.Context) error {
	var req UpdateTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var fe fieldErrors
	if req.Name != nil {
		name, e := tenancy.ValidateName(*req.Name)
		fe.add(e)
		req.Name = &name
	}
	if h := req.ErasureCoolOffHours; h != nil && (*h < 0 || *h > tenancy.MaxErasureCoolOffHours) {
		fe.addf("erasure_cool_off_hours", "must be from 0 to %d hours", tenancy.MaxErasureCoolOffHours)
	}
	var out tenancy.Tenant
	err := s.inTx(c, func(t *txc) error {
		if req.MFARequiredRoles != nil {
			roles, e := s.validateRoleList(c, t, p.TenantID, "mfa_required_roles", *req.MFARequiredRoles, true)
			fe = append(fe, e...)
			req.MFARequiredRoles = &roles
		}
		if err := fe.err(); err != nil {
			return err
		}
		var err error
		out, err = tenancy.UpdateSettings(ctx, t, p.TenantID, tenancy.Settings{Name: req.Name, SelfSignup: req.SelfSignup, MFARequiredRoles: req.MFARequiredRoles, ErasureCoolOffHours: req.ErasureCoolOffHours})
		if err != nil {
			return err
		}
		return t.audit(p.TenantID, "tenancy.settings.updated", p.TenantID.String(), map[string]any{"settings": req})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// validateRoleList checks that each role exists in the tenant (built-in or
// custom) and returns the list deduplicated and sorted.
func (s *Server) validateRoleList(c echo.Context, t *txc, tenantID uuid.UUID, field string, roles []string, allowEmpty bool) ([]string, fieldErrors) {
	var fe fieldErrors
	if len(roles) == 0 && !allowEmpty {
		fe.addf(field, "must name at least one role")
	}
	if len(roles) > 50 {
		fe.addf(field, "may name at most 50 roles")
		return nil, fe
	}
	out := []string{}
	for i, r := range roles {
		f := field + "." + itoa(i)
		if !tenancy.RoleName.MatchString(r) {
			fe.addf(f, "%q is not a valid role name", r)
			continue
		}
		if !authz.IsBuiltinRole(r) {
			ok, err := tenancy.CustomRoleExists(c.Request().Context(), t, tenantID, r)
			if err != nil || !ok {
				fe.addf(f, "role %q does not exist in this institution", r)
				continue
			}
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, fe
}

func (s *Server) listMembers(c echo.Context) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	after, err := afterUUID(pg)
	if err != nil {
		return err
	}
	ms, err := tenancy.ListMembers(c.Request().Context(), s.Pool, principalOf(c).TenantID, after, pg.Limit+1)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(ms, pg.Limit, func(m tenancy.Member) []string { return key(m.UserID.String()) }))
}

func (s *Server) getMember(c echo.Context) error {
	id, err := pathUUID(c, "user_id")
	if err != nil {
		return err
	}
	m, err := tenancy.GetMember(c.Request().Context(), s.Pool, principalOf(c).TenantID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// SetRolesRequest replaces a member's roles.
type SetRolesRequest struct {
	Roles []string `json:"roles"`
}

func (s *Server) setMemberRoles(c echo.Context) error {
	id, err := pathUUID(c, "user_id")
	if err != nil {
		return err
	}
	var req SetRolesRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var out tenancy.Member
	err = s.inTx(c, func(t *txc) error {
		roles, fe := s.validateRoleList(c, t, p.TenantID, "roles", req.Roles, false)
		if err := fe.err(); err != nil {
			return err
		}
		current, err := tenancy.MemberRoles(ctx, t, p.TenantID, id)
		if errors.Is(err, sdk.ErrForbidden) {
			return sdk.Errorf(sdk.ErrNotFound, "no such member in this institution")
		}
		if err != nil {
			return err
		}
		if err := s.checkRoleGrants(c, p, "roles", req.Roles, current); err != nil {
			return err
		}
		if err := s.requireVerifiedFor(c, t, id, roles, current); err != nil {
			return err
		}
		if !slices.Contains(roles, authz.RoleAdmin) {
			if err := s.keepOneAdmin(c, t, p.TenantID, id); err != nil {
				return err
			}
		}
		before, err := tenancy.SetMemberRoles(ctx, t, p.TenantID, id, roles)
		if err != nil {
			return err
		}
		t.changed(tenancy.TopicMembership + ":" + p.TenantID.String() + ":" + id.String())
		if err := t.event(outbox.MemberRolesChanged, p.TenantID, map[string]any{"user_id": id, "roles": roles, "previous_roles": before}); err != nil {
			return err
		}
		if err := t.audit(p.TenantID, "tenancy.member.roles_changed", id.String(), map[string]any{"roles": roles, "previous_roles": before}); err != nil {
			return err
		}
		out, err = tenancy.GetMember(ctx, t, p.TenantID, id)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// requireVerifiedFor refuses to give a member with an unverified address a
// role they do not hold yet: roles go only to accounts whose owner has
// shown they own the address. Taking roles away is always allowed.
func (s *Server) requireVerifiedFor(c echo.Context, t *txc, userID uuid.UUID, roles, current []string) error {
	adds := false
	for _, r := range roles {
		adds = adds || !slices.Contains(current, r)
	}
	if !adds {
		return nil
	}
	u, err := identity.GetUser(c.Request().Context(), t, userID)
	if err != nil {
		return err
	}
	if !u.EmailVerified {
		return sdk.Errorf(sdk.ErrConflict, "%s has not verified their email address, so they can be given no further role yet; they can ask for a new link with POST /api/v1/auth/email/verify/resend", u.Email).WithCode("email-unverified")
	}
	return nil
}

// keepOneAdmin refuses a change that would leave the tenant without an admin.
func (s *Server) keepOneAdmin(c echo.Context, t *txc, tenantID, losing uuid.UUID) error {
	roles, err := tenancy.MemberRoles(c.Request().Context(), t, tenantID, losing)
	if err != nil || !slices.Contains(roles, authz.RoleAdmin) {
		return nil
	}
	n, err := tenancy.CountAdmins(c.Request().Context(), t, tenantID, losing)
	if err != nil {
		return err
	}
	if n == 0 {
		return sdk.Errorf(sdk.ErrConflict, "this is the institution's last admin; make someone else admin first").WithCode("last-admin")
	}
	return nil
}

func (s *Server) removeMember(c echo.Context) error {
	id, err := pathUUID(c, "user_id")
	if err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	err = s.inTx(c, func(t *txc) error {
		if err := s.keepOneAdmin(c, t, p.TenantID, id); err != nil {
			return err
		}
		if err := tenancy.RemoveMember(ctx, t, p.TenantID, id); err != nil {
			return err
		}
		t.changed(tenancy.TopicMembership + ":" + p.TenantID.String() + ":" + id.String())
		if err := t.event(outbox.MemberRemoved, p.TenantID, map[string]any{"user_id": id}); err != nil {
			return err
		}
		return t.audit(p.TenantID, "tenancy.member.removed", id.String(), nil)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// InviteRequest invites someone by email.
type InviteRequest struct {
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

// InvitationCreated is the new invitation with its token, shown once.
type InvitationCreated struct {
	tenancy.Invitation
	Token string `json:"token"`
}

func (s *Server) invite(c echo.Context) error {
	var req InviteRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var out InvitationCreated
	err := s.inTx(c, func(t *txc) error {
		var fe fieldErrors
		email, e := identity.ValidateEmail(req.Email)
		fe.add(e)
		roles, rfe := s.validateRoleList(c, t, p.TenantID, "roles", req.Roles, false)
		fe = append(fe, rfe...)
		if err := fe.err(); err != nil {
			return err
		}
		if err := s.checkRoleGrants(c, p, "roles", req.Roles, nil); err != nil {
			return err
		}
		if u, err := identity.GetUserByEmail(ctx, t, email); err == nil {
			if _, err := tenancy.MemberRoles(ctx, t, p.TenantID, u.ID); err == nil {
				return sdk.Errorf(sdk.ErrConflict, "%s is already a member of this institution", email).WithCode("already-member")
			}
		}
		inv := tenancy.Invitation{TenantID: p.TenantID, Email: email, Roles: roles}
		if p.Kind == "user" {
			inv.InvitedBy = &p.UserID
		}
		created, tok, err := tenancy.CreateInvitation(ctx, t, inv)
		if err != nil {
			return err
		}
		out = InvitationCreated{Invitation: created, Token: tok}
		tn, err := tenancy.GetTenant(ctx, t, p.TenantID)
		if err != nil {
			return err
		}
		// The messaging plugin delivers this event as an email.
		if err := t.event(outbox.InvitationCreated, p.TenantID, map[string]any{
			"invitation_id": created.ID, "email": email, "roles": roles, "token": tok,
			"tenant_slug": tn.Slug, "tenant_name": tn.Name, "expires_at": created.ExpiresAt,
		}); err != nil {
			return err
		}
		return t.audit(p.TenantID, "tenancy.invitation.created", created.ID.String(), map[string]any{"email": email, "roles": roles})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listInvitations(c echo.Context) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterUUID(pg)
	if err != nil {
		return err
	}
	invs, err := tenancy.ListInvitations(c.Request().Context(), s.Pool, principalOf(c).TenantID, before, pg.Limit+1)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(invs, pg.Limit, func(i tenancy.Invitation) []string { return key(i.ID.String()) }))
}

func (s *Server) revokeInvitation(c echo.Context) error {
	id, err := pathUUID(c, "invitation_id")
	if err != nil {
		return err
	}
	p := principalOf(c)
	err = s.inTx(c, func(t *txc) error {
		if _, err := tenancy.RevokeInvitation(c.Request().Context(), t, p.TenantID, id); err != nil {
			return err
		}
		return t.audit(p.TenantID, "tenancy.invitation.revoked", id.String(), nil)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

var roleDescriptions = map[string]string{
	authz.RoleAdmin:             "Runs the institution: members, roles, settings, keys and audit",
	authz.RoleInstructor:        "Teaches: authors courses and grades learners",
	authz.RoleLearner:           "Learns: enrols, studies and submits work",
	authz.RoleComplianceOfficer: "Runs compliance: audit, access reviews, personal data requests, retention and evidence (admins assign it)",
	authz.RoleAuditor:           "Reads the audit log, grants and compliance records; changes nothing",
}

func (s *Server) listRoles(c echo.Context) error {
	stored, err := tenancy.StoredRoles(c.Request().Context(), s.Pool, principalOf(c).TenantID)
	if err != nil {
		return err
	}
	roles := tenancy.EffectiveRoles(stored, authz.BuiltinRoles, s.Catalogue.Defaults(), roleDescriptions)
	return c.JSON(http.StatusOK, whole(roles))
}

// PutRoleRequest defines a custom role or overrides a built-in one.
type PutRoleRequest struct {
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
}

func (s *Server) putRole(c echo.Context) error {
	name := c.Param("role")
	var req PutRoleRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if !tenancy.RoleName.MatchString(name) {
		fe.addf("role", "%q is not a valid role name: lowercase letters, digits, - and _, starting with a letter", name)
	}
	if len(req.Description) > 500 {
		fe.addf("description", "must be at most 500 characters")
	}
	if req.Permissions == nil {
		fe.addf("permissions", "is required (an empty list grants nothing)")
	}
	perms := []string{}
	for i, perm := range req.Permissions {
		switch {
		case !s.Catalogue.Has(perm):
			fe.addf("permissions."+itoa(i), "%q is not a known permission (see GET /api/v1/tenant/permissions)", perm)
		case strings.HasPrefix(perm, "platform."):
			fe.addf("permissions."+itoa(i), "%q is a platform permission and cannot be granted by an institution", perm)
		case !slices.Contains(perms, perm):
			perms = append(perms, perm)
		}
	}
	sort.Strings(perms)
	if name == authz.RoleAdmin && !slices.Contains(perms, "tenancy.role.manage") {
		fe.addf("permissions", "the admin role must keep tenancy.role.manage, or nobody could repair the roles")
	}
	if err := fe.err(); err != nil {
		return err
	}
	p := principalOf(c)
	// Nobody puts into a role a permission they do not hold themselves
	// (the role may be their own). Taking permissions out is always allowed.
	current, err := s.rolePermissions(c.Request().Context(), p.TenantID, []string{name})
	if err != nil {
		return err
	}
	held, err := s.heldPermissions(c.Request().Context(), p)
	if err != nil {
		return err
	}
	var exceeds fieldErrors
	for i, perm := range req.Permissions {
		if !slices.Contains(current, perm) && !slices.Contains(held, perm) {
			exceeds.addf("permissions."+itoa(i), "you do not hold %s, so you cannot add it to a role", perm)
		}
	}
	if err := exceedsOwn(exceeds); err != nil {
		return err
	}
	role := tenancy.Role{Name: name, Description: strings.TrimSpace(req.Description), Permissions: perms, Builtin: authz.IsBuiltinRole(name)}
	err = s.inTx(c, func(t *txc) error {
		if err := tenancy.PutRole(c.Request().Context(), t, p.TenantID, role); err != nil {
			return err
		}
		t.changed(tenancy.TopicRoles + ":" + p.TenantID.String())
		return t.audit(p.TenantID, "tenancy.role.updated", name, map[string]any{"permissions": perms})
	})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	role.UpdatedAt, role.Customised = &now, role.Builtin
	return c.JSON(http.StatusOK, role)
}

func (s *Server) deleteRole(c echo.Context) error {
	name := c.Param("role")
	p := principalOf(c)
	ctx := c.Request().Context()
	if authz.IsBuiltinRole(name) {
		// Resetting a built-in role restores its defaults: the permissions
		// that brings back must be the caller's own.
		current, err := s.rolePermissions(ctx, p.TenantID, []string{name})
		if err != nil {
			return err
		}
		held, err := s.heldPermissions(ctx, p)
		if err != nil {
			return err
		}
		var missing []string
		for _, perm := range s.Catalogue.Defaults()[name] {
			if !slices.Contains(current, perm) && !slices.Contains(held, perm) {
				missing = append(missing, perm)
			}
		}
		if len(missing) > 0 {
			var fe fieldErrors
			fe.addf("role", "resetting %q to its defaults would grant %s, which you do not hold", name, strings.Join(missing, ", "))
			return exceedsOwn(fe)
		}
	}
	err := s.inTx(c, func(t *txc) error {
		if !authz.IsBuiltinRole(name) {
			n, err := tenancy.RoleInUse(ctx, t, p.TenantID, name)
			if err != nil {
				return err
			}
			if n > 0 {
				return sdk.Errorf(sdk.ErrConflict, "role %q is held by %d member(s); change their roles first", name, n).WithCode("role-in-use")
			}
		}
		if err := tenancy.DeleteRole(ctx, t, p.TenantID, name); err != nil {
			return err
		}
		t.changed(tenancy.TopicRoles + ":" + p.TenantID.String())
		return t.audit(p.TenantID, "tenancy.role.deleted", name, nil)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listPermissions(c echo.Context) error {
	var out []authz.Permission
	for _, perm := range s.Catalogue.All() {
		if !strings.HasPrefix(perm.Name, "platform.") {
			if perm.Defaults == nil {
				perm.Defaults = []string{}
			}
			out = append(out, perm)
		}
	}
	return c.JSON(http.StatusOK, whole(out))
}

// CreateAPIKeyRequest creates a service-account key.
type CreateAPIKeyRequest struct {
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// APIKeyCreated is the new key with its secret, shown once.
type APIKeyCreated struct {
	identity.APIKey
	Key string `json:"key"`
}

func (s *Server) createAPIKey(c echo.Context) error {
	var req CreateAPIKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	if p.Kind == "user" {
		u, err := identity.GetUser(ctx, s.Pool, p.UserID)
		if err != nil {
			return err
		}
		if !u.EmailVerified {
			return sdk.Errorf(sdk.ErrForbidden, "verify your email address before creating API keys (POST /api/v1/auth/email/verify with the token sent to %s; ask for a new one with POST /api/v1/auth/email/verify/resend)", u.Email).WithCode("email-unverified")
		}
	}
	// A key gets a subset of its creator's own permissions.
	mine, err := s.heldPermissions(ctx, p)
	if err != nil {
		return err
	}
	var fe fieldErrors
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 {
		fe.addf("name", "must be 1 to 100 characters")
	}
	if len(req.Permissions) == 0 {
		fe.addf("permissions", "must name at least one permission")
	}
	perms := []string{}
	for i, perm := range req.Permissions {
		switch {
		case !s.Catalogue.Has(perm):
			fe.addf("permissions."+itoa(i), "%q is not a known permission", perm)
		case !slices.Contains(mine, perm):
			fe.addf("permissions."+itoa(i), "you do not hold %q, so you cannot give it to a key", perm)
		case !slices.Contains(perms, perm):
			perms = append(perms, perm)
		}
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(time.Now()) {
		fe.addf("expires_at", "must be in the future")
	}
	if err := fe.err(); err != nil {
		return err
	}
	sort.Strings(perms)
	var out APIKeyCreated
	err = s.inTx(c, func(t *txc) error {
		// A key answers to a person: its creator, or for a key made by a
		// key, the person behind that one.
		k := identity.APIKey{TenantID: p.TenantID, Name: name, Permissions: perms, ExpiresAt: req.ExpiresAt, CreatedBy: &p.UserID}
		if p.Kind == "apikey" {
			k.CreatedBy = &p.CreatorID
		}
		created, secret, err := identity.CreateAPIKey(ctx, t, k)
		if err != nil {
			return err
		}
		out = APIKeyCreated{APIKey: created, Key: secret}
		return t.audit(p.TenantID, "identity.apikey.created", created.ID.String(), map[string]any{"name": name, "permissions": perms})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listAPIKeys(c echo.Context) error {
	keys, err := identity.ListAPIKeys(c.Request().Context(), s.Pool, principalOf(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, whole(keys))
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	id, err := pathUUID(c, "key_id")
	if err != nil {
		return err
	}
	p := principalOf(c)
	var out identity.APIKey
	err = s.inTx(c, func(t *txc) error {
		out, err = identity.RevokeAPIKey(c.Request().Context(), t, p.TenantID, id)
		if err != nil {
			return err
		}
		return t.audit(p.TenantID, "identity.apikey.revoked", id.String(), map[string]any{"name": out.Name})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
