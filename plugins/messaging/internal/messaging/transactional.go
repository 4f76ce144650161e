package messaging

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wneessen/go-mail"

	"github.com/edulure/edulure/sdk"
)

// Transactional mail for the kernel's events that carry a one-time token
// for the recipient's inbox: an invitation (tenancy.invitation.created.v1),
// a password reset, an address to verify (identity.*.requested.v1), and a
// locked second factor (identity.mfa.locked.v1). The kernel seals the
// tokens at rest and opens them only for the subscriber, so the plugin
// sends them from the event handler itself and never stores them: the
// ledger records the sending, not the token or the address. A failure the
// server may not repeat (4xx, no connection) fails the delivery, and the
// kernel redelivers the event with backoff; the last attempt, or a
// refusal for good (5xx), is recorded as the outcome. These messages carry
// no unsubscribe headers, and no preference stops them.

// MaxTransactionalAttempts is how often the kernel delivers a
// transactional event before it dead-letters it.
const MaxTransactionalAttempts = 12

type invitationData struct {
	InvitationID string    `json:"invitation_id"`
	Email        string    `json:"email"`
	Roles        []string  `json:"roles"`
	Token        string    `json:"token"`
	TenantSlug   string    `json:"tenant_slug"`
	TenantName   string    `json:"tenant_name"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// invitationCreated emails an invitation with its link.
func (p *Plugin) invitationCreated(ctx context.Context, ev *sdk.Event) error {
	var d invitationData
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := errors.Join(needTenant(ev), needUUID(ev, "invitation_id", d.InvitationID)); err != nil {
		return err
	}
	to, err := netmail.ParseAddress(d.Email)
	if err != nil || d.Token == "" {
		return fmt.Errorf("event %s: an invitation needs an address and a token", ev.ID)
	}
	if strings.HasPrefix(d.Token, "sealed:") {
		return fmt.Errorf("event %s: the invitation's token is still sealed (the kernel opens it for subscribers)", ev.ID)
	}
	cfg, err := p.config(ctx, ev)
	if err != nil {
		return err
	}
	id := ""
	var status string
	now := p.now()
	// 1. The ledger first, in a transaction of its own, so that the
	// outcome of each attempt is recorded whatever happens after.
	err = p.env.DB.InTenant(ctx, ev.TenantID, func(tx pgx.Tx) error {
		if d.TenantName != "" {
			if err := rememberInstitution(ctx, tx, ev.TenantID, d.TenantSlug, d.TenantName); err != nil {
				return err
			}
		}
		dedupe := "invitation:" + d.InvitationID
		if _, err := tx.Exec(ctx, `
			WITH n AS (
				INSERT INTO notifications (tenant_id, id, category, kind, title, body, data, source_event_id, dedupe_key, critical, transactional, created_at)
				VALUES ($1, $2, 'invitations', 'tenancy.invitation', $3, '', $4, $5, $6, true, true, $7)
				ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id)
			INSERT INTO deliveries (tenant_id, notification_id, channel, status, reason_code, reason, next_attempt_at, updated_at)
			SELECT $1, n.id, 'email', 'pending', 'queued', 'sent with the event', $7, $7 FROM n`,
			ev.TenantID, newID(), "Invitation to "+d.TenantName, map[string]any{"invitation_id": d.InvitationID, "roles": d.Roles},
			ev.ID, dedupe, now); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT n.id::text, d.status FROM notifications n JOIN deliveries d ON d.notification_id = n.id AND d.channel = 'email'
			WHERE n.dedupe_key = $1`, dedupe).Scan(&id, &status)
	})
	if err != nil {
		return err
	}
	if status != "pending" && status != "retrying" {
		return nil // sent (or refused for good) before
	}
	name := cfg.brand(d.TenantName)
	if d.TenantName != "" {
		name = d.TenantName
	}
	link := strings.TrimRight(cfg.AppURL, "/") + "/accept-invitation?" + url.Values{"token": {d.Token}, "institution": {d.TenantSlug}}.Encode()
	content := mailContent{
		Subject: "You are invited to join " + name, Heading: "Join " + name, Greeting: "Hello,",
		Paragraphs: []string{fmt.Sprintf("You have been invited to join %s as %s.", name, roleWords(d.Roles)),
			"Accept the invitation to create your account (or sign in with this address) and join."},
		Action: &mailAction{Label: "Accept the invitation", URL: link},
		Note:   inviteNote(d.ExpiresAt),
		Why:    "You get this because someone at " + name + " invited this address.",
	}
	env := envelope{From: cfg.from(name), ReplyTo: cfg.ReplyTo, To: *to, MessageID: messageID(id, Email, cfg.SenderEmail),
		Category: CatInvitations, Date: now}
	msg, err := buildMessage(env, brandOf(cfg, name), content)
	if err != nil {
		return err
	}
	o := sendMails(ctx, smtpOf(cfg), []*mail.Msg{msg})[0]
	// 2. The outcome.
	w := &work{NotificationID: id, Channel: Email, Attempts: ev.Attempt - 1, Status: status}
	switch {
	case o.Sent:
		w.finish("sent", "delivered", "accepted by the mail server")
		w.messageID = env.MessageID
	case o.Bounce:
		w.finish("bounced", "recipient_refused", "the mail server refused the address: "+o.Detail)
	case o.Permanent:
		w.finish("failed", "refused", "the mail server refused the message: "+o.Detail)
	case ev.Attempt >= MaxTransactionalAttempts:
		w.finish("failed", "gave_up", fmt.Sprintf("gave up after %d attempts: %s", ev.Attempt, o.Detail))
	default:
		w.finish("retrying", "transient_failure", fmt.Sprintf("attempt %d failed (%s); the event is delivered again", ev.Attempt, o.Detail))
	}
	err = p.env.DB.InTenant(ctx, ev.TenantID, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET attempts = attempts + 1, message_id = coalesce($2, message_id),
			sent_at = CASE WHEN $3 THEN $4::timestamptz END WHERE notification_id = $1 AND channel = 'email'`,
			id, nullable(w.messageID), w.status == "sent", now); err != nil {
			return err
		}
		return setDelivery(ctx, tx, id, Email, w.status, w.code, w.reason, now, "")
	})
	if err != nil {
		return err
	}
	if w.status == "retrying" {
		return fmt.Errorf("sending the invitation %s: %s", d.InvitationID, o.Detail)
	}
	return nil
}

func roleWords(roles []string) string {
	if len(roles) == 0 {
		return "a member"
	}
	return strings.Join(roles, " and ")
}

func inviteNote(expires time.Time) string {
	if expires.IsZero() {
		return "If you did not expect this invitation, ignore this email."
	}
	return "The invitation expires on " + expires.UTC().Format("2 January 2006 at 15:04 UTC") + ". If you did not expect it, ignore this email."
}

type accountData struct {
	identityData
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until"`
	ChangedAt   time.Time `json:"changed_at"`
	Revoked     int       `json:"sessions_revoked"`
}

// accountMail emails a person about their account (platform events: the
// operator's sender, branding and SMTP server).
func (p *Plugin) accountMail(ctx context.Context, ev *sdk.Event) error {
	var d accountData
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := d.check(ev); err != nil {
		return err
	}
	if strings.HasPrefix(d.Token, "sealed:") {
		return fmt.Errorf("event %s: its token is still sealed (the kernel opens it for subscribers)", ev.ID)
	}
	to, err := netmail.ParseAddress(d.Email)
	if err != nil {
		return fmt.Errorf("event %s: email: %w", ev.ID, err)
	}
	to.Name = d.DisplayName
	cfg := p.op
	var status string
	err = p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error {
		if err := remember(ctx, tx, d.identityData); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT status FROM platform_deliveries WHERE event_id = $1`, ev.ID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || status != "" {
		return err // sent (or refused for good) before
	}
	app := strings.TrimRight(cfg.AppURL, "/")
	c := mailContent{Greeting: greeting(d.DisplayName), Why: "You get this because it is about your account: it cannot be turned off."}
	switch ev.Type {
	case EventPasswordReset:
		c.Subject, c.Heading = "Reset your password", "Reset your password"
		c.Paragraphs = []string{"Someone, hopefully you, asked to reset the password of your account."}
		c.Action = &mailAction{"Choose a new password", app + "/reset-password?" + url.Values{"token": {d.Token}}.Encode()}
		c.Note = expiryNote(d.ExpiresAt) + " If you did not ask, ignore this email: your password stays as it is."
	case EventVerification:
		c.Subject, c.Heading = "Confirm your email address", "Confirm your email address"
		c.Paragraphs = []string{"Confirm that this address is yours to finish setting up your account."}
		c.Action = &mailAction{"Confirm my address", app + "/verify-email?" + url.Values{"token": {d.Token}}.Encode()}
		c.Note = expiryNote(d.ExpiresAt) + " If you did not create an account, ignore this email."
	case EventMFALocked:
		c.Subject, c.Heading = "Two-factor sign-in is locked", "Two-factor sign-in is locked"
		c.Paragraphs = []string{
			fmt.Sprintf("After %d wrong codes in a row, two-factor sign-in to your account is locked until %s.", d.Failures, d.LockedUntil.UTC().Format("15:04 UTC on 2 January 2006")),
			"Whoever tried knew your password. If it was not you, change your password now.",
		}
		c.Action = &mailAction{"Change my password", app + "/settings/security"}
	case EventPasswordChanged:
		c.Subject, c.Heading = "Your password was changed", "Your password was changed"
		c.Paragraphs = []string{
			fmt.Sprintf("The password of your account was changed at %s, from a signed-in session.", d.ChangedAt.UTC().Format("15:04 UTC on 2 January 2006")),
		}
		if d.Revoked > 0 {
			c.Paragraphs = append(c.Paragraphs, fmt.Sprintf("Your other sessions (%d) were signed out.", d.Revoked))
		}
		c.Paragraphs = append(c.Paragraphs, "If it was not you, someone is using your account: reset your password now and tell your institution's administrators.")
		c.Action = &mailAction{"Reset my password", app + "/forgot-password"}
	default:
		return fmt.Errorf("event %s: no mail for %s", ev.ID, ev.Type)
	}
	now := p.now()
	env := envelope{From: cfg.from(""), ReplyTo: cfg.ReplyTo, To: *to, MessageID: messageID(ev.ID, Email, cfg.SenderEmail), Category: CatSecurity, Date: now}
	msg, err := buildMessage(env, brandOf(cfg, ""), c)
	if err != nil {
		return err
	}
	o := sendMails(ctx, smtpOf(cfg), []*mail.Msg{msg})[0]
	status, reason := "sent", "accepted by the mail server"
	switch {
	case o.Sent:
	case o.Bounce:
		status, reason = "bounced", "the mail server refused the address: "+o.Detail
	case o.Permanent:
		status, reason = "failed", "the mail server refused the message: "+o.Detail
	case ev.Attempt >= MaxTransactionalAttempts:
		status, reason = "failed", fmt.Sprintf("gave up after %d attempts: %s", ev.Attempt, o.Detail)
	default:
		return fmt.Errorf("sending %s to user %s: %s", ev.Type, d.UserID, o.Detail)
	}
	return p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO platform_deliveries (event_id, kind, user_id, status, reason, message_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
			ev.ID, strings.TrimSuffix(ev.Type, ".v1"), d.UserID, status, truncate(reason, 1000), env.MessageID, now)
		return err
	})
}

func expiryNote(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return "The link works until " + t.UTC().Format("15:04 UTC on 2 January 2006") + "."
}
