package messaging

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// GET /api/v1/notifications/{id}/explain tells a person (or an admin with
// messaging.notification.explain_any) why they did or did not get a
// notification on each channel: the ledger's outcome and reason per
// channel, and every step it went through.

// Explanation is the delivery record of one notification.
type Explanation struct {
	NotificationID string               `json:"notification_id" format:"uuid"`
	RecipientID    string               `json:"recipient_id,omitempty" format:"uuid"`
	Category       string               `json:"category"`
	Kind           string               `json:"kind"`
	Title          string               `json:"title"`
	Critical       bool                 `json:"critical" doc:"Security messages: no preference stops them."`
	Transactional  bool                 `json:"transactional" doc:"About the person's own account or dealings: no unsubscribe headers."`
	CreatedAt      time.Time            `json:"created_at"`
	Channels       []ChannelExplanation `json:"channels"`
}

// ChannelExplanation is one channel's outcome.
type ChannelExplanation struct {
	Channel    string      `json:"channel" enum:"email,push,in_app"`
	Status     string      `json:"status" doc:"sent, suppressed, throttled, digest, digested, deferred, retrying, pending, bounced, complained or failed."`
	ReasonCode string      `json:"reason_code"`
	Reason     string      `json:"reason" doc:"Why, in words."`
	Attempts   int         `json:"attempts"`
	NextAt     *time.Time  `json:"next_attempt_at,omitempty" doc:"When it is tried again, while it waits."`
	SentAt     *time.Time  `json:"sent_at,omitempty"`
	DigestID   string      `json:"digest_id,omitempty" format:"uuid" doc:"The digest notification it went out in."`
	History    []StepTaken `json:"history"`
}

// StepTaken is one change of a delivery.
type StepTaken struct {
	Status     string    `json:"status"`
	ReasonCode string    `json:"reason_code"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

func (p *Plugin) explainRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/notifications/{notification_id}/explain", Permission: PermNotificationRead,
			Summary:  "Why one did (or did not) get a notification, per channel (its recipient, or an admin)",
			Response: Explanation{}, Handler: p.explain},
	}
}

var waiting = map[string]bool{"pending": true, "deferred": true, "throttled": true, "retrying": true, "digest": true}

func (p *Plugin) explain(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("notification_id")
	if err != nil {
		return nil, err
	}
	var out Explanation
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id::text, coalesce(recipient_id::text, ''), category, kind, title, critical, transactional, created_at
			FROM notifications WHERE id = $1`, id).Scan(&out.NotificationID, &out.RecipientID, &out.Category, &out.Kind, &out.Title,
			&out.Critical, &out.Transactional, &out.CreatedAt)
		if err == pgx.ErrNoRows || (err == nil && out.RecipientID != req.Principal.UserID && !req.Principal.Can(PermExplainAny)) {
			return sdk.Errorf(sdk.ErrNotFound, "no notification %s of yours", id)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT channel, status, reason_code, reason, attempts, next_attempt_at, sent_at, coalesce(digest_id::text, '')
			FROM deliveries WHERE notification_id = $1 ORDER BY CASE channel WHEN 'in_app' THEN 0 WHEN 'email' THEN 1 ELSE 2 END`, id)
		if err != nil {
			return err
		}
		out.Channels, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChannelExplanation, error) {
			var c ChannelExplanation
			var next time.Time
			err := r.Scan(&c.Channel, &c.Status, &c.ReasonCode, &c.Reason, &c.Attempts, &next, &c.SentAt, &c.DigestID)
			if waiting[c.Status] {
				c.NextAt = &next
			}
			c.History = []StepTaken{}
			return c, err
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT channel, status, reason_code, reason, at FROM delivery_events WHERE notification_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		var ch string
		var s StepTaken
		_, err = pgx.ForEachRow(rows, []any{&ch, &s.Status, &s.ReasonCode, &s.Reason, &s.At}, func() error {
			for i := range out.Channels {
				if out.Channels[i].Channel == ch {
					out.Channels[i].History = append(out.Channels[i].History, s)
				}
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Channels == nil {
		out.Channels = []ChannelExplanation{}
	}
	return sdk.JSON(http.StatusOK, out)
}
