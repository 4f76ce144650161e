package httpapi

import (
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
)

// MeResponse describes the caller.
type MeResponse struct {
	Kind        string               `json:"kind"` // user or apikey
	User        *identity.User       `json:"user,omitempty"`
	APIKey      *identity.APIKey     `json:"api_key,omitempty"`
	Tenant      *tenancy.Tenant      `json:"tenant,omitempty"`
	Roles       []string             `json:"roles"`
	Memberships []tenancy.Membership `json:"memberships,omitempty"`
	SessionID   *uuid.UUID           `json:"session_id,omitempty"`
	MFA         bool                 `json:"mfa"` // this session passed a second factor
}

func (s *Server) me(c echo.Context) error {
	p := principalOf(c)
	ctx := c.Request().Context()
	out := MeResponse{Kind: p.Kind, Roles: p.Roles, MFA: p.MFA}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if p.HasTenant() {
		tn, err := tenancy.GetTenant(ctx, s.Pool, p.TenantID)
		if err != nil {
			return err
		}
		out.Tenant = &tn
	}
	if p.Kind == "apikey" {
		keys, err := identity.ListAPIKeys(ctx, s.Pool, p.TenantID)
		if err != nil {
			return err
		}
		for i := range keys {
			if keys[i].ID == p.KeyID {
				out.APIKey = &keys[i]
			}
		}
		return c.JSON(http.StatusOK, out)
	}
	u, err := identity.GetUser(ctx, s.Pool, p.UserID)
	if err != nil {
		return err
	}
	out.User = &u
	out.SessionID = &p.SessionID
	if out.Memberships, err = tenancy.UserMemberships(ctx, s.Pool, p.UserID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// PermissionsResponse lists what the caller may do.
type PermissionsResponse struct {
	TenantID    *uuid.UUID `json:"tenant_id"`
	Roles       []string   `json:"roles"`
	Permissions []string   `json:"permissions"`
}

func (s *Server) myPermissions(c echo.Context) error {
	p := principalOf(c)
	out := PermissionsResponse{Roles: p.Roles, Permissions: []string{}}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if p.HasTenant() {
		out.TenantID = &p.TenantID
		granted, err := s.Authz.Granted(c.Request().Context(), s.authzInput(p, ""))
		if err != nil {
			return err
		}
		out.Permissions = granted
	}
	if p.Operator {
		for _, perm := range s.Catalogue.All() {
			if strings.HasPrefix(perm.Name, "platform.") {
				out.Permissions = append(out.Permissions, perm.Name)
			}
		}
		sort.Strings(out.Permissions)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) mySessions(c echo.Context) error {
	p := principalOf(c)
	sessions, err := identity.ListSessions(c.Request().Context(), s.Pool, p.UserID, p.SessionID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, whole(sessions))
}

// RevokedResponse counts revoked sessions.
type RevokedResponse struct {
	Revoked int64 `json:"revoked"`
}

// revokeMySessions revokes every session but the current one.
func (s *Server) revokeMySessions(c echo.Context) error {
	p := principalOf(c)
	ctx := c.Request().Context()
	var ids []uuid.UUID
	var n int64
	err := s.inTx(c, func(t *txc) error {
		sessions, err := identity.ListSessions(ctx, t, p.UserID, p.SessionID)
		if err != nil {
			return err
		}
		for _, ss := range sessions {
			if ss.ID != p.SessionID {
				ids = append(ids, ss.ID)
			}
		}
		if n, err = identity.RevokeUserSessions(ctx, t, p.UserID, p.SessionID, "revoked by user"); err != nil {
			return err
		}
		return t.audit(p.TenantID, "identity.session.revoked_all", p.UserID.String(), map[string]any{"count": n})
	})
	if err != nil {
		return err
	}
	s.revoked.add(ids...)
	return c.JSON(http.StatusOK, RevokedResponse{Revoked: n})
}

func (s *Server) revokeMySession(c echo.Context) error {
	p := principalOf(c)
	id, err := pathUUID(c, "session_id")
	if err != nil {
		return err
	}
	err = s.inTx(c, func(t *txc) error {
		if err := identity.RevokeOwnSession(c.Request().Context(), t, p.UserID, id); err != nil {
			return err
		}
		return t.audit(p.TenantID, "identity.session.revoked", id.String(), nil)
	})
	if err != nil {
		return err
	}
	s.revoked.add(id)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) beginTOTP(c echo.Context) error {
	p := principalOf(c)
	ctx := c.Request().Context()
	var out identity.TOTPEnrolment
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUser(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		out, err = identity.BeginTOTP(ctx, t, s.Sealer, s.mfaIssuer, u)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// CodeRequest carries a TOTP code or a recovery code.
type CodeRequest struct {
	Code         string `json:"code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

// RecoveryCodesResponse shows recovery codes once.
type RecoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

func (s *Server) confirmTOTP(c echo.Context) error {
	var req CodeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Code == "" || req.RecoveryCode != "" {
		return sdk.Invalid(sdk.FieldError{Field: "code", Message: "is required: the 6-digit code your authenticator shows"})
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var codes []string
	var failure error
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUser(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		if u.MFAEnabled {
			return sdk.Errorf(sdk.ErrConflict, "two-factor authentication is already enabled").WithCode("mfa-already-enabled")
		}
		if err := identity.CheckTOTP(ctx, t, s.Sealer, u.ID, req.Code, s.now()); err != nil {
			failure = err
			return nil
		}
		if codes, err = identity.EnableTOTP(ctx, t, u.ID); err != nil {
			return err
		}
		return t.audit(p.TenantID, "identity.mfa.enabled", u.ID.String(), nil)
	})
	if err != nil {
		return err
	}
	if failure != nil {
		return failure
	}
	return c.JSON(http.StatusOK, RecoveryCodesResponse{RecoveryCodes: codes})
}

// checkSecondFactor verifies a code or recovery code of an enrolled user.
func (s *Server) checkSecondFactor(c echo.Context, t *txc, u identity.User, req CodeRequest) error {
	if !u.MFAEnabled {
		return sdk.Errorf(sdk.ErrConflict, "two-factor authentication is not enabled").WithCode("mfa-not-enabled")
	}
	if (req.Code == "") == (req.RecoveryCode == "") {
		return sdk.Invalid(sdk.FieldError{Field: "code", Message: "give exactly one of code and recovery_code"})
	}
	if req.RecoveryCode != "" {
		return identity.UseRecoveryCode(c.Request().Context(), t, u.ID, req.RecoveryCode)
	}
	return identity.CheckTOTP(c.Request().Context(), t, s.Sealer, u.ID, req.Code, s.now())
}

// withSecondFactor decodes a CodeRequest, checks it against the caller's
// enrolled second factor and runs then in the same transaction. A wrong code
// is still committed (it spends a recovery code or records a time step).
func (s *Server) withSecondFactor(c echo.Context, then func(t *txc, u identity.User) error) error {
	var req CodeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	var failure error
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUser(c.Request().Context(), t, p.UserID)
		if err != nil {
			return err
		}
		locked, err := s.secondFactorLocked(t, u)
		if err != nil {
			return err
		}
		if locked != nil {
			failure = locked
			return nil
		}
		if codeErr := s.checkSecondFactor(c, t, u, req); codeErr != nil {
			failure, err = s.secondFactorFailed(t, u, codeErr)
			return err
		}
		if err := identity.ClearSecondFactorFailures(c.Request().Context(), t, u.ID); err != nil {
			return err
		}
		return then(t, u)
	})
	if err != nil {
		return err
	}
	return failure
}

func (s *Server) disableMFA(c echo.Context) error {
	p := principalOf(c)
	err := s.withSecondFactor(c, func(t *txc, u identity.User) error {
		if err := identity.DisableMFA(c.Request().Context(), t, u.ID); err != nil {
			return err
		}
		return t.audit(p.TenantID, "identity.mfa.disabled", u.ID.String(), nil)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) regenerateRecoveryCodes(c echo.Context) error {
	p := principalOf(c)
	var codes []string
	err := s.withSecondFactor(c, func(t *txc, u identity.User) error {
		var err error
		if codes, err = identity.NewRecoveryCodes(c.Request().Context(), t, u.ID); err != nil {
			return err
		}
		return t.audit(p.TenantID, "identity.mfa.recovery_codes_regenerated", u.ID.String(), nil)
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, RecoveryCodesResponse{RecoveryCodes: codes})
}

// AcceptInvitationRequest joins an institution with an invitation token.
type AcceptInvitationRequest struct {
	Token string `json:"token"`
}

func (s *Server) acceptInvitation(c echo.Context) error {
	var req AcceptInvitationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var out tenancy.Membership
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUser(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		inv, err := tenancy.AcceptInvitation(ctx, t, req.Token, u.ID, u.Email)
		if err != nil {
			return err
		}
		// The invitation's token was sent to the address: it is proven.
		if err := s.emailVerified(t, u.ID, "invitation"); err != nil {
			return err
		}
		tn, err := tenancy.GetTenant(ctx, t, inv.TenantID)
		if err != nil {
			return err
		}
		out = tenancy.Membership{TenantID: tn.ID, Slug: tn.Slug, Name: tn.Name, Roles: inv.Roles}
		if err := t.event(outbox.MemberJoined, tn.ID, map[string]any{"user_id": u.ID, "roles": inv.Roles, "invitation_id": inv.ID}); err != nil {
			return err
		}
		t.changed(tenancy.TopicMembership + ":" + tn.ID.String() + ":" + u.ID.String())
		return t.audit(tn.ID, "tenancy.member.joined", u.ID.String(), map[string]any{"user_id": u.ID.String(), "roles": inv.Roles, "invitation_id": inv.ID.String()})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// ChangePasswordRequest changes the signed-in person's password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// PasswordChangedResponse says how many of the person's other sessions
// were signed out.
type PasswordChangedResponse struct {
	SessionsRevoked int64 `json:"sessions_revoked"`
}

// changeMyPassword replaces the caller's password, given the current one
// (a wrong one counts as a failed login, toward the account's lockout),
// signs out their other sessions and tells them by email (the event).
func (s *Server) changeMyPassword(c echo.Context) error {
	p := principalOf(c)
	var req ChangePasswordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.CurrentPassword == "" || len(req.CurrentPassword) > 256 {
		fe.addf("current_password", "is required (at most 256 bytes)")
	}
	fe.add(identity.ValidatePassword("new_password", req.NewPassword, ""))
	if err := fe.err(); err != nil {
		return err
	}
	if ok, retry := s.accountLim.allow("password:" + p.UserID.String()); !ok {
		return tooMany("password changes for this account", retry)
	}
	ctx := c.Request().Context()
	var ids []uuid.UUID
	var n int64
	var failure error
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUser(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		if perr := identity.CheckPassword(ctx, t, u, req.CurrentPassword, s.now()); perr != nil {
			var locked identity.ErrLocked
			switch {
			case errors.As(perr, &locked):
				pr := problem.New(http.StatusTooManyRequests, "account-locked", "too many wrong passwords: the account is locked until "+locked.Until.UTC().Format(time.RFC3339))
				pr.RetryAfter = int(time.Until(locked.Until).Seconds()) + 1
				failure = pr
			case errors.Is(perr, sdk.ErrUnauthorized):
				failure = sdk.Invalid(sdk.FieldError{Field: "current_password", Message: "is not your current password"})
			default:
				return perr
			}
			// The failure is counted (committed) like a failed login's.
			return t.audit(uuid.Nil, "identity.password.change_failed", u.ID.String(), map[string]any{"user_id": u.ID.String()})
		}
		if fe := identity.ValidatePassword("new_password", req.NewPassword, u.Email); fe != nil {
			failure = sdk.Invalid(*fe)
			return nil
		}
		if req.NewPassword == req.CurrentPassword {
			failure = sdk.Invalid(sdk.FieldError{Field: "new_password", Message: "must differ from the current password"})
			return nil
		}
		if err := identity.SetPassword(ctx, t, u.ID, req.NewPassword); err != nil {
			return err
		}
		sessions, err := identity.ListSessions(ctx, t, u.ID, p.SessionID)
		if err != nil {
			return err
		}
		for _, ss := range sessions {
			if ss.ID != p.SessionID {
				ids = append(ids, ss.ID)
			}
		}
		if n, err = identity.RevokeUserSessions(ctx, t, u.ID, p.SessionID, "password changed"); err != nil {
			return err
		}
		// The messaging plugin emails it: if it was not the owner, they
		// learn that someone holding their session knew the password.
		if err := t.event(outbox.PasswordChanged, uuid.Nil, map[string]any{
			"user_id": u.ID, "email": u.Email, "display_name": u.DisplayName, "changed_at": s.now().UTC(), "sessions_revoked": n,
		}); err != nil {
			return err
		}
		return t.audit(uuid.Nil, "identity.password.changed", u.ID.String(), map[string]any{"user_id": u.ID.String(), "sessions_revoked": n})
	})
	if err != nil {
		return err
	}
	if failure != nil {
		return failure
	}
	s.revoked.add(ids...)
	return c.JSON(http.StatusOK, PasswordChangedResponse{SessionsRevoked: n})
}
