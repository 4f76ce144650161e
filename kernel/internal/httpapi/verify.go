package httpapi

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/sdk"
)

// An account's address is unverified until its owner shows they read mail
// sent to it. Until then the account may log in, look after itself (/me,
// sessions, MFA), join an institution open to self-signup as a learner and
// accept invitations, but it is never given a role by email or by an admin
// and creates no API keys. docs/security.md has the whole rule.

// sendVerification issues a verification token for the user's address and
// writes it to the outbox, for the messaging plugin to email.
func (s *Server) sendVerification(t *txc, u identity.User) error {
	tok, exp, err := identity.NewEmailVerification(t.c.Request().Context(), t, u)
	if err != nil {
		return err
	}
	if err := t.event(outbox.VerificationRequested, uuid.Nil, map[string]any{
		"user_id": u.ID, "email": u.Email, "display_name": u.DisplayName, "token": tok, "expires_at": exp,
	}); err != nil {
		return err
	}
	return t.audit(uuid.Nil, "identity.email_verification.requested", u.ID.String(), map[string]any{"user_id": u.ID.String()})
}

// emailVerified records that the user's address is proven (by via: an
// invitation, a password reset) and audits it when it is news.
func (s *Server) emailVerified(t *txc, userID uuid.UUID, via string) error {
	newly, err := identity.MarkEmailVerified(t.c.Request().Context(), t, userID)
	if err != nil || !newly {
		return err
	}
	if err := s.publishVerified(t, userID); err != nil {
		return err
	}
	return t.audit(uuid.Nil, "identity.email.verified", userID.String(), map[string]any{"user_id": userID.String(), "via": via})
}

// publishVerified writes identity.email.verified.v1: the messaging plugin
// emails an address only once it is proven.
func (s *Server) publishVerified(t *txc, userID uuid.UUID) error {
	u, err := identity.GetUser(t.c.Request().Context(), t, userID)
	if err != nil {
		return err
	}
	return t.event(outbox.EmailVerified, uuid.Nil, map[string]any{"user_id": u.ID, "email": u.Email})
}

// VerifyEmailRequest proves an address with the token sent to it.
type VerifyEmailRequest struct {
	Token string `json:"token"`
}

func (s *Server) verifyEmail(c echo.Context) error {
	var req VerifyEmailRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if !strings.HasPrefix(req.Token, identity.VerificationPrefix) || len(req.Token) > 200 {
		return sdk.Invalid(sdk.FieldError{Field: "token", Message: "is not an email-verification token (edv_...)"})
	}
	err := s.inTx(c, func(t *txc) error {
		uid, err := identity.SpendEmailVerification(c.Request().Context(), t, req.Token)
		if err != nil {
			return err
		}
		if err := s.publishVerified(t, uid); err != nil {
			return err
		}
		return t.audit(uuid.Nil, "identity.email.verified", uid.String(), map[string]any{"user_id": uid.String(), "via": "verification"})
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) resendVerification(c echo.Context) error {
	p := principalOf(c)
	if ok, retry := s.accountLim.allow("verify:" + p.UserID.String()); !ok {
		return tooMany("verification requests for this account", retry)
	}
	ctx := c.Request().Context()
	var email string
	err := s.inTx(c, func(t *txc) error {
		u, err := identity.GetUser(ctx, t, p.UserID)
		if err != nil {
			return err
		}
		if u.EmailVerified {
			return sdk.Errorf(sdk.ErrConflict, "%s is already verified", u.Email).WithCode("email-already-verified")
		}
		email = u.Email
		return s.sendVerification(t, u)
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, AcceptedResponse{Status: "a new verification link has been sent to " + email})
}
