package commerce_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// The helpers every test file of the package shares: stripe-mock, the
// harness with an institution configured for Stripe, requests, Stripe
// events signed as Stripe signs them, and processing the stored events.

var stripeMockURL string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	mock, err := startStripeMock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stripe-mock:", err)
		return 1
	}
	defer mock.Stop()
	stripeMockURL = mock.URL
	return plugintest.Main(m)
}

const (
	secretKey     = "sk_test_123"
	signingSecret = "whsec_test_secret"
)

// bundle is a harness with one institution configured for Stripe and its
// people.
type bundle struct {
	h                       *plugintest.Harness
	tenant                  string
	admin, learner, teacher sdk.Principal

	mu        sync.Mutex
	processed map[string]bool // commerce.webhook.received.v1 events delivered
}

type setupOpts struct {
	apiBase string // the operator's stripe_api_base; stripe-mock when empty
	config  map[string]any
	plugin  *commerce.Plugin // commerce.New() when nil
}

func newBundle(t *testing.T, opts ...setupOpts) *bundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.apiBase == "" {
		o.apiBase = stripeMockURL
	}
	op, err := json.Marshal(map[string]any{"stripe_api_base": o.apiBase})
	require.NoError(t, err)
	p := o.plugin
	if p == nil {
		p = commerce.New()
	}
	h := plugintest.New(t, p, plugintest.WithOperatorConfig(op))
	b := &bundle{h: h, processed: map[string]bool{}}
	b.tenant = b.configure(t, o.config)
	b.admin, b.learner, b.teacher = plugintest.User(b.tenant, "admin"), plugintest.User(b.tenant, "learner"), plugintest.User(b.tenant, "instructor")
	return b
}

// configure makes a new institution with the Stripe settings (and more).
func (b *bundle) configure(t *testing.T, more map[string]any) string {
	t.Helper()
	tenant := plugintest.NewTenant()
	cfg := map[string]any{"stripe_secret_key": secretKey, "webhook_signing_secret": signingSecret, "currency": "eur",
		"tax_rates": []map[string]any{{"country": "DE", "rate_bps": 1900}, {"country": "FR", "rate_bps": 2000}}}
	for k, v := range more {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	b.h.SetTenantConfig(tenant, raw)
	return tenant
}

// do sends a request and requires the status.
func do(t *testing.T, h *plugintest.Harness, p sdk.Principal, method, path string, body any, status int, header ...string) *plugintest.Result {
	t.Helper()
	hd := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		hd.Set(header[i], header[i+1])
	}
	res := h.DoRequest(plugintest.Request{Principal: p, Method: method, Path: path, Body: body, Header: hd})
	require.Equal(t, status, res.Status, "%s %s: %s", method, path, res)
	return res
}

func decode[T any](t *testing.T, res *plugintest.Result) T {
	t.Helper()
	var v T
	res.JSON(t, &v)
	return v
}

// requireProblem requires an error answer with the status and code.
func requireProblem(t *testing.T, res *plugintest.Result, status int, code string, fields ...string) plugintest.Problem {
	t.Helper()
	require.Equal(t, status, res.Status, res)
	p := res.Problem()
	if code != "" {
		require.Equal(t, code, p.Code, res)
	}
	if fields != nil {
		require.ElementsMatch(t, fields, p.FieldNames(), res)
	}
	return p
}

// count runs a count query as the database's admin, across institutions.
func count(t *testing.T, h *plugintest.Harness, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}

// published lists the events of a type the plugin published for the
// institution, decoded.
func published[T any](t *testing.T, h *plugintest.Harness, tenant, typ string) []T {
	t.Helper()
	var out []T
	for _, e := range h.Published(t, tenant) {
		if e.Type == typ {
			var v T
			require.NoError(t, e.Decode(&v))
			out = append(out, v)
		}
	}
	return out
}

// Catalogue fixtures.

// product creates a product granting the courses, with a price, and
// returns the price's ID.
func (b *bundle) product(t *testing.T, name string, amount int64, courses ...string) (productID, priceID string) {
	t.Helper()
	return b.productIn(t, b.admin, name, amount, nil, courses...)
}

func (b *bundle) productIn(t *testing.T, admin sdk.Principal, name string, amount int64, price map[string]any, courses ...string) (productID, priceID string) {
	t.Helper()
	kind := "course"
	switch {
	case len(courses) == 0:
		kind = "membership"
	case len(courses) > 1:
		kind = "bundle"
	}
	ents := []map[string]any{}
	for _, c := range courses {
		ents = append(ents, map[string]any{"course_id": c})
	}
	pr := decode[commerce.Product](t, do(t, b.h, admin, "POST", "/api/v1/products", map[string]any{"name": name, "kind": kind, "entitlements": ents}, 201))
	body := map[string]any{"unit_amount": amount}
	for k, v := range price {
		body[k] = v
	}
	p := decode[commerce.Price](t, do(t, b.h, admin, "POST", "/api/v1/products/"+pr.ID+"/prices", body, 201))
	return pr.ID, p.ID
}

func (b *bundle) promo(t *testing.T, body map[string]any) commerce.PromoCode {
	t.Helper()
	return decode[commerce.PromoCode](t, do(t, b.h, b.admin, "POST", "/api/v1/promo-codes", body, 201))
}

// checkout buys a price as p.
func (b *bundle) checkout(t *testing.T, p sdk.Principal, body map[string]any, header ...string) commerce.Order {
	t.Helper()
	return decode[commerce.Order](t, do(t, b.h, p, "POST", "/api/v1/checkout", body, 201, header...))
}

// Stripe events.

// stripeEvent is a Stripe event of type typ about obj, created at created
// (Unix seconds; now when 0), in the plugin's API version.
func stripeEvent(typ string, obj map[string]any, created int64) []byte {
	if created == 0 {
		created = time.Now().Unix()
	}
	ev := map[string]any{
		"id": "evt_" + strings.ReplaceAll(plugintest.NewID(), "-", ""), "object": "event", "type": typ, "created": created,
		"api_version": stripe.APIVersion, "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": obj}, "request": map[string]any{"id": nil, "idempotency_key": nil},
	}
	raw, _ := json.Marshal(ev)
	return raw
}

func sessionObject(o commerce.Order, status, paymentStatus string) map[string]any {
	obj := map[string]any{
		"id": *o.StripeSessionID, "object": "checkout.session", "client_reference_id": o.ID, "status": status, "payment_status": paymentStatus,
		"amount_total": o.AmountTotal, "currency": o.Currency, "mode": o.Mode, "metadata": map[string]any{"order_id": o.ID},
		"customer": "cus_" + o.ID[:8], "customer_details": map[string]any{"email": "buyer@example.test", "name": "Bea Buyer"},
	}
	if o.Mode == "payment" {
		obj["payment_intent"] = "pi_" + strings.ReplaceAll(o.ID, "-", "")[:20]
	} else {
		obj["subscription"] = "sub_" + strings.ReplaceAll(o.ID, "-", "")[:20]
	}
	return obj
}

// webhook sends a body to the institution's webhook endpoint, signed now
// with the signing secret (or as sign says).
func (b *bundle) webhook(t *testing.T, tenant string, body []byte, header string) *plugintest.Result {
	t.Helper()
	hd := http.Header{"Content-Type": {"application/json"}}
	if header != "" {
		hd.Set("Stripe-Signature", header)
	}
	return b.h.DoRequest(plugintest.Request{Principal: plugintest.Anonymous(), Method: "POST", Path: "/api/v1/webhooks/stripe/" + tenant, Body: body, Header: hd})
}

// sign is the Stripe-Signature header of body, signed at at with secret,
// as Stripe signs (stripe-go's test helper).
func sign(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
}

// send signs and sends a Stripe event, requires it acknowledged, and
// processes it as the kernel's delivery would.
func (b *bundle) send(t *testing.T, body []byte) {
	t.Helper()
	res := b.webhook(t, b.tenant, body, sign(body, signingSecret, time.Now()))
	require.Equal(t, 200, res.Status, res)
	b.process(t, b.tenant)
}

// process delivers the plugin's commerce.webhook.received.v1 events not
// yet delivered, as the kernel's relay would, and requires each to succeed.
func (b *bundle) process(t *testing.T, tenant string) {
	t.Helper()
	for _, e := range b.pending(t, tenant) {
		require.NoError(t, b.h.Deliver(t, e.Event()), "processing %s", e.Data)
	}
}

func (b *bundle) pending(t *testing.T, tenant string) []plugintest.PublishedEvent {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []plugintest.PublishedEvent
	for _, e := range b.h.Published(t, tenant) {
		if e.Type == commerce.EventWebhookReceived && !b.processed[e.ID] {
			b.processed[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// order reads an order as an admin.
func (b *bundle) order(t *testing.T, id string) commerce.Order {
	t.Helper()
	return decode[commerce.Order](t, do(t, b.h, b.admin, "GET", "/api/v1/orders/"+id, nil, 200))
}

// inTenant runs fn as the plugin in the institution.
func (b *bundle) inTenant(t *testing.T, fn func(tx pgx.Tx) error) {
	t.Helper()
	require.NoError(t, b.h.InTenant(b.tenant, fn))
}
