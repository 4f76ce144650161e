package commerce_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// Each edge case of the webhook intake gets its documented answer, and
// none changes anything: no stored event, no processing, the order still
// pending.
func TestWebhookEdgeCases(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 1000, plugintest.NewID())
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}})
	body := stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0)
	now := time.Now()
	v1 := func(secret string, at time.Time, payload []byte) string {
		return "v1=" + hex.EncodeToString(webhook.ComputeSignature(at, payload, secret))
	}
	otherVersion := bytes.Replace(body, []byte(`"api_version":"`), []byte(`"api_version":"2019-12-03`), 1)
	otherVersion = bytes.Replace(otherVersion, []byte(`2019-12-03`+strings.Split(string(body), `"api_version":"`)[1][:len("2026-03-25.dahlia")]), []byte(`2019-12-03`), 1)
	big := map[string]any{}
	require.NoError(t, json.Unmarshal(body, &big))
	big["padding"] = ""
	small, _ := json.Marshal(big)
	big["padding"] = strings.Repeat("x", 1_000_000-len(small)) // 1 MB: under the kernel's limit (1 MiB), over the plugin's
	bigBody, _ := json.Marshal(big)
	require.Len(t, bigBody, 1_000_000)
	big["padding"] = strings.Repeat("x", 1<<20)
	hugeBody, _ := json.Marshal(big)
	malformed := []byte(`{"id": "evt_1", "object": "event", "type": `)
	notAnEvent := []byte(`{"id": "evt_1", "object": "charge"}`)
	withNUL := bytes.Replace(body, []byte(`"livemode":false`), []byte(`"livemode":false,"x":"a\u0000b"`), 1)

	for _, tc := range []struct {
		name   string
		tenant string
		body   []byte
		header string
		status int
		code   string
	}{
		{"no signature", "", body, "", 400, "signature_missing"},
		{"malformed header", "", body, "v1=abc", 400, "signature_malformed"},
		{"no v1", "", body, fmt.Sprintf("t=%d,v0=%s", now.Unix(), strings.Repeat("a", 64)), 400, "signature_malformed"},
		{"bad signature", "", body, sign(body, "whsec_someone_else", now), 400, "signature_mismatch"},
		{"signature of another body", "", body, sign(append([]byte(" "), body...), signingSecret, now), 400, "signature_mismatch"},
		{"stale timestamp", "", body, sign(body, signingSecret, now.Add(-10*time.Minute)), 400, "timestamp_outside_tolerance"},
		{"future timestamp", "", body, sign(body, signingSecret, now.Add(10*time.Minute)), 400, "timestamp_outside_tolerance"},
		{"wrong API version", "", otherVersion, sign(otherVersion, signingSecret, now), 400, "unsupported_api_version"},
		{"malformed JSON", "", malformed, sign(malformed, signingSecret, now), 400, "malformed_event"},
		{"not an event", "", notAnEvent, sign(notAnEvent, signingSecret, now), 400, "malformed_event"},
		{"a NUL character", "", withNUL, sign(withNUL, signingSecret, now), 400, "malformed_event"},
		{"1 MB body", "", bigBody, sign(bigBody, signingSecret, now), 413, "webhook_too_large"},
		{"over the kernel's limit", "", hugeBody, sign(hugeBody, signingSecret, now), 413, "body-too-large"},
		{"unknown institution", plugintest.NewTenant(), body, sign(body, signingSecret, now), 404, "webhook_endpoint_unknown"},
		{"not a UUID", "stripe", body, sign(body, signingSecret, now), 404, "webhook_endpoint_unknown"},
		{"no signing secret", b.configure(t, map[string]any{"webhook_signing_secret": nil}), body, sign(body, signingSecret, now), 404, "webhook_endpoint_unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := tc.tenant
			if tenant == "" {
				tenant = b.tenant
			}
			res := b.webhook(t, tenant, tc.body, tc.header)
			requireProblem(t, res, tc.status, tc.code)
		})
	}
	// The plugin turned off for the institution: no endpoint either.
	off := b.configure(t, nil)
	b.h.SetEnabled(off, false)
	requireProblem(t, b.webhook(t, off, body, sign(body, signingSecret, now)), 404, "webhook_endpoint_unknown")

	require.Zero(t, count(t, b.h, `SELECT count(*) FROM plugin_commerce.webhook_events`), "nothing was stored")
	require.Empty(t, b.pending(t, b.tenant), "nothing to process")
	require.Equal(t, "pending", b.order(t, o.ID).Status)

	// During a rotation of the signing secret Stripe signs with both: one
	// v1 per secret. The plugin, with the new one, takes it.
	rotating := fmt.Sprintf("t=%d,%s,%s", now.Unix(), v1("whsec_the_old_one", now, body), v1(signingSecret, now, body))
	res := b.webhook(t, b.tenant, body, rotating)
	require.Equal(t, 200, res.Status, res)
	ack := decode[commerce.WebhookAck](t, res)
	require.True(t, ack.Received)
	require.False(t, ack.Duplicate)

	// The same event again (a replay, inside the tolerance): acknowledged,
	// ignored.
	res = b.webhook(t, b.tenant, body, sign(body, signingSecret, now))
	require.Equal(t, 200, res.Status, res)
	require.True(t, decode[commerce.WebhookAck](t, res).Duplicate)
	require.Equal(t, 1, count(t, b.h, `SELECT count(*) FROM plugin_commerce.webhook_events`))
	require.Len(t, b.pending(t, b.tenant), 1, "one event to process")
}

// The event is stored before the acknowledgement and processed out of the
// request: until the plugin's own event is delivered, the order is pending.
func TestWebhookProcessedOutOfRequest(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	_, priceID := b.product(t, "Course", 1000, plugintest.NewID())
	o := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}})
	body := stripeEvent("checkout.session.completed", sessionObject(o, "complete", "paid"), 0)
	res := b.webhook(t, b.tenant, body, sign(body, signingSecret, time.Now()))
	require.Equal(t, 200, res.Status, res)
	require.Equal(t, 1, count(t, b.h, `SELECT count(*) FROM plugin_commerce.webhook_events WHERE status = 'received'`))
	require.Equal(t, "pending", b.order(t, o.ID).Status)
	pending := b.pending(t, b.tenant)
	require.Len(t, pending, 1)
	ev := pending[0].Event()
	require.NoError(t, b.h.Deliver(t, ev))
	require.NoError(t, b.h.Deliver(t, ev), "a redelivery")
	require.Equal(t, "paid", b.order(t, o.ID).Status)
	require.Len(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid), 1)
	require.Equal(t, 1, count(t, b.h, `SELECT count(*) FROM plugin_commerce.webhook_events WHERE status = 'processed' AND user_id = $1`, b.learner.UserID))
}
