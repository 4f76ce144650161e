package messaging

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Bounces and complaints a mail provider reports after accepting a
// message (SMTP refusals are recorded as they happen, send.go). The
// provider (or a small relay in front of it) posts to
// POST /api/v1/webhooks/messaging/{tenant_id}, with no session, a report
// signed with the institution's webhook_signing_key:
//
//	signature = hex(HMAC-SHA256(key, timestamp + "." + id + "." + type + "." + message_id))
//
// The kernel passes no custom header to a plugin, so the signature and
// its timestamp travel in the body. A report older or newer than five
// minutes is refused (a replay captured earlier), and one whose ID was
// seen is acknowledged without changing anything (the provider retrying).
// A bounce marks the delivery bounced and the person's address bounced;
// a complaint marks it complained and turns that category's email off
// for the person (source complaint). Either stops non-critical email to
// the address; critical mail still goes.

// MailReport is a provider's bounce or complaint.
type MailReport struct {
	ID        string `json:"id" minLength:"1" maxLength:"200" doc:"The provider's ID of this report: a repeat is acknowledged and ignored."`
	Type      string `json:"type" enum:"bounce,complaint"`
	MessageID string `json:"message_id" minLength:"3" maxLength:"300" doc:"The Message-ID of the email it is about (with or without angle brackets)."`
	Reason    string `json:"reason,omitempty" maxLength:"500" doc:"What the provider said."`
	Timestamp int64  `json:"timestamp" minimum:"0" doc:"Unix seconds when the provider signed it."`
	Signature string `json:"signature" minLength:"64" maxLength:"64" pattern:"^[0-9a-f]{64}$" doc:"hex(HMAC-SHA256(webhook_signing_key, timestamp.id.type.message_id))."`
}

// MailReportResult says what a report changed.
type MailReportResult struct {
	Applied bool   `json:"applied" doc:"false: a repeat, or a message this institution did not send."`
	Detail  string `json:"detail"`
}

// webhookTolerance is how far a report's timestamp may be from now.
const webhookTolerance = 5 * time.Minute

func (p *Plugin) webhookRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/webhooks/messaging/{tenant_id}", Public: true,
			Summary: "A mail provider's signed bounce or complaint report (webhook_signing_key); needs no session",
			Request: MailReport{}, Response: MailReportResult{}, Handler: p.mailReport},
	}
}

// signReport is the signature of a report (tests and providers' relays).
func signReport(key string, r MailReport) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(strconv.FormatInt(r.Timestamp, 10) + "." + r.ID + "." + r.Type + "." + r.MessageID))
	return hex.EncodeToString(m.Sum(nil))
}

func (p *Plugin) mailReport(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	tenant, err := req.UUIDParam("tenant_id")
	if err != nil {
		return nil, err
	}
	var in MailReport
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	cfg, enabled, err := p.tenantConfigEnabled(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if !enabled {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no institution %s uses messaging", tenant).WithCode("not_enabled")
	}
	unsigned := sdk.Errorf(sdk.ErrUnauthorized, "the report is not signed with this institution's webhook key").WithCode("bad_signature")
	if cfg.WebhookKey == "" {
		return nil, unsigned
	}
	if !hmac.Equal([]byte(signReport(cfg.WebhookKey, in)), []byte(in.Signature)) {
		return nil, unsigned
	}
	now := p.now()
	if at := time.Unix(in.Timestamp, 0); at.Before(now.Add(-webhookTolerance)) || at.After(now.Add(webhookTolerance)) {
		return nil, sdk.Errorf(sdk.ErrInvalid, "the report's timestamp is more than %s from now: sign it again", webhookTolerance).WithCode("stale_timestamp")
	}
	msgID := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(in.MessageID), "<"), ">")
	out := MailReportResult{}
	err = p.env.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO mail_reports (tenant_id, id, kind, message_id, received_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, id) DO NOTHING`, tenant, in.ID, in.Type, msgID, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			out.Detail = "this report was received before"
			return nil
		}
		var notification, recipient, category string
		err = tx.QueryRow(ctx, `SELECT d.notification_id::text, coalesce(n.recipient_id::text, ''), n.category
			FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.message_id = $1 AND d.channel = 'email'`, msgID).
			Scan(&notification, &recipient, &category)
		if err == pgx.ErrNoRows {
			out.Detail = "no email of this institution has that Message-ID"
			return nil
		}
		if err != nil {
			return err
		}
		status, word := "bounced", "bounced"
		if in.Type == "complaint" {
			status, word = "complained", "was reported as spam"
		}
		reason := fmt.Sprintf("the mail provider reported that it %s", word)
		if in.Reason != "" {
			reason += ": " + truncate(in.Reason, 300)
		}
		if err := setDelivery(ctx, tx, notification, Email, status, "provider_"+in.Type, reason, now, ""); err != nil {
			return err
		}
		out.Applied, out.Detail = true, "recorded: "+status
		if recipient == "" {
			return nil // an invitation: no person yet
		}
		if _, err := tx.Exec(ctx, `INSERT INTO person_settings (tenant_id, user_id, email_status, email_status_reason, email_status_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, user_id) DO UPDATE SET email_status = excluded.email_status, email_status_reason = excluded.email_status_reason,
				email_status_at = excluded.email_status_at`, tenant, recipient, status, truncate(reason, 500), now); err != nil {
			return err
		}
		if ci, ok := categoryOf(Category(category)); ok && in.Type == "complaint" && ci.Configurable {
			return setPreference(ctx, tx, tenant, recipient, ci.Category, Email, string(Off), srcComplaint, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
