package commerce_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// recordedStripe is the reconciliation tests' Stripe: stripe-mock answers
// every call except the two it cannot answer for a test (it lists fixed
// fixture events and knows no session the test made), which this small
// server answers from what the test recorded: GET /v1/events lists the
// recorded events (as Stripe does, newest first), and GET
// /v1/checkout/sessions/{id} answers a recorded session, or Stripe's 404
// for one it "never saw". Everything else is proxied to stripe-mock.
type recordedStripe struct {
	*httptest.Server
	mu       sync.Mutex
	events   []json.RawMessage
	sessions map[string]map[string]any // nil value: Stripe never saw it
}

func newRecordedStripe(t *testing.T) *recordedStripe {
	t.Helper()
	up, err := url.Parse(stripeMockURL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(up)
	r := &recordedStripe{sessions: map[string]map[string]any{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case req.Method == "GET" && req.URL.Path == "/v1/events":
			data := make([]json.RawMessage, 0, len(r.events))
			for i := len(r.events) - 1; i >= 0; i-- {
				data = append(data, r.events[i])
			}
			writeJSON(w, 200, map[string]any{"object": "list", "url": "/v1/events", "has_more": false, "data": data})
		case req.Method == "GET" && strings.HasPrefix(req.URL.Path, "/v1/checkout/sessions/"):
			id := strings.TrimPrefix(req.URL.Path, "/v1/checkout/sessions/")
			s, ok := r.sessions[id]
			if !ok {
				proxy.ServeHTTP(w, req)
				return
			}
			if s == nil {
				writeJSON(w, 404, map[string]any{"error": map[string]any{"type": "invalid_request_error", "code": "resource_missing",
					"message": "No such checkout.session: '" + id + "'", "param": "session"}})
				return
			}
			writeJSON(w, 200, s)
		default:
			proxy.ServeHTTP(w, req)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (r *recordedStripe) record(event []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event)
}

func (r *recordedStripe) session(id string, obj map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions[id] = obj
}

// The reconciliation job finds a checkout.session.completed that never
// arrived as a webhook and pays its order (the buyer gets the course: the
// paid event is published), and reports an order whose checkout session
// Stripe never saw; a second run repairs and reports nothing again.
func TestReconciliationRepairsAndReports(t *testing.T) {
	t.Parallel()
	stripe := newRecordedStripe(t)
	b := newBundle(t, setupOpts{apiBase: stripe.URL})
	course := plugintest.NewID()
	_, priceID := b.product(t, "Course", 3000, course)
	missed := b.checkout(t, b.learner, map[string]any{"items": []map[string]any{{"price_id": priceID}}})
	ghost := b.checkout(t, b.teacher, map[string]any{"items": []map[string]any{{"price_id": priceID}}})

	// Stripe has the completed session of the first order (its webhook
	// was lost) and has never seen the second's.
	stripe.record(stripeEvent("checkout.session.completed", sessionObject(missed, "complete", "paid"), time.Now().Add(-10*time.Minute).Unix()))
	stripe.session(*ghost.StripeSessionID, nil)
	// The ghost's checkout has expired (its session_expires_at passed):
	// what an hour's wait would do.
	_, err := b.h.DB().Exec(t.Context(), `UPDATE plugin_commerce.orders SET session_expires_at = now() - interval '1 minute' WHERE id = $1`, ghost.ID)
	require.NoError(t, err)

	run := func(args map[string]any) string {
		t.Helper()
		out, err := b.h.RunJob(t, commerce.JobReconcile, plugintest.JobRun{TenantID: b.tenant, Trigger: sdk.TriggerManual, Args: args})
		require.NoError(t, err)
		return out
	}
	out := run(map[string]any{})
	require.Contains(t, out, "1 missed")

	require.Equal(t, "paid", b.order(t, missed.ID).Status, "the missed webhook was repaired")
	paid := published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid)
	require.Len(t, paid, 1)
	require.Equal(t, missed.ID, paid[0].OrderID)
	require.Equal(t, course, paid[0].Items[0].CourseID)
	require.Equal(t, "pending", b.order(t, ghost.ID).Status, "not safely repairable: reported")

	kinds := map[string]string{}
	for _, a := range published[commerce.Anomaly](t, b.h, b.tenant, commerce.EventAnomaly) {
		kinds[a.Kind] = a.ObjectID
	}
	require.Equal(t, ghost.ID, kinds["order_unknown_to_stripe"], "%v", kinds)
	anomalies := decode[sdk.Page[commerce.BillingAnomaly]](t, do(t, b.h, b.admin, "GET", "/api/v1/billing/anomalies", nil, 200)).Items
	require.NotEmpty(t, anomalies)
	runs := decode[sdk.Page[commerce.ReconciliationRun]](t, do(t, b.h, b.admin, "GET", "/api/v1/billing/reconciliations", nil, 200)).Items
	require.Len(t, runs, 1)
	require.Equal(t, "succeeded", runs[0].Status)
	require.Equal(t, 1, runs[0].EventsSeen)
	require.Equal(t, 1, runs[0].EventsMissed)
	require.GreaterOrEqual(t, runs[0].Repaired, 1)
	require.GreaterOrEqual(t, runs[0].Anomalies, 1)
	do(t, b.h, b.learner, "GET", "/api/v1/billing/reconciliations", nil, 403)

	// Again: nothing new.
	before := len(published[commerce.Anomaly](t, b.h, b.tenant, commerce.EventAnomaly))
	out = run(map[string]any{})
	require.Contains(t, out, "0 missed")
	require.Len(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid), 1)
	require.Len(t, published[commerce.Anomaly](t, b.h, b.tenant, commerce.EventAnomaly), before)

	// Entitlement drift: the paid order has no enrolment (no courses
	// plugin here to make one). Past the grace period (0 minutes for the
	// test), it is reported and its paid event published again, once.
	run(map[string]any{"grace_minutes": 0})
	run(map[string]any{"grace_minutes": 0})
	require.Len(t, published[commerce.OrderPaid](t, b.h, b.tenant, commerce.EventOrderPaid), 2)
	var drift []commerce.Anomaly
	for _, a := range published[commerce.Anomaly](t, b.h, b.tenant, commerce.EventAnomaly) {
		if a.Kind == "entitlement_missing" {
			drift = append(drift, a)
		}
	}
	require.Len(t, drift, 1)
	require.Equal(t, missed.ID+"/"+course, drift[0].ObjectID)
	require.True(t, drift[0].Repaired)

	// The courses plugin reports the enrolment it made: no drift.
	require.NoError(t, b.h.Deliver(t, plugintest.Event{ID: plugintest.NewEventID(), Type: commerce.EventEnrolmentCreated, TenantID: b.tenant, Source: "courses",
		Data: map[string]any{"enrolment_id": plugintest.NewID(), "course_id": course, "user_id": b.learner.UserID, "status": "active", "source": "order", "order_id": missed.ID}}))
	require.Equal(t, 1, count(t, b.h, `SELECT count(*) FROM plugin_commerce.order_enrolments WHERE order_id = $1 AND status = 'active'`, missed.ID))
}
