package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Creating notifications. Every source (a kernel or plugin event, a
// mention, a reply, an announcement) makes notes and flushes them in the
// transaction of its change: one notification per person, a delivery
// row per channel with the decision taken now (in-app delivered at once,
// email and push pending for the fan-out job, or suppressed, or waiting
// for a digest), each with its reason. A note whose dedupe key exists is
// skipped, so a repeated source notifies once.

// note is one notification to create.
type note struct {
	Recipient string
	Category  Category
	Kind      string
	Title     string
	Body      string
	Link      string // the app's path (or an absolute URL)
	Data      map[string]any
	Actor     string
	PostID    string
	EventID   string
	Dedupe    string
}

// notifier collects notes and writes them in tx.
type notifier struct {
	p     *Plugin
	scope sdk.Scope
	tx    pgx.Tx
	cfg   Config
	notes []note
}

func (n *notifier) add(x note) { n.notes = append(n.notes, x) }

// The channel the fan-out job's on-event run listens to, and the
// Postgres channel that wakes the inbox streams.
const inboxChannel = "plugin_messaging_inbox"

// flush writes the notes, wakes the inbox streams of those delivered in
// the app, and when anything waits for email or push, notes the demand
// and publishes messaging.notifications.queued.v1 (which starts the
// fan-out job for the institution).
func (n *notifier) flush(ctx context.Context) error {
	if len(n.notes) == 0 {
		return nil
	}
	notes := n.notes
	n.notes = nil
	tenant := n.scope.Tenant()
	now := n.p.now()
	var users []string
	for _, x := range notes {
		users = append(users, x.Recipient)
	}
	people, err := loadRecipients(ctx, n.tx, users)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	type queued struct{ inApp bool }
	var order []queued
	pending := map[Channel]int{}
	for _, x := range notes {
		ci, ok := categoryOf(x.Category)
		if !ok {
			return fmt.Errorf("notification of unknown category %q", x.Category)
		}
		r := people[x.Recipient]
		if r == nil {
			return fmt.Errorf("notification %s without a recipient", x.Kind)
		}
		if r.known && !r.active {
			continue // no longer a member of the institution
		}
		var rows []deliveryRow
		inApp := false
		for _, ch := range channels {
			if ci.Category == CatDigest && ch != Email {
				continue // a digest is an email
			}
			mode, src := resolveMode(ci, ch, n.cfg.Defaults, r.settings.prefs)
			d := decideAtCreation(ci, ch, mode, src, r.settings, n.cfg, now)
			if ch == InApp && d.Status == "sent" {
				inApp = true
			}
			if d.Status == "pending" {
				pending[ch]++
			}
			rows = append(rows, d)
		}
		data := x.Data
		if data == nil {
			data = map[string]any{}
		}
		dataJSON, err := json.Marshal(data)
		if err != nil {
			return err
		}
		deliveries, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		b.Queue(insertNotification, tenant, newID(), nullable(x.Recipient), string(x.Category), x.Kind, truncate(x.Title, 300), truncate(x.Body, 2000),
			x.Link, dataJSON, nullable(x.Actor), nullable(x.PostID), nullable(x.EventID), x.Dedupe, ci.Critical, ci.Transactional, now,
			inApp, deliveries)
		order = append(order, queued{inApp})
	}
	if b.Len() == 0 {
		return nil
	}
	res := n.tx.SendBatch(ctx, b)
	var wake []string
	for _, q := range order {
		var id, recipient string
		var seq *int64
		err := res.QueryRow().Scan(&id, &recipient, &seq)
		if err == pgx.ErrNoRows {
			continue // its dedupe key exists: made before
		}
		if err != nil {
			res.Close()
			return fmt.Errorf("creating a notification: %w", err)
		}
		if q.inApp && seq != nil {
			wake = append(wake, tenant+":"+recipient+":"+strconv.FormatInt(*seq, 10))
		}
	}
	if err := res.Close(); err != nil {
		return err
	}
	if len(wake) > 0 {
		if _, err := n.tx.Exec(ctx, `SELECT pg_notify($1, w) FROM unnest($2::text[]) AS w`, inboxChannel, wake); err != nil {
			return err
		}
	}
	return n.queued(ctx, pending, now)
}

// queued notes the institution's demand on the channels and publishes
// the event that runs the fan-out job for it.
func (n *notifier) queued(ctx context.Context, pending map[Channel]int, now time.Time) error {
	total := 0
	for ch, k := range pending {
		total += k
		if _, err := n.tx.Exec(ctx, `
			INSERT INTO send_demand (channel, institution, waiting, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (channel, institution) DO UPDATE SET waiting = send_demand.waiting + excluded.waiting, updated_at = excluded.updated_at`,
			string(ch), n.scope.Tenant(), k, now); err != nil {
			return err
		}
	}
	if total == 0 {
		return nil
	}
	return n.scope.Publish(ctx, n.tx, EventNotificationsQueued, NotificationsQueued{Email: pending[Email], Push: pending[Push]})
}

// insertNotification writes a notification, its in-app sequence number
// (under the person's counter row, so their sequence commits in order)
// and its deliveries with their first events, in one statement; nothing
// when the dedupe key exists.
const insertNotification = `
WITH c AS (
	INSERT INTO inbox_counters (tenant_id, user_id, last_seq)
	SELECT $1, $3::uuid, 1 WHERE $17 AND $3::uuid IS NOT NULL
	  AND NOT EXISTS (SELECT 1 FROM notifications WHERE dedupe_key = $13)
	ON CONFLICT (tenant_id, user_id) DO UPDATE SET last_seq = inbox_counters.last_seq + 1
	RETURNING last_seq
), n AS (
	INSERT INTO notifications (tenant_id, id, recipient_id, category, kind, title, body, link, data, actor_id, post_id,
		source_event_id, dedupe_key, critical, transactional, created_at, inbox_seq)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, (SELECT last_seq FROM c))
	ON CONFLICT (tenant_id, dedupe_key) DO NOTHING
	RETURNING id, recipient_id, inbox_seq
), d AS (
	INSERT INTO deliveries (tenant_id, notification_id, channel, status, reason_code, reason, next_attempt_at, sent_at, updated_at)
	SELECT $1, n.id, v.channel, v.status, v.reason_code, v.reason, coalesce(v.next_attempt_at, $16),
		CASE WHEN v.status = 'sent' THEN $16::timestamptz END, $16
	FROM n CROSS JOIN jsonb_to_recordset($18::jsonb) AS v(channel text, status text, reason_code text, reason text, next_attempt_at timestamptz)
	RETURNING notification_id, channel, status, reason_code, reason
), e AS (
	INSERT INTO delivery_events (tenant_id, notification_id, channel, status, reason_code, reason, at)
	SELECT $1, notification_id, channel, status, reason_code, reason, $16 FROM d
)
SELECT id::text, coalesce(recipient_id::text, ''), inbox_seq FROM n`

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deliveryRow is the decision about one channel.
type deliveryRow struct {
	Channel     Channel    `json:"channel"`
	Status      string     `json:"status"`
	Code        string     `json:"reason_code"`
	Reason      string     `json:"reason"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
}

// decideAtCreation decides a channel when the notification is made:
// in-app is delivered now or suppressed; email and push are pending,
// suppressed, or (email) wait for the person's digest.
func decideAtCreation(ci categoryInfo, ch Channel, mode Mode, src prefSource, ps personSettings, cfg Config, now time.Time) deliveryRow {
	d := deliveryRow{Channel: ch}
	switch {
	case mode == Off:
		d.Status, d.Code, d.Reason = "suppressed", "preference_off", offReason(ci.Category, ch, src)
	case ch == InApp:
		d.Status, d.Code, d.Reason = "sent", "delivered", "delivered to the in-app inbox"
		if src == srcCritical && overridden(ci, ch, ps) {
			d.Code, d.Reason = "critical", "security messages always reach you, whatever your preferences"
		}
	case mode == Digest:
		at := nextDigest(now, ps, cfg)
		d.Status, d.Code = "digest", "digest_scheduled"
		d.Reason = fmt.Sprintf("waiting for your daily digest (%s, %s)", at.In(ps.location(cfg)).Format("Mon 2 Jan 15:04"), ps.location(cfg))
		d.NextAttempt = &at
	default:
		d.Status, d.Code, d.Reason = "pending", "queued", "queued for sending"
		if src == srcCritical && overridden(ci, ch, ps) {
			d.Code, d.Reason = "critical", "security messages always reach you, whatever your preferences"
		}
	}
	return d
}

// overridden reports whether a person turned off a channel of a critical
// category (a choice the API refuses, but one an old unsubscribe or a
// complaint can have left): the message goes all the same, and says so.
func overridden(ci categoryInfo, ch Channel, ps personSettings) bool {
	if !ci.Critical {
		return false
	}
	if ps.prefs != nil {
		if pr, ok := ps.prefs[prefKey{ci.Category, ch}]; ok && pr.Mode == Off {
			return true
		}
	}
	return ch == Email && ps.EmailStatus == "complained"
}

// offReason says who turned a channel off.
func offReason(c Category, ch Channel, src prefSource) string {
	what := string(c) + " " + channelWord(ch)
	switch src {
	case srcPerson:
		return "you turned off " + what
	case srcUnsubscribe:
		return "you unsubscribed from " + what
	case srcComplaint:
		return "your address reported our mail as spam, so " + what + " stopped"
	case srcInstitution:
		return "the institution's default for " + what + " is off"
	default:
		return what + " is off unless you turn it on"
	}
}

func channelWord(ch Channel) string {
	switch ch {
	case InApp:
		return "in-app notifications"
	case Push:
		return "push notifications"
	}
	return "email"
}

// suppressFor suppresses what still waits to be sent of the notifications
// matching cond (on n, with its arguments from $1), with a reason.
func suppressFor(ctx context.Context, tx pgx.Tx, now time.Time, cond, code, reason string, args ...any) error {
	k := len(args)
	args = append(args, code, reason, now)
	_, err := tx.Exec(ctx, fmt.Sprintf(`
		WITH d AS (
			UPDATE deliveries d SET status = 'suppressed', reason_code = $%[1]d, reason = $%[2]d, updated_at = $%[3]d, claim_id = NULL
			FROM notifications n
			WHERE n.tenant_id = d.tenant_id AND n.id = d.notification_id AND (%[4]s)
			  AND d.status IN ('pending', 'deferred', 'throttled', 'retrying', 'digest')
			RETURNING d.tenant_id, d.notification_id, d.channel)
		INSERT INTO delivery_events (tenant_id, notification_id, channel, status, reason_code, reason, at)
		SELECT tenant_id, notification_id, channel, 'suppressed', $%[1]d, $%[2]d, $%[3]d FROM d`, k+1, k+2, k+3, cond), args...)
	return err
}

// absolute makes an app path absolute under the institution's app URL.
func absolute(cfg Config, link string) string {
	if link == "" || strings.HasPrefix(link, "https://") || strings.HasPrefix(link, "http://") {
		return link
	}
	return strings.TrimRight(cfg.AppURL, "/") + link
}
