package commerce_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// A promo code's rules: restricted to products, an amount off in one
// currency, a per-buyer limit, an expiry, turned off.
func TestPromoCodeRules(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	courseA, priceA := b.product(t, "Course A", 3000, plugintest.NewID())
	_, priceB := b.product(t, "Course B", 2000, plugintest.NewID())
	try := func(p sdk.Principal, code string, prices ...string) *plugintest.Result {
		items := []map[string]any{}
		for _, id := range prices {
			items = append(items, map[string]any{"price_id": id})
		}
		return b.h.DoRequest(plugintest.Request{Principal: p, Method: "POST", Path: "/api/v1/checkout", Body: map[string]any{"items": items, "promo_code": code}})
	}

	// Only for course A: on a basket of A and B, only A's line is discounted.
	b.promo(t, map[string]any{"code": "ONLYA", "amount_off": 500, "currency": "eur", "product_ids": []string{courseA}})
	requireProblem(t, try(b.learner, "ONLYA", priceB), 422, "promo_code_not_applicable")
	res := try(b.learner, "ONLYA", priceA, priceB)
	require.Equal(t, 201, res.Status, res)
	var o commerce.Order
	res.JSON(t, &o)
	require.EqualValues(t, 500, o.AmountDiscount)
	require.EqualValues(t, 500, o.Items[0].AmountDiscount)
	require.EqualValues(t, 0, o.Items[1].AmountDiscount)
	// An amount off in another currency.
	b.promo(t, map[string]any{"code": "DOLLARS", "amount_off": 500, "currency": "usd"})
	requireProblem(t, try(b.learner, "DOLLARS", priceA), 422, "promo_code_not_applicable")

	// Once per buyer: the second checkout of the same buyer is refused,
	// another buyer's is not.
	b.promo(t, map[string]any{"code": "ONCEEACH", "percent_off": 10, "per_customer_limit": 1})
	require.Equal(t, 201, try(b.learner, "ONCEEACH", priceA).Status)
	requireProblem(t, try(b.learner, "ONCEEACH", priceA), 409, "promo_code_limit_reached")
	require.Equal(t, 201, try(b.teacher, "ONCEEACH", priceA).Status)

	// Expired, and turned off.
	expired := b.promo(t, map[string]any{"code": "SOON", "percent_off": 10, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	do(t, b.h, b.admin, "PATCH", "/api/v1/promo-codes/"+expired.ID, map[string]any{"expires_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}, 200)
	requireProblem(t, try(b.learner, "SOON", priceA), 422, "promo_code_expired")
	off := b.promo(t, map[string]any{"code": "PAUSED", "percent_off": 10})
	do(t, b.h, b.admin, "PATCH", "/api/v1/promo-codes/"+off.ID, map[string]any{"active": false}, 200)
	requireProblem(t, try(b.learner, "PAUSED", priceA), 422, "promo_code_invalid")
	requireProblem(t, try(b.learner, "NOSUCHCODE", priceA), 422, "promo_code_invalid")

	// Learners cannot read or make promo codes; a code is unique.
	do(t, b.h, b.learner, "GET", "/api/v1/promo-codes", nil, http.StatusForbidden)
	do(t, b.h, b.admin, "POST", "/api/v1/promo-codes", map[string]any{"code": "onlya", "percent_off": 5}, http.StatusConflict)
}

// fixedTax is a calculator plugged in with WithTaxCalculator: 5% on every
// line, whatever the country.
type fixedTax struct{}

func (fixedTax) Calculate(_ context.Context, in commerce.TaxInput) (commerce.TaxResult, error) {
	out := commerce.TaxResult{Calculator: "fixed_5", Country: in.Country, RateBPS: 500}
	for _, l := range in.Lines {
		out.Lines = append(out.Lines, l.Amount*5/100)
	}
	return out, nil
}

// The tax hook: the default rate table (by country, none for a country it
// does not list, inclusive prices), and another calculator plugged in;
// the result is snapshotted on the order.
func TestTaxHook(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, price := b.product(t, "Course", 10000, plugintest.NewID())
	_, inclusive := b.productIn(t, b.admin, "Inclusive", 11900, map[string]any{"tax_behavior": "inclusive"}, plugintest.NewID())
	fr := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": price}}, "country": "FR"})
	require.EqualValues(t, 2000, fr.AmountTax)
	require.EqualValues(t, 12000, fr.AmountTotal)
	us := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": price}}, "country": "US"})
	require.EqualValues(t, 0, us.AmountTax)
	require.Equal(t, commerce.TaxSnapshot{Calculator: "rate_table", Country: "US", RateBPS: 0}, us.Tax)
	de := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": inclusive}}, "country": "DE"})
	require.EqualValues(t, 1900, de.AmountTax, "the tax inside 119.00 at 19%")
	require.EqualValues(t, 11900, de.AmountTotal)

	other := newBundle(t, setupOpts{plugin: commerce.NewWith(commerce.WithTaxCalculator(fixedTax{}))})
	_, p2 := other.product(t, "Course", 10000, plugintest.NewID())
	o := other.checkout(t, other.learner, map[string]any{"items": []map[string]any{{"price_id": p2}}, "country": "DE"})
	require.EqualValues(t, 500, o.AmountTax)
	require.Equal(t, commerce.TaxSnapshot{Calculator: "fixed_5", Country: "DE", RateBPS: 500}, o.Tax)
}

// Erasing an institution leaves nothing of it, and nothing of another's
// goes.
func TestEraseInstitution(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, price := b.product(t, "Course", 1000, plugintest.NewID())
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": price}}})
	b.send(t, stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0))
	keep := b.configure(t, nil)
	keepAdmin := plugintest.User(keep, "admin")
	do(t, b.h, keepAdmin, "POST", "/api/v1/products", map[string]any{"name": "Theirs", "kind": "membership", "entitlements": []map[string]any{}}, 201)

	b.h.EraseTenant(t, b.tenant)
	for _, table := range []string{"products", "prices", "orders", "order_items", "webhook_events", "promo_codes"} {
		require.Zero(t, count(t, b.h, `SELECT count(*) FROM plugin_commerce.`+table+` WHERE tenant_id = $1`, b.tenant), table)
	}
	require.Equal(t, 1, count(t, b.h, `SELECT count(*) FROM plugin_commerce.products WHERE tenant_id = $1`, keep))
}
