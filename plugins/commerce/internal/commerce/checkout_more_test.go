package commerce_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// The Idempotency-Key resumes the same order; another body with it is a
// 422; Stripe unreachable is a 503 and the same key resumes the order once
// Stripe answers.
func TestCheckoutIdempotency(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 1000, plugintest.NewID())
	body := map[string]any{"items": []map[string]any{{"price_id": priceID}}}
	first := b.checkout(t, b.learner, body, "Idempotency-Key", "k1")
	again := b.checkout(t, b.learner, body, "Idempotency-Key", "k1")
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, *first.StripeSessionID, *again.StripeSessionID)
	res := b.h.DoRequest(plugintest.Request{Principal: b.learner, Method: "POST", Path: "/api/v1/checkout",
		Body: map[string]any{"items": []map[string]any{{"price_id": priceID, "quantity": 2}}}, Header: http.Header{"Idempotency-Key": {"k1"}}})
	requireProblem(t, res, 422, "idempotency-key-reused")
	// Another buyer's key is theirs.
	other := b.checkout(t, b.teacher, body, "Idempotency-Key", "k1")
	require.NotEqual(t, first.ID, other.ID)
	require.Equal(t, 2, count(t, b.h, `SELECT count(*) FROM plugin_commerce.orders`))

	// Stripe unreachable (nothing listens there): 503, the order stays
	// pending without a session.
	down := newBundle(t, setupOpts{apiBase: "http://127.0.0.1:1"})
	_, downPrice := down.product(t, "Course", 1000, plugintest.NewID())
	res = down.h.DoRequest(plugintest.Request{Principal: down.learner, Method: "POST", Path: "/api/v1/checkout",
		Body: map[string]any{"items": []map[string]any{{"price_id": downPrice}}}, Header: http.Header{"Idempotency-Key": {"k2"}}})
	requireProblem(t, res, 503, "stripe_unavailable")
	require.Equal(t, 1, count(t, down.h, `SELECT count(*) FROM plugin_commerce.orders WHERE status = 'pending' AND stripe_session_id IS NULL`))
	// Not configured: said so.
	unset := down.configure(t, map[string]any{"stripe_secret_key": nil})
	res = down.h.DoRequest(plugintest.Request{Principal: plugintest.User(unset, "learner"), Method: "POST", Path: "/api/v1/checkout",
		Body: map[string]any{"items": []map[string]any{{"price_id": plugintest.NewID()}}}})
	requireProblem(t, res, 409, "stripe_not_configured")
}

// A recurring price checks out as a subscription at stripe-mock; the
// completed session pays the order and links the subscription.
func TestSubscriptionCheckout(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	course := plugintest.NewID()
	_, priceID := b.productIn(t, b.admin, "Membership", 1500, map[string]any{"type": "recurring", "recurring_interval": "month", "trial_days": 7}, course)
	b.promo(t, map[string]any{"code": "THREEMONTHS", "percent_off": 20, "duration": "repeating", "duration_periods": 3})
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}, "promo_code": "threemonths"})
	require.Equal(t, "subscription", o.Mode)
	require.NotNil(t, o.StripeSessionID)
	require.Equal(t, "month", o.Items[0].RecurringInterval)
	require.EqualValues(t, 300, o.AmountDiscount)
	// A recurring price beside another item is refused.
	_, oneTime := b.product(t, "Course", 1000, plugintest.NewID())
	res := b.h.DoRequest(plugintest.Request{Principal: b.learner, Method: "POST", Path: "/api/v1/checkout",
		Body: map[string]any{"items": []map[string]any{{"price_id": priceID}, {"price_id": oneTime}}}})
	require.Equal(t, 422, res.Status, res)

	b.send(t, stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0))
	paid := b.order(t, o.ID)
	require.Equal(t, "paid", paid.Status)
	require.NotNil(t, paid.StripeSubscriptionID)
	sub := *paid.StripeSubscriptionID
	b.send(t, stripeEvent("customer.subscription.created", subscriptionObject(sub, "trialing", "", time.Now().Add(7*24*time.Hour).Unix()), 0))
	var owner, orderID string
	require.NoError(t, b.h.DB().QueryRow(t.Context(), `SELECT user_id, order_id FROM plugin_commerce.subscriptions WHERE stripe_subscription_id = $1`, sub).Scan(&owner, &orderID))
	require.Equal(t, b.learner.UserID, owner, "the order knows the buyer")
	require.Equal(t, o.ID, orderID)
	paidEvents := published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid)
	require.Len(t, paidEvents, 1)
	require.Equal(t, course, paidEvents[0].Items[0].CourseID)

	// Cancel at the period's end, through Stripe (stripe-mock).
	subs := decode[struct {
		Items []commerce.Subscription `json:"items"`
	}](t, do(t, b.h, b.learner, "GET", "/api/v1/subscriptions", nil, 200)).Items
	require.Len(t, subs, 1)
	do(t, b.h, b.teacher, "POST", "/api/v1/subscriptions/"+subs[0].ID+"/cancel", map[string]any{}, 404)
	s := decode[commerce.Subscription](t, do(t, b.h, b.learner, "POST", "/api/v1/subscriptions/"+subs[0].ID+"/cancel", map[string]any{}, 200))
	require.True(t, s.CancelAtPeriodEnd)
	require.Equal(t, "trialing", s.Status, "it runs until the period ends")
	require.Empty(t, published[commerce.SubscriptionEnded](t, b.h, b.tenant, commerce.EventSubscriptionEnded))

	// Past due keeps what it granted; the period's end (deleted) ends it,
	// once however often Stripe says so.
	b.send(t, stripeEvent("customer.subscription.updated", subscriptionObject(sub, "past_due", "", time.Now().Add(time.Hour).Unix()), time.Now().Add(time.Minute).Unix()))
	require.Empty(t, published[commerce.SubscriptionEnded](t, b.h, b.tenant, commerce.EventSubscriptionEnded))
	deleted := subscriptionObject(sub, "canceled", "", time.Now().Unix())
	b.send(t, stripeEvent("customer.subscription.deleted", deleted, time.Now().Add(2*time.Minute).Unix()))
	b.send(t, stripeEvent("customer.subscription.deleted", deleted, time.Now().Add(3*time.Minute).Unix()))
	ended := published[commerce.SubscriptionEnded](t, b.h, b.tenant, commerce.EventSubscriptionEnded)
	require.Len(t, ended, 1)
	require.Equal(t, o.ID, ended[0].OrderID)
	require.Equal(t, b.learner.UserID, ended[0].UserID)
	require.Equal(t, course, ended[0].Items[0].CourseID)
}

// Refunds: a partial refund through the API, then Stripe's charge.refunded
// webhooks (duplicated, and an older total after a newer one): the total
// refunded never counts twice, and the full refund is published once.
func TestRefundsNeverCountTwice(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 4000, plugintest.NewID())
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}})
	do(t, b.h, b.admin, "POST", "/api/v1/orders/"+o.ID+"/refunds", map[string]any{}, 409) // not paid yet
	b.send(t, stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0))
	pi := *b.order(t, o.ID).StripePaymentIntentID

	r := decode[commerce.RefundResult](t, do(t, b.h, b.admin, "POST", "/api/v1/orders/"+o.ID+"/refunds", map[string]any{"amount": 1000}, 201, "Idempotency-Key", "r1"))
	require.Equal(t, "succeeded", r.Refund.Status)
	require.Equal(t, "partially_refunded", r.Order.Status)
	require.EqualValues(t, 1000, r.Order.AmountRefunded)
	replay := decode[commerce.RefundResult](t, do(t, b.h, b.admin, "POST", "/api/v1/orders/"+o.ID+"/refunds", map[string]any{"amount": 1000}, 201, "Idempotency-Key", "r1"))
	require.Equal(t, r.Refund.ID, replay.Refund.ID, "the same key: the same refund")
	res := b.h.DoRequest(plugintest.Request{Principal: b.admin, Method: "POST", Path: "/api/v1/orders/" + o.ID + "/refunds", Body: map[string]any{"amount": 3001}})
	requireProblem(t, res, 422, "refund_too_large")

	charge := func(refunded int64) map[string]any {
		return map[string]any{"id": "ch_" + strings.ReplaceAll(o.ID, "-", "")[:20], "object": "charge", "amount_refunded": refunded, "payment_intent": pi}
	}
	t0 := time.Now().Add(-time.Minute).Unix()
	partial := stripeEvent("charge.refunded", charge(1000), t0)
	b.send(t, partial)
	b.send(t, stripeEvent("charge.refunded", charge(4000), t0+20))
	b.send(t, stripeEvent("charge.refunded", charge(1000), t0+10)) // older, late
	b.send(t, stripeEvent("charge.refunded", charge(4000), t0+30)) // a second event, same total
	final := b.order(t, o.ID)
	require.Equal(t, "refunded", final.Status)
	require.EqualValues(t, 4000, final.AmountRefunded)
	require.Len(t, published[commerce.OrderRefunded](t, b.h, b.tenant, commerce.EventOrderRefunded), 1)
	require.Len(t, published[commerce.OrderRefunded](t, b.h, b.tenant, commerce.EventOrderPartiallyRefunded), 1)
	res = b.h.DoRequest(plugintest.Request{Principal: b.admin, Method: "POST", Path: "/api/v1/orders/" + o.ID + "/refunds", Body: map[string]any{}})
	requireProblem(t, res, 409, "order_refunded")
}
