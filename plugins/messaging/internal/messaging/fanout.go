package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The NotificationFanoutJob: every minute for each institution, and at
// once when notifications are queued (messaging.notifications.queued.v1),
// it sends what is due by email and push.
//
//  1. Digests: email waiting for a person's digest hour is gathered into
//     one digest notification per person (assembleDigests, send.go).
//  2. Per channel, in batches: claim due deliveries with FOR UPDATE SKIP
//     LOCKED and a lease (claim_id, claimed_until), so that two replicas'
//     runs never take the same row and a run that dies gives its rows
//     back when the lease ends; decide each again (membership, hidden
//     content, the preference now, quiet hours, the address); reserve
//     the sends (throttle.go: the institution's limit and its fair share
//     of the channel); send; record each outcome with its reason, and a
//     transient failure's next attempt (exponential backoff, with
//     jitter) until max_attempts, then a permanent failure.
//  3. What is due and did not fit the minute is marked throttled until
//     the next one, and the institution's demand is recorded.

// Job names.
const (
	JobFanout      = "notification-fanout"
	JobFanoutNow   = "notification-fanout-now"
	JobMaintenance = "messaging-maintenance"
)

const (
	fanoutBatch = 500
	claimLease  = 5 * time.Minute
)

// work is one claimed delivery.
type work struct {
	NotificationID string
	Channel        Channel
	Recipient      string
	Category       Category
	Kind           string
	Title, Body    string
	Link           string
	Data           json.RawMessage
	PostID         string
	Critical       bool
	Transactional  bool
	CreatedAt      time.Time
	Attempts       int
	Status, Code   string // as claimed
	postGone       bool   // its post is hidden or deleted
	noDevice       bool   // push: the person has no subscription
	r              *recipient

	// the outcome
	send      bool
	tried     bool // an attempt was made (counts towards max_attempts)
	status    string
	code      string
	reason    string
	next      time.Time
	messageID string
}

func (w *work) finish(status, code, reason string) {
	w.status, w.code, w.reason, w.send = status, code, reason, false
}

func (w *work) wait(status, code, reason string, until time.Time) {
	w.finish(status, code, reason)
	w.next = until
}

// retry records a transient failure: another attempt after a backoff, or
// a permanent failure after the last.
func (w *work) retry(cfg Config, now time.Time, detail string) {
	w.tried = true
	attempts := w.Attempts + 1
	if attempts >= cfg.MaxAttempts {
		w.finish("failed", "gave_up", fmt.Sprintf("gave up after %d attempts: %s", attempts, detail))
		return
	}
	w.wait("retrying", "transient_failure", fmt.Sprintf("attempt %d failed (%s); trying again", attempts, detail), now.Add(backoff(attempts)))
}

// backoff is the wait after the nth failed attempt: 30 s doubling, at most
// an hour, ±10%.
func backoff(n int) time.Duration {
	d := 30 * time.Second << min(n-1, 7)
	d = min(d, time.Hour)
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// fanoutStats is a run's account, for its history.
type fanoutStats map[string]int

func (s fanoutStats) String() string {
	if len(s) == 0 {
		return "nothing due"
	}
	var parts []string
	for _, k := range []string{"digests", "email.sent", "email.throttled", "email.retrying", "email.failed", "email.bounced", "email.suppressed", "email.deferred", "push.sent", "push.throttled", "push.retrying", "push.failed", "push.suppressed", "push.deferred"} {
		if s[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, s[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// fanout is the job's handler.
func (p *Plugin) fanout(ctx context.Context, run *sdk.JobRun) error {
	cfg, err := p.config(ctx, run)
	if err != nil {
		return err
	}
	now := p.now()
	st := fanoutStats{}
	if err := p.assembleDigests(ctx, run, cfg, now, st); err != nil {
		return fmt.Errorf("gathering digests: %w", err)
	}
	for _, ch := range []Channel{Email, Push} {
		if err := p.fanoutChannel(ctx, run, cfg, ch, now, st); err != nil {
			return fmt.Errorf("sending %s: %w", ch, err)
		}
	}
	run.SetOutput(st.String())
	return nil
}

func (p *Plugin) fanoutChannel(ctx context.Context, run *sdk.JobRun, cfg Config, ch Channel, now time.Time, st fanoutStats) error {
	tenant := run.Tenant()
	var limited *grant
	for ctx.Err() == nil {
		claim := newID()
		batch, err := p.claim(ctx, run, ch, claim, now)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		var toSend []*work
		for _, w := range batch {
			p.evaluate(w, cfg, now)
			if w.send {
				toSend = append(toSend, w)
			}
		}
		g, err := p.reserve(ctx, tenant, ch, cfg, len(toSend), now)
		if err != nil {
			return err
		}
		sending := toSend[:min(g.n, len(toSend))]
		for _, w := range toSend[len(sending):] {
			w.wait("throttled", g.code, g.reason, g.until)
		}
		switch ch {
		case Email:
			p.sendEmails(ctx, tenant, cfg, sending, now)
		case Push:
			if err := p.sendPushes(ctx, tenant, cfg, sending, now); err != nil {
				return err
			}
		}
		if err := p.record(ctx, run, claim, batch, now, st); err != nil {
			return err
		}
		if len(sending) < len(toSend) {
			limited = &g
			break
		}
		if len(batch) < fanoutBatch {
			break
		}
	}
	return p.env.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		if limited != nil {
			tag, err := tx.Exec(ctx, `
				WITH d AS (
					UPDATE deliveries SET status = 'throttled', reason_code = $3, reason = $4, next_attempt_at = $5, updated_at = $2
					WHERE channel = $1 AND status = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)
					RETURNING tenant_id, notification_id, channel)
				INSERT INTO delivery_events (tenant_id, notification_id, channel, status, reason_code, reason, at)
				SELECT tenant_id, notification_id, channel, 'throttled', $3, $4, $2 FROM d`,
				string(ch), now, limited.code, limited.reason, limited.until)
			if err != nil {
				return err
			}
			st[string(ch)+".throttled"] += int(tag.RowsAffected())
		}
		var waiting int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE channel = $1 AND status IN ('pending', 'deferred', 'throttled', 'retrying')
			AND next_attempt_at <= $2`, string(ch), now.Add(time.Minute)).Scan(&waiting); err != nil {
			return err
		}
		return p.setDemand(ctx, tenant, ch, waiting, now)
	})
}

// claim takes up to a batch of the channel's due deliveries.
func (p *Plugin) claim(ctx context.Context, run *sdk.JobRun, ch Channel, claim string, now time.Time) ([]*work, error) {
	var batch []*work
	err := run.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH due AS (
				SELECT notification_id FROM deliveries
				WHERE channel = $1 AND status IN ('pending', 'deferred', 'throttled', 'retrying') AND next_attempt_at <= $2
				  AND (claimed_until IS NULL OR claimed_until < $2)
				ORDER BY next_attempt_at, notification_id
				LIMIT $3 FOR UPDATE SKIP LOCKED
			), c AS (
				UPDATE deliveries d SET claim_id = $4, claimed_until = $5
				FROM due WHERE d.notification_id = due.notification_id AND d.channel = $1
				RETURNING d.notification_id, d.attempts, d.status, d.reason_code
			)
			SELECT n.id::text, coalesce(n.recipient_id::text, ''), n.category, n.kind, n.title, n.body, n.link, n.data,
				coalesce(n.post_id::text, ''), n.critical, n.transactional, n.created_at, c.attempts, c.status, c.reason_code,
				coalesce(po.hidden_at IS NOT NULL OR po.deleted_at IS NOT NULL, false)
			FROM c JOIN notifications n ON n.id = c.notification_id
			LEFT JOIN posts po ON po.id = n.post_id
			ORDER BY n.created_at, n.id`,
			string(ch), now, fanoutBatch, claim, now.Add(claimLease))
		if err != nil {
			return err
		}
		batch, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*work, error) {
			w := &work{Channel: ch}
			var cat string
			err := r.Scan(&w.NotificationID, &w.Recipient, &cat, &w.Kind, &w.Title, &w.Body, &w.Link, &w.Data, &w.PostID,
				&w.Critical, &w.Transactional, &w.CreatedAt, &w.Attempts, &w.Status, &w.Code, &w.postGone)
			w.Category = Category(cat)
			return w, err
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		users := make([]string, 0, len(batch))
		for _, w := range batch {
			users = append(users, w.Recipient)
		}
		rs, err := loadRecipients(ctx, tx, users)
		if err != nil {
			return err
		}
		for _, w := range batch {
			w.r = rs[w.Recipient]
		}
		if ch != Push {
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT DISTINCT user_id::text FROM devices WHERE user_id = ANY($1::uuid[])`, users)
		if err != nil {
			return err
		}
		with, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		has := map[string]bool{}
		for _, u := range with {
			has[u] = true
		}
		for _, w := range batch {
			w.noDevice = !has[w.Recipient]
		}
		return nil
	})
	return batch, err
}

// evaluate decides a claimed delivery again, now: it may no longer be
// wanted, have to wait, or go.
func (p *Plugin) evaluate(w *work, cfg Config, now time.Time) {
	ci, ok := categoryOf(w.Category)
	switch {
	case !ok || w.r == nil:
		w.finish("failed", "unknown", "the notification names no person or no known category")
		return
	case w.r.known && !w.r.active:
		w.finish("suppressed", "not_a_member", "you left the institution before it was sent")
		return
	case w.postGone && !ci.Critical:
		w.finish("suppressed", "content_hidden", "the post it is about was hidden or deleted before it was sent")
		return
	}
	mode, src := resolveMode(ci, w.Channel, cfg.Defaults, w.r.settings.prefs)
	if mode == Off {
		w.finish("suppressed", "preference_off", offReason(ci.Category, w.Channel, src))
		return
	}
	if w.Channel == Email && mode == Digest && ci.Category != CatDigest {
		at := nextDigest(now, w.r.settings, cfg)
		w.wait("digest", "digest_scheduled", fmt.Sprintf("waiting for your daily digest (%s)", at.In(w.r.settings.location(cfg)).Format("Mon 2 Jan 15:04 MST")), at)
		return
	}
	if w.Channel == Push && w.noDevice {
		// Nothing to push to: decided now, without taking a place in the
		// channel's share.
		w.finish("suppressed", "no_device", "you have no push subscription (register one with POST /api/v1/notifications/devices)")
		return
	}
	if !ci.Critical {
		if until, quiet := quietUntil(now, w.r.settings, cfg); quiet {
			start, end, _ := w.r.settings.quiet(cfg)
			loc := w.r.settings.location(cfg)
			w.wait("deferred", "quiet_hours", fmt.Sprintf("quiet hours (%s-%s, %s): held until %s", formatClock(start), formatClock(end), loc,
				until.In(loc).Format("15:04 Mon 2 Jan")), until)
			return
		}
	}
	if w.Channel == Email {
		if w.r.Email == "" {
			w.finish("failed", "no_address", "no email address is known for you")
			return
		}
		if !w.r.verified {
			w.finish("suppressed", "address_unverified", "your email address is not verified yet: verify it (the link sent at sign-up) to get email")
			return
		}
		if !ci.Critical && w.r.settings.EmailStatus != "ok" {
			w.finish("suppressed", "address_"+w.r.settings.EmailStatus, fmt.Sprintf("your address %s earlier (%s); only critical email goes to it", w.r.settings.EmailStatus, w.r.settings.EmailStatusReason))
			return
		}
	}
	w.send = true
}

// record writes the batch's outcomes, for the rows this run still holds.
func (p *Plugin) record(ctx context.Context, run *sdk.JobRun, claim string, batch []*work, now time.Time, st fanoutStats) error {
	return run.Tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, w := range batch {
			if w.status == "" {
				w.finish("retrying", "not_sent", "the run ended before it was sent")
				w.next = now
			}
			next := w.next
			if next.IsZero() {
				next = now
			}
			attempts := 0
			if w.tried {
				attempts = 1
			}
			var sentAt *time.Time
			if w.status == "sent" {
				sentAt = &now
			}
			b.Queue(`UPDATE deliveries SET status = $3, reason_code = $4, reason = $5, next_attempt_at = $6, attempts = attempts + $7,
					message_id = coalesce($8, message_id), sent_at = coalesce($9, sent_at), claim_id = NULL, claimed_until = NULL, updated_at = $10
				WHERE notification_id = $1 AND channel = $2 AND claim_id = $11`,
				w.NotificationID, string(w.Channel), w.status, w.code, truncate(w.reason, 1000), next, attempts, nullable(w.messageID), sentAt, now, claim)
			if w.status != w.Status || w.code != w.Code {
				b.Queue(`INSERT INTO delivery_events (tenant_id, notification_id, channel, status, reason_code, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
					run.Tenant(), w.NotificationID, string(w.Channel), w.status, w.code, truncate(w.reason, 1000), now)
			}
			st[string(w.Channel)+"."+w.status]++
			if w.status == "bounced" {
				b.Queue(`INSERT INTO person_settings (tenant_id, user_id, email_status, email_status_reason, email_status_at) VALUES ($1, $2, 'bounced', $3, $4)
					ON CONFLICT (tenant_id, user_id) DO UPDATE SET email_status = 'bounced', email_status_reason = excluded.email_status_reason, email_status_at = excluded.email_status_at`,
					run.Tenant(), w.Recipient, truncate(w.reason, 500), now)
			}
		}
		return tx.SendBatch(ctx, b).Close()
	})
}
