package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/kernel/internal/token"
	"github.com/edulure/edulure/sdk"
)

// SignupRequest creates an account, optionally joining an institution by
// invitation or (where the institution allows it) by self-signup.
type SignupRequest struct {
	Email           string `json:"email"`
	Password        string `json:"password"`
	DisplayName     string `json:"display_name"`
	Tenant          string `json:"tenant,omitempty"`           // slug, for self-signup
	InvitationToken string `json:"invitation_token,omitempty"` // joins with the invited roles
}

// SignupResponse is the created account.
type SignupResponse struct {
	User        identity.User        `json:"user"`
	Memberships []tenancy.Membership `json:"memberships"`
}

func (s *Server) signup(c echo.Context) error {
	var req SignupRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var fe fieldErrors
	email, e := identity.ValidateEmail(req.Email)
	fe.add(e)
	name, e := identity.ValidateDisplayName(req.DisplayName)
	fe.add(e)
	fe.add(identity.ValidatePassword("password", req.Password, email))
	if req.Tenant != "" && req.InvitationToken != "" {
		fe.addf("tenant", "give either tenant or invitation_token, not both")
	}
	if req.Tenant != "" {
		if e := tenancy.ValidateSlug(req.Tenant); e != nil {
			e.Field = "tenant" // the request names it tenant, not slug
			fe.add(e)
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out SignupResponse
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.CreateUser(ctx, t, email, name, req.Password, false)
		if err != nil {
			return err
		}
		out.User = u
		if err := t.event(outbox.UserCreated, uuid.Nil, map[string]any{"user_id": u.ID, "email": u.Email, "display_name": u.DisplayName}); err != nil {
			return err
		}
		var tenantID uuid.UUID
		var roles []string
		switch {
		case req.InvitationToken != "":
			inv, err := tenancy.AcceptInvitation(ctx, t, req.InvitationToken, u.ID, u.Email)
			if err != nil {
				return err
			}
			tenantID, roles = inv.TenantID, inv.Roles
			// The invitation's token was sent to the address: it is proven.
			if err := s.emailVerified(t, u.ID, "invitation"); err != nil {
				return err
			}
			out.User.EmailVerified = true
		case req.Tenant != "":
			tn, err := tenancy.GetTenantBySlug(ctx, t, req.Tenant)
			if err != nil {
				return err
			}
			if !tn.SelfSignup {
				return sdk.Errorf(sdk.ErrForbidden, "institution %q does not allow self-signup; ask for an invitation", req.Tenant).WithCode("self-signup-disabled")
			}
			tenantID, roles = tn.ID, []string{"learner"}
			if err := tenancy.AddMember(ctx, t, tn.ID, u.ID, roles); err != nil {
				return err
			}
		}
		if !out.User.EmailVerified {
			if err := s.sendVerification(t, u); err != nil {
				return err
			}
		}
		if tenantID != uuid.Nil {
			if err := t.event(outbox.MemberJoined, tenantID, map[string]any{"user_id": u.ID, "roles": roles}); err != nil {
				return err
			}
			if err := t.audit(tenantID, "tenancy.member.joined", u.ID.String(), map[string]any{"user_id": u.ID.String(), "roles": roles}); err != nil {
				return err
			}
		}
		out.Memberships, err = tenancy.UserMemberships(ctx, t, u.ID)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

// LoginRequest authenticates with a password, for one institution.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Tenant   string `json:"tenant,omitempty"` // slug; optional when the user belongs to exactly one
}

// TokenResponse is a login's result: tokens, or a second-factor challenge.
type TokenResponse struct {
	AccessToken  string               `json:"access_token,omitempty"`
	TokenType    string               `json:"token_type,omitempty"`
	ExpiresIn    int                  `json:"expires_in,omitempty"`
	RefreshToken string               `json:"refresh_token,omitempty"`
	SessionID    *uuid.UUID           `json:"session_id,omitempty"`
	Tenant       *tenancy.Membership  `json:"tenant,omitempty"`
	Memberships  []tenancy.Membership `json:"memberships,omitempty"`
	// Second step: present mfa_token with a code to /api/v1/auth/mfa/verify.
	MFARequired  bool   `json:"mfa_required" doc:"true: no tokens yet; present mfa_token with a code to POST /api/v1/auth/mfa/verify."`
	MFAToken     string `json:"mfa_token,omitempty"`
	MFAEnrolment bool   `json:"mfa_enrolment_required,omitempty"` // enrol first via /api/v1/auth/mfa/setup
	// Issued when a login completes a TOTP enrolment: shown once.
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

func (s *Server) login(c echo.Context) error {
	var req LoginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var fe fieldErrors
	email, e := identity.ValidateEmail(req.Email)
	fe.add(e)
	if req.Password == "" || len(req.Password) > 256 {
		fe.addf("password", "is required (at most 256 bytes)")
	}
	if req.Tenant != "" {
		if e := tenancy.ValidateSlug(req.Tenant); e != nil {
			e.Field = "tenant" // the request names it tenant, not slug
			fe.add(e)
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	if ok, retry := s.accountLim.allow(strings.ToLower(email)); !ok {
		return tooMany("login attempts for this account", retry)
	}
	ctx := c.Request().Context()
	var out TokenResponse
	var failure error
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUserByEmail(ctx, t, email)
		if err != nil && !errors.Is(err, sdk.ErrNotFound) {
			return err
		}
		if perr := identity.CheckPassword(ctx, t, u, req.Password, s.now()); perr != nil {
			var locked identity.ErrLocked
			if errors.As(perr, &locked) {
				p := problem.New(http.StatusTooManyRequests, "account-locked", "too many failed logins: the account is locked until "+locked.Until.UTC().Format(time.RFC3339))
				p.RetryAfter = int(time.Until(locked.Until).Seconds()) + 1
				failure = p
			} else if errors.Is(perr, sdk.ErrUnauthorized) {
				failure = perr
			} else {
				return perr
			}
			data := map[string]any{"email": email, "reason": failure.Error()}
			if u.ID != uuid.Nil {
				data["user_id"] = u.ID.String()
			}
			return t.audit(uuid.Nil, "identity.login.failed", email, data)
		}
		tenant, m, err := s.loginTenant(ctx, t, u, req.Tenant)
		if err != nil {
			failure = err
			return nil
		}
		out, err = s.finishLogin(c, t, u, tenant, m, false)
		return err
	})
	if err != nil {
		return err
	}
	if failure != nil {
		return failure
	}
	return c.JSON(http.StatusOK, out)
}

// loginTenant picks the tenant of a login: the named one (the user must be a
// member), else the only one, else none.
func (s *Server) loginTenant(ctx context.Context, t *txc, u identity.User, slug string) (*tenancy.Tenant, *tenancy.Membership, error) {
	ms, err := tenancy.UserMemberships(ctx, t, u.ID)
	if err != nil {
		return nil, nil, err
	}
	var m *tenancy.Membership
	switch {
	case slug != "":
		for i := range ms {
			if ms[i].Slug == slug {
				m = &ms[i]
			}
		}
		if m == nil {
			return nil, nil, sdk.Errorf(sdk.ErrForbidden, "you are not a member of institution %q", slug).WithCode("not-a-member")
		}
	case len(ms) == 1:
		m = &ms[0]
	default:
		return nil, nil, nil
	}
	tn, err := tenancy.GetTenant(ctx, t, m.TenantID)
	if err != nil {
		return nil, nil, err
	}
	return &tn, m, nil
}

// finishLogin issues tokens, or a second-factor challenge when the user has
// MFA or a role for which the tenant requires it and mfaDone is false.
func (s *Server) finishLogin(c echo.Context, t *txc, u identity.User, tn *tenancy.Tenant, m *tenancy.Membership, mfaDone bool) (TokenResponse, error) {
	ctx := c.Request().Context()
	required := u.MFAEnabled
	if tn != nil && m != nil {
		for _, r := range m.Roles {
			if slices.Contains(tn.MFARequiredRoles, r) {
				required = true
			}
		}
	}
	var tenantID *uuid.UUID
	if tn != nil {
		tenantID = &tn.ID
	}
	if required && !mfaDone {
		tok, err := identity.NewChallenge(ctx, t, identity.Challenge{UserID: u.ID, TenantID: tenantID})
		if err != nil {
			return TokenResponse{}, err
		}
		return TokenResponse{MFARequired: true, MFAToken: tok, MFAEnrolment: !u.MFAEnabled}, nil
	}
	sess, refresh, err := identity.NewSession(ctx, t, identity.Session{
		UserID: u.ID, TenantID: tenantID, MFA: mfaDone, UserAgent: c.Request().UserAgent(), IP: c.RealIP(),
	}, s.Config.RefreshTokenTTL)
	if err != nil {
		return TokenResponse{}, err
	}
	out, err := s.tokens(u, sess, refresh)
	if err != nil {
		return TokenResponse{}, err
	}
	out.Tenant = m
	if m == nil {
		out.Memberships, err = tenancy.UserMemberships(ctx, t, u.ID)
		if err != nil {
			return TokenResponse{}, err
		}
		if out.Memberships == nil {
			out.Memberships = []tenancy.Membership{}
		}
	}
	return out, nil
}

func (s *Server) tokens(u identity.User, sess identity.Session, refresh string) (TokenResponse, error) {
	claims := token.Claims{SessionID: sess.ID.String(), Operator: u.Operator, MFA: sess.MFA}
	claims.Subject = u.ID.String()
	if sess.TenantID != nil {
		claims.TenantID = sess.TenantID.String()
	}
	access, exp, err := s.Keyring.Issue(claims)
	if err != nil {
		return TokenResponse{}, err
	}
	id := sess.ID
	return TokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(time.Until(exp).Seconds()), RefreshToken: refresh, SessionID: &id}, nil
}

// MFASetupRequest starts enrolment during a login that requires MFA.
type MFASetupRequest struct {
	MFAToken string `json:"mfa_token"`
}

func (s *Server) mfaSetup(c echo.Context) error {
	var req MFASetupRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var out identity.TOTPEnrolment
	err := s.inTx(c, func(t *txc) error {
		ch, err := identity.GetChallenge(ctx, t, req.MFAToken)
		if err != nil {
			return err
		}
		u, err := identity.GetUser(ctx, t, ch.UserID)
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

// MFAVerifyRequest completes a login's second step with a TOTP code or a
// recovery code.
type MFAVerifyRequest struct {
	MFAToken     string `json:"mfa_token"`
	Code         string `json:"code,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

func (s *Server) mfaVerify(c echo.Context) error {
	var req MFAVerifyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.MFAToken == "" {
		fe.addf("mfa_token", "is required")
	}
	if (req.Code == "") == (req.RecoveryCode == "") {
		fe.addf("code", "give exactly one of code and recovery_code")
	}
	if err := fe.err(); err != nil {
		return err
	}
	if ok, retry := s.accountLim.allow("mfa:" + req.MFAToken); !ok {
		return tooMany("second-factor attempts", retry)
	}
	ctx := c.Request().Context()
	var out TokenResponse
	var failure error
	err := s.inTx(c, func(t *txc) error {
		ch, err := identity.GetChallenge(ctx, t, req.MFAToken)
		if err != nil {
			failure = err
			return nil
		}
		u, err := identity.GetUser(ctx, t, ch.UserID)
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
		var codeErr error
		if req.RecoveryCode != "" {
			if !u.MFAEnabled {
				codeErr = sdk.Errorf(sdk.ErrConflict, "no recovery codes: two-factor authentication is not enrolled yet").WithCode("mfa-not-enrolled")
			} else {
				codeErr = identity.UseRecoveryCode(ctx, t, u.ID, req.RecoveryCode)
			}
		} else {
			codeErr = identity.CheckTOTP(ctx, t, s.Sealer, u.ID, req.Code, s.now())
		}
		if codeErr != nil {
			if err := identity.FailChallenge(ctx, t, req.MFAToken); err != nil {
				return err
			}
			failure, err = s.secondFactorFailed(t, u, codeErr)
			return err
		}
		if err := identity.SpendChallenge(ctx, t, req.MFAToken); err != nil {
			return err
		}
		if err := identity.ClearSecondFactorFailures(ctx, t, u.ID); err != nil {
			return err
		}
		var recovery []string
		if !u.MFAEnabled {
			if recovery, err = identity.EnableTOTP(ctx, t, u.ID); err != nil {
				return err
			}
			u.MFAEnabled = true
			if err := t.audit(uuid.Nil, "identity.mfa.enabled", u.ID.String(), map[string]any{"user_id": u.ID.String(), "during": "login"}); err != nil {
				return err
			}
		}
		var tn *tenancy.Tenant
		var m *tenancy.Membership
		if ch.TenantID != nil {
			x, err := tenancy.GetTenant(ctx, t, *ch.TenantID)
			if err != nil {
				return err
			}
			roles, err := tenancy.MemberRoles(ctx, t, x.ID, u.ID)
			if err != nil {
				return err
			}
			tn, m = &x, &tenancy.Membership{TenantID: x.ID, Slug: x.Slug, Name: x.Name, Roles: roles}
		}
		out, err = s.finishLogin(c, t, u, tn, m, true)
		out.RecoveryCodes = recovery
		return err
	})
	if err != nil {
		return err
	}
	if failure != nil {
		return failure
	}
	return c.JSON(http.StatusOK, out)
}

// RefreshRequest exchanges a refresh token for new tokens.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(c echo.Context) error {
	var req RefreshRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if !strings.HasPrefix(req.RefreshToken, identity.RefreshPrefix) || len(req.RefreshToken) > 200 {
		return sdk.Errorf(sdk.ErrUnauthorized, "refresh token is not valid").WithCode("invalid-refresh-token")
	}
	ctx := c.Request().Context()
	var out TokenResponse
	var failure error
	err := s.inTx(c, func(t *txc) error {
		sess, tok, err := identity.Rotate(ctx, t, req.RefreshToken)
		if errors.Is(err, identity.ErrRefreshReused) {
			failure = err
			s.revoked.add(sess.ID)
			return t.audit(uuid.Nil, "identity.session.refresh_reused", sess.ID.String(), map[string]any{"user_id": sess.UserID.String(), "session_id": sess.ID.String()})
		}
		if err != nil {
			failure = err
			return nil
		}
		u, err := identity.GetUser(ctx, t, sess.UserID)
		if err != nil {
			return err
		}
		if sess.TenantID != nil {
			roles, err := tenancy.MemberRoles(ctx, t, *sess.TenantID, u.ID)
			if err != nil {
				failure = unauthorized("not-a-member", "you are no longer a member of this session's institution; log in again")
				s.revoked.add(sess.ID)
				return identity.RevokeSession(ctx, t, sess.ID, "membership ended")
			}
			tn, err := tenancy.GetTenant(ctx, t, *sess.TenantID)
			if err != nil {
				return err
			}
			// The institution may have required MFA for a role since this
			// session began without it: the session must log in again.
			if !sess.MFA && slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(tn.MFARequiredRoles, r) }) {
				failure = unauthorized("mfa-required", "your institution now requires two-factor authentication for your role; log in again")
				s.revoked.add(sess.ID)
				return identity.RevokeSession(ctx, t, sess.ID, "mfa now required")
			}
			out.Tenant = &tenancy.Membership{TenantID: tn.ID, Slug: tn.Slug, Name: tn.Name, Roles: roles}
		}
		m := out.Tenant
		out, err = s.tokens(u, sess, tok)
		out.Tenant = m
		return err
	})
	if err != nil {
		return err
	}
	if failure != nil {
		return failure
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) logout(c echo.Context) error {
	p := principalOf(c)
	err := s.inTx(c, func(t *txc) error {
		if err := identity.RevokeSession(c.Request().Context(), t, p.SessionID, "logout"); err != nil {
			return err
		}
		return t.audit(p.TenantID, "identity.session.logout", p.SessionID.String(), nil)
	})
	if err != nil {
		return err
	}
	s.revoked.add(p.SessionID)
	return c.NoContent(http.StatusNoContent)
}

// SwitchRequest moves to another institution the caller belongs to.
type SwitchRequest struct {
	Tenant string `json:"tenant"` // slug
}

func (s *Server) switchTenant(c echo.Context) error {
	var req SwitchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if fe := tenancy.ValidateSlug(req.Tenant); fe != nil {
		return sdk.Invalid(sdk.FieldError{Field: "tenant", Message: fe.Message})
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var out TokenResponse
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUser(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		tn, m, err := s.loginTenant(ctx, t, u, req.Tenant)
		if err != nil {
			return err
		}
		out, err = s.finishLogin(c, t, u, tn, m, p.MFA)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// ForgotPasswordRequest asks for a password-reset token by email.
type ForgotPasswordRequest struct {
	Email string `json:"email"`
}

// AcceptedResponse acknowledges a request without revealing more.
type AcceptedResponse struct {
	Status string `json:"status"`
}

func (s *Server) forgotPassword(c echo.Context) error {
	var req ForgotPasswordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	email, fe := identity.ValidateEmail(req.Email)
	if fe != nil {
		return sdk.Invalid(*fe)
	}
	if ok, retry := s.accountLim.allow("reset:" + strings.ToLower(email)); !ok {
		return tooMany("password-reset requests for this account", retry)
	}
	// Whether the account exists decides everything below, so it all runs
	// after the answer, off the request path: the answer takes as long for
	// a registered address as for any other (no enumeration by timing).
	reqID, ip := c.Response().Header().Get(echo.HeaderXRequestID), c.RealIP()
	s.goBackground(s.requestLogger(c), "password reset", func(ctx context.Context) error {
		return s.sendPasswordReset(ctx, email, reqID, ip)
	})
	return c.JSON(http.StatusAccepted, AcceptedResponse{Status: "if an account exists for this email, a reset link has been sent"})
}

// ResetPasswordRequest sets a new password with a reset token.
type ResetPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (s *Server) resetPassword(c echo.Context) error {
	var req ResetPasswordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if !strings.HasPrefix(req.Token, identity.ResetPrefix) || len(req.Token) > 200 {
		fe.addf("token", "is not a password-reset token")
	}
	fe.add(identity.ValidatePassword("password", req.Password, ""))
	if err := fe.err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var revoked []uuid.UUID
	var keysRevoked int64
	var mfaRemoved bool
	err := s.inTx(c, func(t *txc) error {
		uid, err := identity.SpendPasswordReset(ctx, t, req.Token)
		if err != nil {
			return err
		}
		u, err := identity.GetUser(ctx, t, uid)
		if err != nil {
			return err
		}
		if fe := identity.ValidatePassword("password", req.Password, u.Email); fe != nil {
			return sdk.Invalid(*fe)
		}
		if err := identity.SetPassword(ctx, t, uid, req.Password); err != nil {
			return err
		}
		// The reset token was sent to the address: its owner is here. If
		// the address was unverified until now, whoever chose the old
		// password was never shown to own it, so what they set up goes too:
		// the API keys the account made and its second factor.
		if !u.EmailVerified {
			if err := s.emailVerified(t, uid, "password_reset"); err != nil {
				return err
			}
			if keysRevoked, err = identity.RevokeKeysCreatedBy(ctx, t, uid); err != nil {
				return err
			}
			if u.MFAEnabled {
				if err := identity.DisableMFA(ctx, t, uid); err != nil {
					return err
				}
				mfaRemoved = true
			}
		}
		sessions, err := identity.ListSessions(ctx, t, uid, uuid.Nil)
		if err != nil {
			return err
		}
		for _, ss := range sessions {
			revoked = append(revoked, ss.ID)
		}
		if _, err := identity.RevokeUserSessions(ctx, t, uid, uuid.Nil, "password reset"); err != nil {
			return err
		}
		return t.audit(uuid.Nil, "identity.password_reset.completed", uid.String(), map[string]any{
			"user_id": uid.String(), "sessions_revoked": len(revoked), "api_keys_revoked": keysRevoked, "mfa_removed": mfaRemoved,
		})
	})
	if err != nil {
		return err
	}
	s.revoked.add(revoked...)
	return c.NoContent(http.StatusNoContent)
}
