package commerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Processing a stored Stripe event: out of the webhook's request, when the
// plugin's own commerce.webhook.received.v1 is delivered back to it (or in
// the reconciliation job, or an admin's replay). Every handler is
// idempotent and independent of the order events arrive in: a state is
// applied by the object's own timestamps (the event's created time), a
// canceled subscription is never reactivated, a paid order or invoice is
// never paid twice, and refund totals only grow.

// Change is one thing processing an event changed (or, in a dry run, would
// change).
type Change struct {
	Object string `json:"object" enum:"order,subscription,invoice,payment_intent,promo_code,anomaly"`
	ID     string `json:"id"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
}

// outcome is what processing an event did.
type outcome struct {
	Changes []Change
	Notes   []string
	userID  string
}

func (o *outcome) change(object, id, from, to string) {
	o.Changes = append(o.Changes, Change{Object: object, ID: id, From: from, To: to})
}

func (o *outcome) note(format string, args ...any) {
	o.Notes = append(o.Notes, fmt.Sprintf(format, args...))
}

func (o *outcome) user(id string) {
	if o.userID == "" {
		o.userID = id
	}
}

// summary is the one line kept with the stored event.
func (o *outcome) summary() string {
	s := strings.Join(o.Notes, "; ")
	if len(s) > 500 {
		s = s[:497] + "..."
	}
	return s
}

// permanent marks an error that a retry cannot cure (the event's object is
// not what the plugin reads): processing records the failure and stops.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

func malformed(format string, args ...any) error {
	return permanent{fmt.Errorf(format, args...)}
}

// webhookEvent is a stored Stripe event.
type webhookEvent struct {
	ID, StripeEventID, Type, Status string
	Created                         int64
	Payload                         []byte
}

func loadWebhookEvent(ctx context.Context, tx pgx.Tx, id string) (*webhookEvent, error) {
	var w webhookEvent
	err := tx.QueryRow(ctx, `SELECT id, stripe_event_id, type, status, created, payload FROM webhook_events WHERE id = $1 FOR UPDATE`, id).
		Scan(&w.ID, &w.StripeEventID, &w.Type, &w.Status, &w.Created, &w.Payload)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no stored Stripe event %s", id)
	}
	return &w, err
}

// onWebhookReceived handles commerce.webhook.received.v1: it processes the
// stored Stripe event once. The event's changes run under a savepoint: a
// failure a retry cannot cure rolls them back, records the failure
// (webhook_failures) and ends the delivery; any other failure is recorded
// too and returned, so that the kernel retries the delivery with backoff
// (and dead-letters it at last). A success resolves an open failure.
func (p *Plugin) onWebhookReceived(ctx context.Context, ev *sdk.Event) error {
	var d WebhookReceived
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if !sdk.IsUUID(d.WebhookEventID) {
		return fmt.Errorf("event %s: webhook_event_id %q is not a UUID", ev.ID, d.WebhookEventID)
	}
	err := ev.Tx(ctx, func(tx pgx.Tx) error {
		w, err := loadWebhookEvent(ctx, tx, d.WebhookEventID)
		if errors.Is(err, sdk.ErrNotFound) {
			p.env.Logger.Warn("a stored Stripe event is gone (erased?): nothing to process", "tenant_id", ev.TenantID, "webhook_event_id", d.WebhookEventID)
			return nil
		}
		if err != nil {
			return err
		}
		if w.Status == "processed" || w.Status == "ignored" {
			return nil
		}
		out, err := p.processIn(ctx, tx, ev, w)
		var perm permanent
		if errors.As(err, &perm) {
			return p.recordFailure(ctx, tx, w, err, true)
		}
		if err != nil {
			return err
		}
		return finishEvent(ctx, tx, w, out, nil)
	})
	if err != nil {
		if ferr := p.env.DB.InTenant(ctx, ev.TenantID, func(tx pgx.Tx) error {
			w, lerr := loadWebhookEvent(ctx, tx, d.WebhookEventID)
			if lerr != nil {
				return lerr
			}
			return p.recordFailure(ctx, tx, w, err, false)
		}); ferr != nil {
			p.env.Logger.Error("recording a webhook failure", "tenant_id", ev.TenantID, "webhook_event_id", d.WebhookEventID, "error", ferr)
		}
		return err
	}
	return nil
}

// processIn applies a stored event under a savepoint of tx: on an error,
// nothing it did stays.
func (p *Plugin) processIn(ctx context.Context, tx pgx.Tx, s sdk.Scope, w *webhookEvent) (*outcome, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	out, err := p.apply(ctx, sp, s, w)
	if err != nil {
		_ = sp.Rollback(ctx)
		return nil, err
	}
	return out, sp.Commit(ctx)
}

// finishEvent records that a stored event was processed (or ignored, when
// it changed nothing the plugin keeps), by whom when an admin replayed it,
// and resolves its failure.
func finishEvent(ctx context.Context, tx pgx.Tx, w *webhookEvent, out *outcome, by *string) error {
	status := "processed"
	if len(out.Changes) == 0 {
		status = "ignored"
	}
	_, err := tx.Exec(ctx, `UPDATE webhook_events SET status = $2, note = $3, processed_at = now(), user_id = coalesce(user_id, $4) WHERE id = $1`,
		w.ID, status, out.summary(), nullIfEmpty(out.userID))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE webhook_failures SET status = 'resolved', resolved_at = now(), resolved_by = $2 WHERE webhook_event_id = $1 AND status = 'open'`, w.ID, by)
	return err
}

// recordFailure records a processing failure of a stored event; final
// marks the event failed (a retry will not cure it: an admin replays it
// after fixing the cause).
func (p *Plugin) recordFailure(ctx context.Context, tx pgx.Tx, w *webhookEvent, cause error, final bool) error {
	msg := cause.Error()
	if len(msg) > 2000 {
		msg = msg[:1997] + "..."
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO webhook_failures (webhook_event_id, error) VALUES ($1, $2)
		ON CONFLICT (tenant_id, webhook_event_id) DO UPDATE
		SET error = EXCLUDED.error, attempts = webhook_failures.attempts + 1, last_failed_at = now(), status = 'open', resolved_at = NULL, resolved_by = NULL`,
		w.ID, msg)
	if err != nil {
		return err
	}
	if final {
		_, err = tx.Exec(ctx, `UPDATE webhook_events SET status = 'failed', note = $2 WHERE id = $1`, w.ID, truncate(msg, 500))
	}
	return err
}

// apply processes one stored Stripe event in tx; s is the work it runs for
// (its events' cause).
func (p *Plugin) apply(ctx context.Context, tx pgx.Tx, s sdk.Scope, w *webhookEvent) (*outcome, error) {
	var env stripeEvent
	if err := json.Unmarshal(w.Payload, &env); err != nil {
		return nil, malformed("stored event %s does not read: %v", w.StripeEventID, err)
	}
	out := &outcome{}
	obj := env.Data.Object
	var err error
	switch t := w.Type; {
	case t == "checkout.session.completed" || t == "checkout.session.async_payment_succeeded":
		err = p.sessionCompleted(ctx, tx, s, obj, out)
	case t == "checkout.session.expired":
		err = p.sessionClosed(ctx, tx, obj, orderExpired, "the checkout expired at Stripe", out)
	case t == "checkout.session.async_payment_failed":
		err = p.sessionClosed(ctx, tx, obj, orderFailed, "the payment failed at Stripe", out)
	case strings.HasPrefix(t, "payment_intent."):
		err = p.paymentIntentEvent(ctx, tx, s, w, obj, out)
	case t == "charge.refunded":
		err = p.chargeRefunded(ctx, tx, s, obj, out)
	case strings.HasPrefix(t, "customer.subscription."):
		err = p.subscriptionEvent(ctx, tx, s, w, obj, out)
	case strings.HasPrefix(t, "invoice."):
		err = p.invoiceEvent(ctx, tx, s, w, obj, out)
	default:
		out.note("%s is not an event the plugin acts on", t)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stripeID reads an expandable field: an ID, or an object with one.
func stripeID(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.ID
	}
	return ""
}

// checkoutSession is what the plugin reads of a Checkout Session.
type checkoutSession struct {
	ID                string            `json:"id"`
	ClientReferenceID string            `json:"client_reference_id"`
	Metadata          map[string]string `json:"metadata"`
	Status            string            `json:"status"`
	PaymentStatus     string            `json:"payment_status"`
	AmountTotal       *int64            `json:"amount_total"`
	Currency          string            `json:"currency"`
	PaymentIntent     json.RawMessage   `json:"payment_intent"`
	Subscription      json.RawMessage   `json:"subscription"`
	Customer          json.RawMessage   `json:"customer"`
}

func readSession(raw json.RawMessage) (*checkoutSession, error) {
	var cs checkoutSession
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, malformed("a checkout session does not read: %v", err)
	}
	if !strings.HasPrefix(cs.ID, "cs_") {
		return nil, malformed("a checkout session without a cs_ ID")
	}
	return &cs, nil
}

// sessionOrder finds (and locks) the order of a Checkout Session: by the
// session's ID, else by the order ID the plugin gave Stripe
// (client_reference_id, metadata.order_id) for a session whose ID it did
// not get to store. nil: not an order of this institution.
func sessionOrder(ctx context.Context, tx pgx.Tx, cs *checkoutSession) (*Order, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM orders WHERE stripe_session_id = $1`, cs.ID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		for _, ref := range []string{cs.ClientReferenceID, cs.Metadata["order_id"]} {
			if sdk.IsUUID(ref) {
				err = tx.QueryRow(ctx, `SELECT id FROM orders WHERE id = $1 AND (stripe_session_id IS NULL OR stripe_session_id = $2)`, strings.ToLower(ref), cs.ID).Scan(&id)
				if err == nil || !errors.Is(err, pgx.ErrNoRows) {
					break
				}
			}
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return loadOrder(ctx, tx, id, true)
}

// sessionCompleted handles checkout.session.completed and
// checkout.session.async_payment_succeeded: the order records Stripe's
// payment intent, subscription and customer, and is paid when Stripe says
// the session is paid (an asynchronous payment method completes the
// session unpaid; async_payment_succeeded pays it later).
func (p *Plugin) sessionCompleted(ctx context.Context, tx pgx.Tx, s sdk.Scope, raw json.RawMessage, out *outcome) error {
	cs, err := readSession(raw)
	if err != nil {
		return err
	}
	o, err := sessionOrder(ctx, tx, cs)
	if err != nil || o == nil {
		if o == nil && err == nil {
			out.note("no order of the institution has checkout session %s", cs.ID)
		}
		return err
	}
	pi, sub, cus := stripeID(cs.PaymentIntent), stripeID(cs.Subscription), stripeID(cs.Customer)
	_, err = tx.Exec(ctx, `UPDATE orders SET stripe_session_id = coalesce(stripe_session_id, $2),
		stripe_payment_intent_id = coalesce(stripe_payment_intent_id, $3), stripe_subscription_id = coalesce(stripe_subscription_id, $4),
		stripe_customer_id = coalesce(stripe_customer_id, $5), updated_at = now() WHERE id = $1`,
		o.ID, cs.ID, nullIfNot(pi, "pi_"), nullIfNot(sub, "sub_"), nullIfNot(cus, "cus_"))
	if err != nil {
		return fmt.Errorf("recording checkout session %s: %w", cs.ID, err)
	}
	if strings.HasPrefix(pi, "pi_") && o.StripePaymentIntentID == nil {
		o.StripePaymentIntentID = &pi
	}
	if strings.HasPrefix(sub, "sub_") {
		// A subscription seen before its order knew it: link them.
		if _, err := tx.Exec(ctx, `UPDATE subscriptions SET order_id = coalesce(order_id, $2), user_id = coalesce(user_id, $3) WHERE stripe_subscription_id = $1`, sub, o.ID, o.UserID); err != nil {
			return err
		}
	}
	if cs.PaymentStatus != "paid" && cs.PaymentStatus != "no_payment_required" {
		out.note("checkout session %s completed with payment %q: waiting for the payment", cs.ID, cs.PaymentStatus)
		out.user(o.UserID)
		return nil
	}
	if cs.AmountTotal != nil && *cs.AmountTotal != o.AmountTotal && o.Mode == "payment" {
		err := p.anomaly(ctx, tx, s, anomalyInput{Kind: "amount_mismatch", ObjectType: "order", ObjectID: o.ID,
			Detail: fmt.Sprintf("Stripe's checkout session %s charged %d %s; order %s totals %d", cs.ID, *cs.AmountTotal, cs.Currency, o.ID, o.AmountTotal)})
		if err != nil {
			return err
		}
	}
	return p.markPaid(ctx, tx, s, o, "checkout session "+cs.ID, out)
}

// sessionClosed handles checkout.session.expired and
// checkout.session.async_payment_failed: a pending order closes and its
// promo code reservation is released.
func (p *Plugin) sessionClosed(ctx context.Context, tx pgx.Tx, raw json.RawMessage, status, reason string, out *outcome) error {
	cs, err := readSession(raw)
	if err != nil {
		return err
	}
	o, err := sessionOrder(ctx, tx, cs)
	if err != nil || o == nil {
		if o == nil && err == nil {
			out.note("no order of the institution has checkout session %s", cs.ID)
		}
		return err
	}
	return closeOrder(ctx, tx, o, status, reason, p.now(), out)
}

// paymentIntent is what the plugin reads of a payment intent.
type paymentIntent struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	Amount         int64             `json:"amount"`
	AmountReceived int64             `json:"amount_received"`
	Currency       string            `json:"currency"`
	Metadata       map[string]string `json:"metadata"`
}

// paymentIntentEvent keeps the payment intent's latest state (by the
// event's time: an older event never overwrites a newer one). A succeeded
// intent of a pending order pays it: the money was taken.
func (p *Plugin) paymentIntentEvent(ctx context.Context, tx pgx.Tx, s sdk.Scope, w *webhookEvent, raw json.RawMessage, out *outcome) error {
	var pi paymentIntent
	if err := json.Unmarshal(raw, &pi); err != nil || !strings.HasPrefix(pi.ID, "pi_") || !statusPattern.MatchString(pi.Status) {
		return malformed("a payment intent does not read")
	}
	var orderID *string
	if id, ok := sdk.NormalizeUUID(pi.Metadata["order_id"]); ok {
		orderID = &id
	} else {
		var found string
		if err := tx.QueryRow(ctx, `SELECT id FROM orders WHERE stripe_payment_intent_id = $1`, pi.ID).Scan(&found); err == nil {
			orderID = &found
		}
	}
	if orderID != nil {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)`, *orderID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			orderID = nil
		}
	}
	if orderID == nil {
		out.note("payment intent %s belongs to no order of the institution", pi.ID)
		return nil
	}
	cur := strings.ToLower(pi.Currency)
	if !currencyPattern.MatchString(cur) {
		cur = ""
	}
	var prev *string
	_ = tx.QueryRow(ctx, `SELECT status FROM payment_intents WHERE id = $1`, pi.ID).Scan(&prev)
	tag, err := tx.Exec(ctx, `
		INSERT INTO payment_intents (id, order_id, status, amount, amount_received, currency, state_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, amount = EXCLUDED.amount, amount_received = EXCLUDED.amount_received,
			currency = EXCLUDED.currency, state_at = EXCLUDED.state_at, order_id = coalesce(payment_intents.order_id, EXCLUDED.order_id), updated_at = now()
		WHERE payment_intents.state_at <= EXCLUDED.state_at`, pi.ID, orderID, pi.Status, pi.Amount, pi.AmountReceived, cur, w.Created)
	if err != nil {
		return fmt.Errorf("recording payment intent %s: %w", pi.ID, err)
	}
	if tag.RowsAffected() == 0 {
		out.note("payment intent %s: a newer state is recorded", pi.ID)
		return nil
	}
	from := ""
	if prev != nil {
		from = *prev
	}
	if from != pi.Status {
		out.change("payment_intent", pi.ID, from, pi.Status)
	}
	if pi.Status != "succeeded" {
		return nil
	}
	o, err := loadOrder(ctx, tx, *orderID, true)
	if err != nil {
		return err
	}
	if o.StripePaymentIntentID == nil {
		if _, err := tx.Exec(ctx, `UPDATE orders SET stripe_payment_intent_id = $2 WHERE id = $1`, o.ID, pi.ID); err != nil {
			return err
		}
	}
	if o.Status != orderPending {
		return nil
	}
	return p.markPaid(ctx, tx, s, o, "payment intent "+pi.ID, out)
}

// chargeRefunded handles charge.refunded: the charge's amount_refunded is
// Stripe's total so far, which only grows; applying the total (not adding
// to it) is what keeps a duplicate or reordered event from counting a
// refund twice.
func (p *Plugin) chargeRefunded(ctx context.Context, tx pgx.Tx, s sdk.Scope, raw json.RawMessage, out *outcome) error {
	var ch struct {
		ID             string          `json:"id"`
		AmountRefunded int64           `json:"amount_refunded"`
		PaymentIntent  json.RawMessage `json:"payment_intent"`
	}
	if err := json.Unmarshal(raw, &ch); err != nil || !strings.HasPrefix(ch.ID, "ch_") || ch.AmountRefunded < 0 {
		return malformed("a charge does not read")
	}
	pi := stripeID(ch.PaymentIntent)
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM orders WHERE stripe_payment_intent_id = $1`, pi).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT order_id FROM payment_intents WHERE id = $1 AND order_id IS NOT NULL`, pi).Scan(&id)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		out.note("charge %s (payment intent %q) belongs to no order of the institution", ch.ID, pi)
		return nil
	}
	if err != nil {
		return err
	}
	o, err := loadOrder(ctx, tx, id, true)
	if err != nil {
		return err
	}
	if err := p.applyRefunded(ctx, tx, s, o, ch.AmountRefunded, out); err != nil {
		return err
	}
	// The refunds asked for through the plugin that Stripe has now made.
	_, err = tx.Exec(ctx, `UPDATE refunds SET status = 'succeeded', updated_at = now() WHERE order_id = $1 AND status = 'pending'
		AND (SELECT coalesce(sum(amount), 0) FROM refunds r WHERE r.order_id = $1 AND r.status IN ('pending', 'succeeded')) <= $2`, o.ID, ch.AmountRefunded)
	return err
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nullIfNot is s when it has the prefix (a Stripe ID of that kind), else nil.
func nullIfNot(s, prefix string) *string {
	if !strings.HasPrefix(s, prefix) || !stripeIDPattern.MatchString(s) {
		return nil
	}
	return &s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func unixTime(n int64) *time.Time {
	if n <= 0 {
		return nil
	}
	t := time.Unix(n, 0).UTC()
	return &t
}
