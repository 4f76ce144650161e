package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wneessen/go-mail"

	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/plugins/messaging/internal/richtext"
)

// sendEmails writes and sends a batch's email, over up to
// smtp_connections connections at once, and records each outcome on its
// work.
func (p *Plugin) sendEmails(ctx context.Context, tenant string, cfg Config, batch []*work, now time.Time) {
	if len(batch) == 0 {
		return
	}
	name, items := p.emailContext(ctx, tenant, batch)
	msgs := make([]*mail.Msg, 0, len(batch))
	ready := make([]*work, 0, len(batch))
	for _, w := range batch {
		env := envelope{
			From: cfg.from(name), ReplyTo: cfg.ReplyTo, To: netmail.Address{Name: w.r.Name, Address: w.r.Email},
			MessageID: messageID(w.NotificationID, Email, cfg.SenderEmail), Category: w.Category, Bulk: !w.Transactional, Date: now,
		}
		if env.Bulk {
			c := w.Category
			if w.Kind == kindDigest {
				c = CatDigest
			}
			env.UnsubURL = p.unsubscribeURL(cfg, tenant, w.Recipient, c, now)
		}
		m, err := buildMessage(env, brandOf(cfg, name), p.contentFor(w, cfg, name, items, env.UnsubURL))
		if err != nil {
			w.finish("failed", "unsendable", "the message could not be written: "+err.Error())
			continue
		}
		w.messageID = env.MessageID
		msgs = append(msgs, m)
		ready = append(ready, w)
	}
	outcomes := make([]sendOutcome, len(msgs))
	conns := max(1, min(cfg.SMTPConnections, (len(msgs)+9)/10))
	var wg sync.WaitGroup
	for c := range conns {
		lo, hi := c*len(msgs)/conns, (c+1)*len(msgs)/conns
		wg.Add(1)
		go func() {
			defer wg.Done()
			copy(outcomes[lo:hi], sendMails(ctx, smtpOf(cfg), msgs[lo:hi]))
		}()
	}
	wg.Wait()
	for i, w := range ready {
		o := outcomes[i]
		switch {
		case o.Sent:
			w.tried = true
			w.finish("sent", "delivered", "accepted by the mail server")
		case o.Bounce:
			w.tried = true
			w.finish("bounced", "recipient_refused", "the mail server refused the address: "+o.Detail)
		case o.Permanent:
			w.tried = true
			w.finish("failed", "refused", "the mail server refused the message: "+o.Detail)
		default:
			w.retry(cfg, now, o.Detail)
		}
	}
}

// emailContext reads what the batch's email needs besides the work: the
// institution's name, and the items of its digests.
func (p *Plugin) emailContext(ctx context.Context, tenant string, batch []*work) (string, map[string][]mailItem) {
	items := map[string][]mailItem{}
	var name string
	var digestIDs []string
	for _, w := range batch {
		if w.Kind == kindDigest {
			digestIDs = append(digestIDs, w.NotificationID)
		}
	}
	_ = p.env.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_ = tx.QueryRow(ctx, `SELECT name FROM institutions`).Scan(&name)
		if len(digestIDs) == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `
			SELECT d.digest_id::text, n.title, n.body, n.link FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE d.digest_id = ANY($1::uuid[]) AND d.channel = 'email' ORDER BY n.created_at, n.id`, digestIDs)
		if err != nil {
			return err
		}
		var id string
		var it mailItem
		_, err = pgx.ForEachRow(rows, []any{&id, &it.Title, &it.Body, &it.URL}, func() error {
			it.Body = truncate(it.Body, 200)
			items[id] = append(items[id], it)
			return nil
		})
		return err
	})
	return name, items
}

// digestShown is how many items a digest email lists; the rest are
// counted ("and 12 more"), all of them in the app.
const digestShown = 25

// contentFor is the words of a notification's email.
func (p *Plugin) contentFor(w *work, cfg Config, institution string, items map[string][]mailItem, unsub string) mailContent {
	brand := cfg.brand(institution)
	c := mailContent{Subject: w.Title, Heading: w.Title, Greeting: greeting(w.r.Name), UnsubURL: unsub,
		ManageURL: strings.TrimRight(cfg.AppURL, "/") + "/settings/notifications"}
	for _, para := range strings.Split(w.Body, "\n\n") {
		if para = strings.TrimSpace(para); para != "" {
			c.Paragraphs = append(c.Paragraphs, para)
		}
	}
	if w.Link != "" {
		c.Action = &mailAction{Label: "Open in " + brand, URL: absolute(cfg, w.Link)}
	}
	var data struct {
		HTML string `json:"html"`
	}
	if len(w.Data) > 0 && json.Unmarshal(w.Data, &data) == nil && data.HTML != "" {
		// Sanitised when it was posted; again here, so that the email
		// never trusts what is stored.
		c.Rich = htmltemplate.HTML(richtext.Sanitize(data.HTML))
	}
	if ci, ok := categoryOf(w.Category); ok {
		c.Why = fmt.Sprintf("You get this as a member of %s: %s", brand, strings.ToLower(strings.TrimSuffix(ci.Description, ".")))
	}
	if w.Kind == kindDigest {
		all := items[w.NotificationID]
		for i := range all {
			all[i].URL = absolute(cfg, all[i].URL)
		}
		if len(all) > digestShown {
			c.More = len(all) - digestShown
			all = all[:digestShown]
		}
		c.Items = all
		c.Why = fmt.Sprintf("You get this digest as a member of %s, for the notifications you asked to get once a day", brand)
	}
	return c
}

func greeting(name string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(name), " ")
	if first == "" {
		return "Hello,"
	}
	return "Hi " + first + ","
}

// kindDigest is the kind of a digest notification.
const kindDigest = "messaging.digest"

// assembleDigests gathers the email that waits for a digest and is due
// into one digest notification per person, in one transaction that claims
// the rows it gathers (FOR UPDATE SKIP LOCKED): an item is in exactly one
// digest, however many runs overlap, and items that arrive in the same
// second as the gathering go in this digest or the next, never both. Each
// item is checked again first: one the person has since turned off, whose
// post was hidden, or who has left, is suppressed rather than digested.
func (p *Plugin) assembleDigests(ctx context.Context, run sdk.Scope, cfg Config, now time.Time, st fanoutStats) error {
	return run.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT d.notification_id::text, n.recipient_id::text, n.category, n.post_id IS NOT NULL AND coalesce(po.hidden_at IS NOT NULL OR po.deleted_at IS NOT NULL, true)
			FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			LEFT JOIN posts po ON po.id = n.post_id
			WHERE d.channel = 'email' AND d.status = 'digest' AND d.next_attempt_at <= $1 AND n.recipient_id IS NOT NULL
			ORDER BY n.recipient_id, n.created_at, n.id
			FOR UPDATE OF d SKIP LOCKED`, now)
		if err != nil {
			return err
		}
		type item struct {
			id, user string
			cat      Category
			gone     bool
		}
		var list []item
		var it item
		var cat string
		if _, err := pgx.ForEachRow(rows, []any{&it.id, &it.user, &cat, &it.gone}, func() error {
			it.cat = Category(cat)
			list = append(list, it)
			return nil
		}); err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		users := []string{}
		for _, x := range list {
			users = append(users, x.user)
		}
		rs, err := loadRecipients(ctx, tx, users)
		if err != nil {
			return err
		}
		byUser := map[string][]string{}
		var order []string
		for _, x := range list {
			r := rs[x.user]
			ci, _ := categoryOf(x.cat)
			mode, src := resolveMode(ci, Email, cfg.Defaults, r.settings.prefs)
			code, reason := "", ""
			switch {
			case r.known && !r.active:
				code, reason = "not_a_member", "you left the institution before your digest went out"
			case x.gone:
				code, reason = "content_hidden", "the post it is about was hidden or deleted before your digest went out"
			case mode == Off:
				code, reason = "preference_off", offReason(x.cat, Email, src)
			}
			if code != "" {
				if err := setDelivery(ctx, tx, x.id, Email, "suppressed", code, reason, now, ""); err != nil {
					return err
				}
				continue
			}
			if byUser[x.user] == nil {
				order = append(order, x.user)
			}
			byUser[x.user] = append(byUser[x.user], x.id)
		}
		n := notifier{p: p, scope: run, tx: tx, cfg: cfg}
		digestOf := map[string]string{}
		for _, user := range order {
			ids := byUser[user]
			dedupe := "digest:" + user + ":" + ids[0]
			n.add(note{
				Recipient: user, Category: CatDigest, Kind: kindDigest,
				Title: fmt.Sprintf("Your daily digest: %d update%s", len(ids), map[bool]string{true: "", false: "s"}[len(ids) == 1]),
				Body:  "Here is what happened since your last digest.", Link: "/notifications",
				Data: map[string]any{"items": ids}, Dedupe: dedupe,
			})
			digestOf[user] = dedupe
		}
		if err := n.flush(ctx); err != nil {
			return err
		}
		for _, user := range order {
			var digestID string
			if err := tx.QueryRow(ctx, `SELECT id::text FROM notifications WHERE dedupe_key = $1`, digestOf[user]).Scan(&digestID); err != nil {
				return err
			}
			for _, id := range byUser[user] {
				if err := setDelivery(ctx, tx, id, Email, "digested", "digested", "gathered into your daily digest", now, digestID); err != nil {
					return err
				}
			}
			st["digests"]++
		}
		return nil
	})
}

// setDelivery sets a delivery's outcome and records the event.
func setDelivery(ctx context.Context, tx pgx.Tx, notificationID string, ch Channel, status, code, reason string, now time.Time, digestID string) error {
	_, err := tx.Exec(ctx, `
		WITH d AS (
			UPDATE deliveries SET status = $3, reason_code = $4, reason = $5, updated_at = $6, digest_id = coalesce($7::uuid, digest_id), claim_id = NULL
			WHERE notification_id = $1 AND channel = $2
			RETURNING tenant_id, notification_id, channel)
		INSERT INTO delivery_events (tenant_id, notification_id, channel, status, reason_code, reason, at)
		SELECT tenant_id, notification_id, channel, $3, $4, $5, $6 FROM d`,
		notificationID, string(ch), status, code, reason, now, nullable(digestID))
	return err
}
