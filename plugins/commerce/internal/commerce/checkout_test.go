package commerce_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// A learner buys a course against stripe-mock: the order is pending with
// Stripe's checkout URL, its amounts and tax snapshotted; only the signed
// webhook pays it, and commerce.order.paid.v1 has the shape the courses
// plugin reads.
func TestCheckoutPaidByWebhook(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	course := plugintest.NewID()
	productID, priceID := b.product(t, "Practical Statistics", 4900, course)
	b.promo(t, map[string]any{"code": "spring10", "percent_off": 10})

	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}, "promo_code": "SPRING10", "country": "DE"})
	require.Equal(t, "pending", o.Status)
	require.NotNil(t, o.CheckoutURL)
	require.NotNil(t, o.StripeSessionID)
	require.Equal(t, "eur", o.Currency)
	require.EqualValues(t, 4900, o.AmountSubtotal)
	require.EqualValues(t, 490, o.AmountDiscount)
	require.EqualValues(t, 838, o.AmountTax, "19%% of 44.10, rounded half up")
	require.EqualValues(t, 4900-490+838, o.AmountTotal)
	require.Equal(t, commerce.TaxSnapshot{Calculator: "rate_table", Country: "DE", RateBPS: 1900}, o.Tax)
	require.Equal(t, []commerce.Entitlement{{CourseID: course}}, o.Items[0].Entitlements)
	require.Empty(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid), "the checkout grants nothing")

	// The webhook pays it.
	b.send(t, stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0))
	paid := b.order(t, o.ID)
	require.Equal(t, "paid", paid.Status)
	require.Nil(t, paid.CheckoutURL)
	require.NotNil(t, paid.StripePaymentIntentID)
	events := published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid)
	require.Equal(t, []commerce.OrderPaid{{OrderID: o.ID, UserID: b.learner.UserID, Currency: "eur", AmountTotal: o.AmountTotal,
		Items: []commerce.OrderPaidItem{{ProductID: productID, PriceID: priceID, CourseID: course, Quantity: 1}}}}, events)
	codes := decode[sdk.Page[commerce.PromoCode]](t, do(t, b.h, b.admin, "GET", "/api/v1/promo-codes", nil, 200)).Items
	require.Len(t, codes, 1)
	require.Equal(t, 1, codes[0].Redeemed)
	require.Equal(t, 0, codes[0].Reserved)

	// A replayed success page, a duplicate webhook: nothing more.
	b.send(t, stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0))
	require.Len(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid), 1)
}
