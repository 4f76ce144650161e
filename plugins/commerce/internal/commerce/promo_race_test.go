package commerce_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// 50 buyers check out at once with a promo code that has one redemption
// left: exactly one checkout holds it, the other 49 are told the code is
// used up. When that checkout expires at Stripe the reservation is
// released, and the next buyer gets it.
func TestPromoLastRedemptionRace(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 5000, plugintest.NewID())
	code := b.promo(t, map[string]any{"code": "LASTONE", "percent_off": 50, "max_redemptions": 1})

	const buyers = 50
	results := make([]*plugintest.Result, buyers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range buyers {
		buyer := plugintest.User(b.tenant, "learner")
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = b.h.DoRequest(plugintest.Request{Principal: buyer, Method: "POST", Path: "/api/v1/checkout",
				Body: map[string]any{"items": []map[string]any{{"price_id": priceID}}, "promo_code": "lastone"}})
		}()
	}
	close(start)
	wg.Wait()
	var won []commerce.Order
	for _, res := range results {
		switch res.Status {
		case http.StatusCreated:
			var o commerce.Order
			res.JSON(t, &o)
			won = append(won, o)
		default:
			requireProblem(t, res, http.StatusConflict, "promo_code_exhausted")
		}
	}
	require.Len(t, won, 1, "exactly one checkout holds the last redemption")
	require.EqualValues(t, 2500, won[0].AmountDiscount)
	got := decode[commerce.PromoCode](t, do(t, b.h, b.admin, "GET", "/api/v1/promo-codes/"+code.ID, nil, 200))
	require.Equal(t, 1, got.Reserved)
	require.Equal(t, 0, got.Redeemed)

	// The checkout expires at Stripe: the reservation is released.
	b.send(t, stripeEvent("checkout.session.expired", sessionObject(won[0], "expired", "unpaid"), 0))
	require.Equal(t, "expired", b.order(t, won[0].ID).Status)
	got = decode[commerce.PromoCode](t, do(t, b.h, b.admin, "GET", "/api/v1/promo-codes/"+code.ID, nil, 200))
	require.Equal(t, 0, got.Reserved)
	next := b.checkout(t, plugintest.User(b.tenant, "learner"), map[string]any{"items": []map[string]any{{"price_id": priceID}}, "promo_code": "LASTONE"})
	require.EqualValues(t, 2500, next.AmountDiscount)

	// Paid: redeemed, and nobody else gets it.
	b.send(t, stripeEvent("checkout.session.completed", sessionObject(next, "complete", "paid"), 0))
	got = decode[commerce.PromoCode](t, do(t, b.h, b.admin, "GET", "/api/v1/promo-codes/"+code.ID, nil, 200))
	require.Equal(t, 1, got.Redeemed)
	require.Equal(t, 0, got.Reserved)
	res := b.h.DoRequest(plugintest.Request{Principal: plugintest.User(b.tenant, "learner"), Method: "POST", Path: "/api/v1/checkout",
		Body: map[string]any{"items": []map[string]any{{"price_id": priceID}}, "promo_code": "LASTONE"}})
	requireProblem(t, res, http.StatusConflict, "promo_code_exhausted")
}
