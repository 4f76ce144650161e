package commerce_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// A stored event whose processing failed is listed with its error; a dry
// run of its replay shows what the replay would change and changes
// nothing; the replay applies it and resolves the failure. An event the
// plugin cannot read fails for good, and its replay says why.
func TestWebhookFailureReplay(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 1200, plugintest.NewID())
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}})

	// An event the plugin cannot read: a subscription in a status Stripe
	// does not have. Processing fails for good and says why.
	bad := stripeEvent("customer.subscription.updated", subscriptionObject(stripeID("sub_"), "sleeping", b.learner.UserID, time.Now().Unix()), 0)
	b.send(t, bad)
	failures := decode[sdk.Page[commerce.WebhookFailure]](t, do(t, b.h, b.admin, "GET", "/api/v1/billing/webhook-failures", nil, 200)).Items
	require.Len(t, failures, 1)
	require.Equal(t, "customer.subscription.updated", failures[0].Type)
	require.Contains(t, failures[0].Error, "sleeping")
	res := decode[commerce.ReplayResult](t, do(t, b.h, b.admin, "POST", "/api/v1/billing/webhook-failures/"+failures[0].ID+"/replay", map[string]any{"dry_run": true}, 200))
	require.False(t, res.Succeeded)
	require.Contains(t, res.Error, "sleeping")
	require.Equal(t, "open", res.Status)

	// A delivery that failed while the order's event could not be applied
	// (what a database outage during processing leaves: the event stored,
	// a failure recorded, the kernel's retries exhausted).
	paidBody := stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0)
	ack := b.webhook(t, b.tenant, paidBody, sign(paidBody, signingSecret, time.Now()))
	require.Equal(t, 200, ack.Status, ack)
	b.pending(t, b.tenant) // the deliveries that failed: not delivered again here
	_, err := b.h.DB().Exec(t.Context(), `INSERT INTO plugin_commerce.webhook_failures (tenant_id, webhook_event_id, error)
		SELECT tenant_id, id, 'connection reset by peer' FROM plugin_commerce.webhook_events WHERE stripe_event_id = $1`, decode[commerce.WebhookAck](t, ack).EventID)
	require.NoError(t, err)
	failures = decode[sdk.Page[commerce.WebhookFailure]](t, do(t, b.h, b.admin, "GET", "/api/v1/billing/webhook-failures", nil, 200)).Items
	require.Len(t, failures, 2)
	var f commerce.WebhookFailure
	for _, x := range failures {
		if x.Type == "checkout.session.completed" {
			f = x
		}
	}
	require.NotEmpty(t, f.ID)

	// The dry run: the order would be paid; nothing changes.
	res = decode[commerce.ReplayResult](t, do(t, b.h, b.admin, "POST", "/api/v1/billing/webhook-failures/"+f.ID+"/replay", map[string]any{"dry_run": true}, 200))
	require.True(t, res.Succeeded)
	require.True(t, res.DryRun)
	require.Contains(t, res.Changes, commerce.Change{Object: "order", ID: o.ID, From: "pending", To: "paid"})
	require.Equal(t, "pending", b.order(t, o.ID).Status)
	require.Empty(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid))

	// The replay, by someone without the permission, then by the admin.
	do(t, b.h, b.learner, "POST", "/api/v1/billing/webhook-failures/"+f.ID+"/replay", map[string]any{}, 403)
	res = decode[commerce.ReplayResult](t, do(t, b.h, b.admin, "POST", "/api/v1/billing/webhook-failures/"+f.ID+"/replay", map[string]any{}, 200))
	require.True(t, res.Succeeded)
	require.Equal(t, "resolved", res.Status)
	require.Equal(t, "paid", b.order(t, o.ID).Status)
	require.Len(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid), 1)
	requireProblem(t, do(t, b.h, b.admin, "POST", "/api/v1/billing/webhook-failures/"+f.ID+"/replay", map[string]any{}, 409), 409, "failure_resolved")
	failures = decode[sdk.Page[commerce.WebhookFailure]](t, do(t, b.h, b.admin, "GET", "/api/v1/billing/webhook-failures", nil, 200)).Items
	require.Len(t, failures, 1, "one open failure left")
}

// Institution A's admin cannot see or refund B's orders, nor replay its
// failures; a webhook signed for A, sent to B's endpoint, is refused and
// touches nothing of B's.
func TestInstitutionsApart(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 1000, plugintest.NewID())
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}})
	b.send(t, stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0))

	other := b.configure(t, map[string]any{"webhook_signing_secret": "whsec_institution_b"})
	otherAdmin := plugintest.User(other, "admin")
	do(t, b.h, otherAdmin, "GET", "/api/v1/orders/"+o.ID, nil, 404)
	do(t, b.h, otherAdmin, "POST", "/api/v1/orders/"+o.ID+"/refunds", map[string]any{}, 404)
	require.Empty(t, decode[sdk.Page[commerce.Order]](t, do(t, b.h, otherAdmin, "GET", "/api/v1/orders?scope=all", nil, 200)).Items)
	// A's price, bought in B: not B's.
	requireProblem(t, b.h.DoRequest(plugintest.Request{Principal: plugintest.User(other, "learner"), Method: "POST", Path: "/api/v1/checkout",
		Body: map[string]any{"items": []map[string]any{{"price_id": priceID}}}}), 422, "")

	body := stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0)
	requireProblem(t, b.webhook(t, other, body, sign(body, signingSecret, time.Now())), 400, "signature_mismatch")
	// B's own secret, A's order: stored for B, but no order of B's has it.
	res := b.webhook(t, other, body, sign(body, "whsec_institution_b", time.Now()))
	require.Equal(t, 200, res.Status, res)
	b.process(t, other)
	require.Len(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid), 1)
	require.Empty(t, published[commerce.OrderPaid](t, b.h, other, commerce.EventOrderPaid))
}
