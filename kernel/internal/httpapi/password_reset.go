package httpapi

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/events"
	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/sdk"
)

// sendPasswordReset issues a reset token to the account with this email, if
// there is one, as an event the messaging plugin emails (the token sealed).
func (s *Server) sendPasswordReset(ctx context.Context, email, requestID, ip string) error {
	published := false
	err := database.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		u, err := identity.GetUserByEmail(ctx, tx, email)
		if errors.Is(err, sdk.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		tok, exp, err := identity.NewPasswordReset(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if _, err := outbox.Add(ctx, tx, outbox.Event{
			Type: outbox.PasswordResetRequested, Actor: "anonymous", RequestID: requestID, Sealer: s.Sealer,
			Data: map[string]any{"user_id": u.ID, "email": u.Email, "display_name": u.DisplayName, "token": tok, "expires_at": exp},
		}); err != nil {
			return err
		}
		published = true
		return audit.Append(ctx, tx, audit.Entry{
			ActorType: "anonymous", ActorID: u.ID.String(), Action: "identity.password_reset.requested", Target: u.ID.String(),
			Data: map[string]any{"user_id": u.ID.String()}, IP: ip, RequestID: requestID,
		})
	})
	if err == nil && published && s.Events != nil {
		s.Events.Wake(events.KernelSource)
	}
	return err
}
