package commerce_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// A buyer's export holds their orders, items, subscriptions, invoices and
// the Stripe events about them; erasing them keeps the books (the orders,
// amounts and statuses, under the erasure's pseudonym) without anything
// that names them: their user ID, Stripe customer ID, the email and name
// Stripe's events carried, the hosted invoice page.
func TestPersonalDataExportAndErase(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 2500, plugintest.NewID())
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}})
	b.send(t, stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0))
	sub, inv := stripeID("sub_"), stripeID("in_")
	b.send(t, stripeEvent("customer.subscription.created", subscriptionObject(sub, "active", b.learner.UserID, time.Now().Add(24*time.Hour).Unix()), 0))
	b.send(t, stripeEvent("invoice.paid", invoiceObject(inv, "paid", sub, b.learner.UserID, 900), 0))
	// Someone else's order stays as it is.
	other := b.checkout(t, b.teacher, map[string]any{"items": []map[string]any{{"price_id": priceID}}})

	ex := b.h.ExportPersonalData(t, b.tenant, b.learner.UserID)
	require.Len(t, ex.Rows("orders"), 1)
	require.Equal(t, o.ID, ex.Rows("orders")[0]["id"])
	require.Len(t, ex.Rows("order_items"), 1)
	require.Len(t, ex.Rows("subscriptions"), 1)
	require.Len(t, ex.Rows("invoices"), 1)
	require.GreaterOrEqual(t, len(ex.Rows("webhook_events")), 3)
	require.Contains(t, ex.Text(), "buyer@example.test", "the events as Stripe sent them")
	require.NotContains(t, ex.Text(), other.ID)

	customer := "cus_" + o.ID[:8]
	require.NotEmpty(t, b.h.FindTraces(t, customer))
	counts := b.h.ErasePersonalData(t, b.tenant, b.learner.UserID)
	require.Positive(t, counts.Total())
	b.h.RequireNoTrace(t, b.learner.UserID, "buyer@example.test", "Bea Buyer", customer, "invoice.stripe.com/i/"+inv)

	// The books still add up: the order is there, paid, with its amounts.
	kept := b.order(t, o.ID)
	require.Equal(t, "paid", kept.Status)
	require.EqualValues(t, 2500, kept.AmountTotal)
	require.NotEqual(t, b.learner.UserID, kept.UserID)
	require.Equal(t, b.teacher.UserID, b.order(t, other.ID).UserID)
	all := decode[sdk.Page[commerce.Order]](t, do(t, b.h, b.admin, "GET", "/api/v1/orders?scope=all", nil, 200)).Items
	require.Len(t, all, 2)
}
