package httpapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/stripemock"
)

var commercePlugin = variant{name: "commerce", version: "0.1.0", module: "plugins/commerce"}

// stripe-mock for the test binary: installed into the repository's bin/
// (go install, pinned) and started on first use; TestMain's exit kills it
// (and so does the parent-death signal).
var (
	stripeMockOnce sync.Once
	stripeMockSrv  *stripemock.Server
	stripeMockErr  error
)

func stripeMock(t *testing.T) string {
	t.Helper()
	stripeMockOnce.Do(func() {
		bin, err := stripemock.Install(context.Background(), filepath.Join("..", "..", "..", "bin"))
		if err != nil {
			stripeMockErr = err
			return
		}
		stripeMockSrv, stripeMockErr = stripemock.Start(context.Background(), bin, nil)
	})
	require.NoError(t, stripeMockErr)
	return stripeMockSrv.URL
}

func stopStripeMock() { stripeMockSrv.Stop() }

// stripeSignature is the Stripe-Signature header of body signed at at
// with secret, as Stripe specifies it: t=<unix seconds>,v1=<hex of
// HMAC-SHA256(secret, "<t>.<body>")>.
func stripeSignature(body []byte, secret string, at time.Time) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.", at.Unix())
	mac.Write(body)
	return fmt.Sprintf("t=%d,v1=%s", at.Unix(), hex.EncodeToString(mac.Sum(nil)))
}

// TestCommerceEndToEnd walks a sale through the kernel with the real
// commerce and courses binaries and Stripe's API served by stripe-mock: an
// admin sets the institution's Stripe keys (secret settings), creates a
// product granting a course, a price and a promo code; a learner checks
// out; the success page grants nothing; the signed webhook arrives, the
// order is paid, commerce.order.paid.v1 reaches the courses plugin and the
// learner is enrolled; another institution sees and refunds nothing, and
// its webhook endpoint does not take A's events; a refund through Stripe
// withdraws the enrolment (commerce.order.refunded.v1).
func TestCommerceEndToEnd(t *testing.T) {
	t.Parallel()
	api := stripeMock(t)
	env := append([]string{"EDULURE_PRIVACY_MAX_ATTEMPTS", "100"}, append(fastEvents, fastPrivacy...)...)
	b, _ := withPluginsEnv(t, env, pluginBlock{variant: coursesPlugin},
		pluginBlock{variant: commercePlugin, config: fmt.Sprintf(`{ stripe_api_base = %q }`, api)})
	a := b.institution("shop")
	other := b.institution("elsewhere")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	const whsec = "whsec_e2e_signing_secret"

	// The instructor publishes a course.
	course := ok(b.do("POST", "/api/v1/courses", a.instructor, map[string]any{"title": "Practical Statistics", "summary": "Numbers you can trust."}), 201).str("id")
	module := ok(b.do("POST", "/api/v1/courses/"+course+"/modules", a.instructor, map[string]any{"title": "Basics"}), 201).str("id")
	ok(b.do("POST", "/api/v1/courses/"+course+"/modules/"+module+"/lessons", a.instructor, map[string]any{"title": "Means", "body": "# Means", "estimated_minutes": 10}), 201)
	ok(b.do("POST", "/api/v1/courses/"+course+"/publish", a.instructor, map[string]any{"note": "First run"}), 201)

	// The admin sets the Stripe keys: secret settings, never shown back.
	r := ok(b.do("PUT", "/api/v1/tenant/plugins/commerce", a.admin, map[string]any{"enabled": true, "config": map[string]any{
		"stripe_secret_key": "sk_test_e2e", "webhook_signing_secret": whsec, "currency": "eur",
		"tax_rates": []map[string]any{{"country": "DE", "rate_bps": 1900}},
	}}), 200)
	require.Equal(t, true, r.get("secrets", "stripe_secret_key", "set"), "%s", r.Raw)
	require.NotContains(t, string(r.Raw), "sk_test_e2e")
	require.NotContains(t, string(r.Raw), whsec)

	// The catalogue: a product granting the course, a price, a promo code.
	product := ok(b.do("POST", "/api/v1/products", a.admin, map[string]any{"name": "Practical Statistics", "kind": "course",
		"entitlements": []map[string]any{{"course_id": course}}}), 201).str("id")
	price := ok(b.do("POST", "/api/v1/products/"+product+"/prices", a.admin, map[string]any{"unit_amount": 4900}), 201).str("id")
	ok(b.do("POST", "/api/v1/promo-codes", a.admin, map[string]any{"code": "SPRING10", "percent_off": 10}), 201)
	requireProblem(t, b.do("POST", "/api/v1/products", a.learner, map[string]any{"name": "Mine", "kind": "course", "entitlements": []map[string]any{}}), 403, "permission-denied")

	// The learner checks out against stripe-mock.
	o := ok(b.do("POST", "/api/v1/checkout", a.learner, map[string]any{"items": []map[string]any{{"price_id": price}}, "promo_code": "spring10", "country": "DE"},
		"Idempotency-Key", "e2e-checkout-1"), 201)
	order := o.str("id")
	require.Equal(t, "pending", o.str("status"))
	require.NotEmpty(t, o.str("checkout_url"))
	require.EqualValues(t, 4900-490+838, o.get("amount_total"), "%s", o.Raw)
	session := o.str("stripe_session_id")
	require.True(t, strings.HasPrefix(session, "cs_"), session)
	// The same Idempotency-Key: the same order.
	require.Equal(t, order, ok(b.do("POST", "/api/v1/checkout", a.learner, map[string]any{"items": []map[string]any{{"price_id": price}}, "promo_code": "spring10", "country": "DE"},
		"Idempotency-Key", "e2e-checkout-1"), 201).str("id"))

	// Stripe's webhook: checkout.session.completed, signed with A's secret.
	event := func(id, typ string, obj map[string]any) []byte {
		raw, err := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": time.Now().Unix(),
			"api_version": "2026-03-25.dahlia", "livemode": false, "pending_webhooks": 1, "data": map[string]any{"object": obj}})
		require.NoError(t, err)
		return raw
	}
	paidEvent := event("evt_e2e_paid_1", "checkout.session.completed", map[string]any{
		"id": session, "object": "checkout.session", "client_reference_id": order, "status": "complete", "payment_status": "paid",
		"amount_total": 4900 - 490 + 838, "currency": "eur", "mode": "payment", "metadata": map[string]any{"order_id": order},
		"payment_intent": "pi_e2e_1", "customer": "cus_e2e_1", "customer_details": map[string]any{"email": "learner@shop.test"},
	})
	hook := func(tenant string, body []byte, sig string) response {
		return b.do("POST", "/api/v1/webhooks/stripe/"+tenant, "", body, "Content-Type", "application/json", "Stripe-Signature", sig)
	}
	// Bad signature, stale timestamp, another institution's endpoint: refused.
	requireProblem(t, hook(a.id, paidEvent, stripeSignature(paidEvent, "whsec_not_it", time.Now())), 400, "signature_mismatch")
	requireProblem(t, hook(a.id, paidEvent, stripeSignature(paidEvent, whsec, time.Now().Add(-time.Hour))), 400, "timestamp_outside_tolerance")
	requireProblem(t, hook(other.id, paidEvent, stripeSignature(paidEvent, whsec, time.Now())), 404, "webhook_endpoint_unknown")
	requireProblem(t, hook(uuid.NewString(), paidEvent, stripeSignature(paidEvent, whsec, time.Now())), 404, "webhook_endpoint_unknown")
	require.Equal(t, "pending", ok(b.do("GET", "/api/v1/orders/"+order, a.learner, nil), 200).str("status"), "nothing refused changed anything")

	r = ok(hook(a.id, paidEvent, stripeSignature(paidEvent, whsec, time.Now())), 200)
	require.Equal(t, true, r.get("received"))
	// A replay: acknowledged, ignored.
	r = ok(hook(a.id, paidEvent, stripeSignature(paidEvent, whsec, time.Now())), 200)
	require.Equal(t, true, r.get("duplicate"))

	// Processed out of the request: the order is paid and the courses
	// plugin enrols the learner.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, "paid", b.do("GET", "/api/v1/orders/"+order, a.learner, nil).str("status"))
	}, eventually, 50*time.Millisecond)
	enrolment := func() map[string]any {
		for _, e := range b.do("GET", "/api/v1/enrolments", a.learner, nil).items() {
			if e["course_id"] == course {
				return e
			}
		}
		return nil
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		e := enrolment()
		if assert.NotNil(c, e) {
			assert.Equal(c, "active", e["status"])
			assert.Equal(c, "order", e["source"])
			assert.Equal(c, order, e["order_id"])
		}
	}, eventually, 50*time.Millisecond)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM plugin_courses.enrolments WHERE order_id = $1`, order))

	// Another institution's admin sees and refunds none of it.
	requireProblem(t, b.do("GET", "/api/v1/orders/"+order, other.admin, nil), 404, "not-found")
	requireProblem(t, b.do("POST", "/api/v1/orders/"+order+"/refunds", other.admin, map[string]any{}), 404, "not-found")
	require.Empty(t, ok(b.do("GET", "/api/v1/orders", other.admin, nil), 200).items())
	// The learner cannot refund.
	requireProblem(t, b.do("POST", "/api/v1/orders/"+order+"/refunds", a.learner, map[string]any{}), 403, "permission-denied")

	// The admin refunds it in full through Stripe (stripe-mock): the order
	// is refunded and the courses plugin withdraws the enrolment.
	r = ok(b.do("POST", "/api/v1/orders/"+order+"/refunds", a.admin, map[string]any{"reason": "requested_by_customer"}), 201)
	require.Equal(t, "succeeded", r.str("refund", "status"), "%s", r.Raw)
	require.Equal(t, "refunded", r.str("order", "status"), "%s", r.Raw)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		e := enrolment()
		if assert.NotNil(c, e) {
			assert.Equal(c, "withdrawn", e["status"])
		}
	}, eventually, 50*time.Millisecond)
	requireProblem(t, b.do("POST", "/api/v1/orders/"+order+"/refunds", a.admin, map[string]any{}), 409, "order_refunded")

	// The learner's personal data through the kernel: their export holds
	// the order and the Stripe event about them; after their erasure the
	// order is kept for the books under a pseudonym, and nothing in the
	// database holds their address or the Stripe customer ID.
	b.coolOff(a.admin, 0)
	r = ok(b.do("POST", "/api/v1/me/data-export", a.learner, nil), 202)
	mine := "/api/v1/me/data-exports/" + r.str("id")
	b.waitFor(mine, a.learner, "ready")
	x := b.download(mine+"/download", a.learner)
	require.Len(t, x.lines(t, "plugins/commerce/orders.jsonl"), 1)
	require.Len(t, x.lines(t, "plugins/commerce/order_items.jsonl"), 1)
	require.Len(t, x.lines(t, "plugins/commerce/refunds.jsonl"), 1)
	require.NotEmpty(t, x.lines(t, "plugins/commerce/webhook_events.jsonl"))
	require.Contains(t, strings.Join(b.traces("cus_e2e_1"), "\n"), "plugin_commerce.orders")

	r = ok(b.do("POST", "/api/v1/me/erasure", a.learner, nil), 202)
	r = b.waitFor("/api/v1/tenant/erasures/"+r.str("id"), a.admin, "completed")
	require.Equal(t, "done", stepStates(r)["plugin:commerce"], "%s", r.Raw)
	require.Empty(t, b.traces("learner@shop.test", "cus_e2e_1"))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM plugin_commerce.orders WHERE id = $1 AND status = 'refunded' AND amount_total = $2 AND user_id <> $3`,
		order, 4900-490+838, a.learnerID), "the books keep the order")
	require.Len(t, ok(b.do("GET", "/api/v1/orders?scope=all", a.admin, nil), 200).items(), 1)
}
