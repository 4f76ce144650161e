package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/sdk"
)

// Every route that checks a second factor (the login's /auth/mfa/verify,
// and /me/mfa/disable and /me/mfa/recovery-codes) goes through the
// account-level lockout: secondFactorLocked before the check,
// secondFactorFailed after a wrong code, identity.ClearSecondFactorFailures
// after a right one.

// secondFactorLocked returns the 429 to answer while the account's second
// factor is locked, or nil. It locks the user's row until the transaction
// ends, so concurrent guesses on any replica are counted one at a time.
func (s *Server) secondFactorLocked(t *txc, u identity.User) (*problem.Problem, error) {
	err := identity.CheckMFALock(t.c.Request().Context(), t, u.ID, s.now())
	var locked identity.ErrMFALocked
	if errors.As(err, &locked) {
		return mfaLocked(locked.Until), nil
	}
	return nil, err
}

// secondFactorFailed counts a wrong code against the account. It returns
// what to answer: codeErr, or the 429 when this failure locked the account,
// in which case the person is told by an identity.mfa.locked.v1 event.
// Errors that are not a wrong code (nothing enrolled) are not counted.
func (s *Server) secondFactorFailed(t *txc, u identity.User, codeErr error) (answer, err error) {
	if !errors.Is(codeErr, sdk.ErrUnauthorized) {
		return codeErr, nil
	}
	failures, until, err := identity.FailSecondFactor(t.c.Request().Context(), t, u.ID, s.now())
	if err != nil {
		return nil, err
	}
	if err := t.audit(uuid.Nil, "identity.mfa.failed", u.ID.String(), map[string]any{"user_id": u.ID.String(), "failures": failures}); err != nil {
		return nil, err
	}
	if until == nil {
		return codeErr, nil
	}
	// The messaging plugin delivers this event as an email: whoever tried
	// knew the password.
	if err := t.event(outbox.MFALocked, uuid.Nil, map[string]any{
		"user_id": u.ID, "email": u.Email, "display_name": u.DisplayName, "failures": failures, "locked_until": until.UTC(),
	}); err != nil {
		return nil, err
	}
	if err := t.audit(uuid.Nil, "identity.mfa.locked", u.ID.String(), map[string]any{"user_id": u.ID.String(), "failures": failures, "locked_until": until.UTC()}); err != nil {
		return nil, err
	}
	return mfaLocked(*until), nil
}

func mfaLocked(until time.Time) *problem.Problem {
	p := problem.New(http.StatusTooManyRequests, "mfa-locked", "too many wrong second-factor codes in a row: two-factor sign-in for this account is locked until "+
		until.UTC().Format(time.RFC3339)+"; if this was not you, someone knows your password: change it")
	p.RetryAfter = int(time.Until(until).Seconds()) + 1
	return p
}
