package commerce_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

func subscriptionObject(id, status, userID string, periodEnd int64) map[string]any {
	return map[string]any{
		"id": id, "object": "subscription", "status": status, "metadata": map[string]any{"user_id": userID},
		"cancel_at_period_end": false,
		"items":                map[string]any{"object": "list", "data": []map[string]any{{"current_period_start": periodEnd - 30*24*3600, "current_period_end": periodEnd}}},
	}
}

func invoiceObject(id, status, subscription, userID string, amount int64) map[string]any {
	paid := int64(0)
	if status == "paid" {
		paid = amount
	}
	return map[string]any{
		"id": id, "object": "invoice", "status": status, "currency": "eur", "amount_due": amount, "amount_paid": paid,
		"metadata": map[string]any{"user_id": userID}, "parent": map[string]any{"subscription_details": map[string]any{"subscription": subscription}},
		"hosted_invoice_url": "https://invoice.stripe.com/i/" + id,
	}
}

func stripeID(prefix string) string {
	return prefix + strings.ReplaceAll(plugintest.NewID(), "-", "")[:24]
}

// Stripe does not deliver in order: an update before the creation, a
// deletion before a retried update, an update after the deletion. The
// subscription ends canceled, never reactivated, and each real change is
// published once.
func TestSubscriptionEventsOutOfOrder(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	sub := stripeID("sub_")
	t0 := time.Now().Add(-time.Hour).Unix()
	periodEnd := time.Now().Add(30 * 24 * time.Hour).Unix()
	user := b.learner.UserID

	state := func() (status string, n int) {
		t.Helper()
		require.NoError(t, b.h.DB().QueryRow(t.Context(), `SELECT status FROM plugin_commerce.subscriptions WHERE stripe_subscription_id = $1`, sub).Scan(&status))
		return status, len(published[commerce.SubscriptionChanged](t, b.h, b.tenant, commerce.EventSubscriptionChanged))
	}
	// The update (active) arrives before the creation (incomplete).
	b.send(t, stripeEvent("customer.subscription.updated", subscriptionObject(sub, "active", user, periodEnd), t0+20))
	status, n := state()
	require.Equal(t, "active", status)
	require.Equal(t, 1, n)
	b.send(t, stripeEvent("customer.subscription.created", subscriptionObject(sub, "incomplete", user, periodEnd), t0))
	status, n = state()
	require.Equal(t, "active", status, "an older state does not overwrite a newer one")
	require.Equal(t, 1, n)

	// The deletion arrives before a retried update from before it.
	b.send(t, stripeEvent("customer.subscription.deleted", subscriptionObject(sub, "canceled", user, periodEnd), t0+40))
	status, n = state()
	require.Equal(t, "canceled", status)
	require.Equal(t, 2, n)
	b.send(t, stripeEvent("customer.subscription.updated", subscriptionObject(sub, "active", user, periodEnd), t0+30))
	b.send(t, stripeEvent("customer.subscription.updated", subscriptionObject(sub, "past_due", user, periodEnd), t0+50))
	status, n = state()
	require.Equal(t, "canceled", status, "a canceled subscription is never reactivated")
	require.Equal(t, 2, n)

	// The learner sees it as theirs.
	page := decode[struct {
		Items []commerce.Subscription `json:"items"`
	}](t, do(t, b.h, b.learner, "GET", "/api/v1/subscriptions", nil, 200))
	require.Len(t, page.Items, 1)
	require.Equal(t, "canceled", page.Items[0].Status)
}

// A failed attempt, then the payment, then duplicates (the same event
// again, and invoice.payment_succeeded beside invoice.paid), then a late
// invoice.finalized: the invoice is paid, published paid once and failed
// once.
func TestInvoiceEventsDuplicatedAndLate(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	sub, inv := stripeID("sub_"), stripeID("in_")
	user := b.learner.UserID
	t0 := time.Now().Add(-time.Hour).Unix()
	b.send(t, stripeEvent("customer.subscription.created", subscriptionObject(sub, "active", user, time.Now().Add(24*time.Hour).Unix()), t0))

	b.send(t, stripeEvent("invoice.payment_failed", invoiceObject(inv, "open", sub, user, 1900), t0+10))
	paid := stripeEvent("invoice.paid", invoiceObject(inv, "paid", sub, user, 1900), t0+20)
	b.send(t, paid)
	res := b.webhook(t, b.tenant, paid, sign(paid, signingSecret, time.Now()))
	require.Equal(t, 200, res.Status, res)
	require.True(t, decode[commerce.WebhookAck](t, res).Duplicate)
	b.process(t, b.tenant)
	b.send(t, stripeEvent("invoice.payment_succeeded", invoiceObject(inv, "paid", sub, user, 1900), t0+21))
	b.send(t, stripeEvent("invoice.finalized", invoiceObject(inv, "open", sub, user, 1900), t0+5))

	var status string
	var amountPaid int64
	require.NoError(t, b.h.DB().QueryRow(t.Context(), `SELECT status, amount_paid FROM plugin_commerce.invoices WHERE stripe_invoice_id = $1`, inv).Scan(&status, &amountPaid))
	require.Equal(t, "paid", status)
	require.EqualValues(t, 1900, amountPaid)
	require.Len(t, published[commerce.InvoiceChanged](t, b.h, b.tenant, commerce.EventInvoicePaid), 1, "paid once")
	require.Len(t, published[commerce.InvoiceChanged](t, b.h, b.tenant, commerce.EventInvoicePaymentFailed), 1)

	// The learner's invoice history.
	page := decode[struct {
		Items []map[string]any `json:"items"`
	}](t, do(t, b.h, b.learner, "GET", "/api/v1/invoices", nil, 200))
	require.Len(t, page.Items, 1)
	require.Equal(t, "paid", page.Items[0]["status"])
	// Another learner sees none of it.
	page = decode[struct {
		Items []map[string]any `json:"items"`
	}](t, do(t, b.h, b.teacher, "GET", "/api/v1/invoices", nil, 200))
	require.Empty(t, page.Items)
}
