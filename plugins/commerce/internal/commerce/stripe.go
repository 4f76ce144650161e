package commerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/stripe/stripe-go/v85"

	"github.com/edulure/edulure/sdk"
)

// stripeAPI makes the plugin's calls to Stripe with stripe-go, each with
// the institution's own secret key, against the operator's base URL
// (stripe-mock in development and tests; Stripe's when empty). Every call
// that creates something carries an idempotency key derived from the
// plugin's own IDs, so a retry never makes a second one.
type stripeAPI struct {
	base string
	http *http.Client
}

func newStripeAPI(base string, hc *http.Client) *stripeAPI { return &stripeAPI{base: base, http: hc} }

func (s *stripeAPI) client(key string) *stripe.Client {
	cfg := &stripe.BackendConfig{
		HTTPClient:        s.http,
		MaxNetworkRetries: stripe.Int64(1),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if s.base != "" {
		cfg.URL = stripe.String(s.base)
	}
	return stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
}

// stripeError turns a failed Stripe call into the plugin's answer: Stripe
// unreachable, failing or rate limiting is a 503 to retry (the checkout's
// order stays pending; the same Idempotency-Key resumes it); Stripe refusing
// the request is permanent (permanent reports which).
func stripeError(what string, err error) (out error, permanent bool) {
	var se *stripe.Error
	if errors.As(err, &se) {
		switch {
		case se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode >= 500 || se.Type == stripe.ErrorTypeAPI:
		case se.Type == stripe.ErrorTypeIdempotency:
			return sdk.Errorf(sdk.ErrConflict, "%s: Stripe reports a conflicting retry: %s", what, se.Msg).WithCode("stripe_idempotency_conflict"), true
		case se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden:
			return sdk.Errorf(sdk.ErrConflict, "%s: Stripe refused the institution's secret key (stripe_secret_key)", what).WithCode("stripe_key_refused"), true
		default:
			msg := se.Msg
			if msg == "" {
				msg = string(se.Type)
			}
			return sdk.Errorf(sdk.ErrConflict, "%s: Stripe refused it: %s", what, msg).WithCode("stripe_refused"), true
		}
	}
	e := sdk.Errorf(sdk.ErrUnavailable, "%s: Stripe is not reachable now; retry with the same Idempotency-Key", what).WithCode("stripe_unavailable")
	e.RetryAfterSeconds = 5
	return e, false
}

// notFound reports a Stripe 404 (resource_missing).
func notFound(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound
}

// session is what the plugin keeps of a Checkout Session it created.
type session struct {
	ID, URL   string
	ExpiresAt int64
}

func (s *stripeAPI) createSession(ctx context.Context, key string, params *stripe.CheckoutSessionCreateParams, idempotencyKey string) (*session, error) {
	params.Context = ctx
	params.SetIdempotencyKey(idempotencyKey)
	cs, err := s.client(key).V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return nil, err
	}
	return &session{ID: cs.ID, URL: cs.URL, ExpiresAt: cs.ExpiresAt}, nil
}

// coupon creates the Stripe coupon of a promo code's discount on a
// subscription (Stripe applies it to the periods its duration says).
func (s *stripeAPI) coupon(ctx context.Context, key string, p *stripe.CouponCreateParams, idempotencyKey string) (string, error) {
	p.SetIdempotencyKey(idempotencyKey)
	c, err := s.client(key).V1Coupons.Create(ctx, p)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// taxRate creates the Stripe tax rate of a subscription's recurring tax.
func (s *stripeAPI) taxRate(ctx context.Context, key, country string, bps int, inclusive bool, idempotencyKey string) (string, error) {
	p := &stripe.TaxRateCreateParams{
		DisplayName: stripe.String("Tax"),
		Inclusive:   stripe.Bool(inclusive),
		Percentage:  stripe.Float64(float64(bps) / 100),
	}
	if country != "" {
		p.Country = stripe.String(country)
	}
	p.SetIdempotencyKey(idempotencyKey)
	r, err := s.client(key).V1TaxRates.Create(ctx, p)
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// refund is what Stripe answered about a refund.
type refund struct {
	ID     string
	Status string
	Amount int64
}

func (s *stripeAPI) refund(ctx context.Context, key, paymentIntent string, amount int64, reason, idempotencyKey string, meta map[string]string) (*refund, error) {
	p := &stripe.RefundCreateParams{PaymentIntent: stripe.String(paymentIntent), Amount: stripe.Int64(amount), Metadata: meta}
	if reason != "" {
		p.Reason = stripe.String(reason)
	}
	p.SetIdempotencyKey(idempotencyKey)
	r, err := s.client(key).V1Refunds.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	return &refund{ID: r.ID, Status: string(r.Status), Amount: r.Amount}, nil
}

// cancelAtPeriodEnd asks Stripe to end a subscription when its current
// period ends.
func (s *stripeAPI) cancelAtPeriodEnd(ctx context.Context, key, subscription string) error {
	p := &stripe.SubscriptionUpdateParams{CancelAtPeriodEnd: stripe.Bool(true)}
	p.SetIdempotencyKey("edulure-cancel-" + subscription)
	_, err := s.client(key).V1Subscriptions.Update(ctx, subscription, p)
	return err
}

// events lists the account's events created at or after since, oldest
// first, each as the JSON a webhook would carry.
func (s *stripeAPI) events(ctx context.Context, key string, since int64, max int) ([][]byte, error) {
	p := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since}}
	p.Limit = stripe.Int64(100)
	var out [][]byte
	for ev, err := range s.client(key).V1Events.List(ctx, p).All(ctx) {
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
		if len(out) >= max {
			return nil, fmt.Errorf("more than %d events in the window: narrow it", max)
		}
	}
	// Stripe lists newest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// getSession fetches a Checkout Session as JSON; found is false when
// Stripe has none with this ID.
func (s *stripeAPI) getSession(ctx context.Context, key, id string) (raw []byte, found bool, err error) {
	cs, err := s.client(key).V1CheckoutSessions.Retrieve(ctx, id, &stripe.CheckoutSessionRetrieveParams{})
	if notFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return cs.LastResponse.RawJSON, true, nil
}

// getSubscription fetches a subscription as JSON.
func (s *stripeAPI) getSubscription(ctx context.Context, key, id string) (raw []byte, found bool, err error) {
	sub, err := s.client(key).V1Subscriptions.Retrieve(ctx, id, &stripe.SubscriptionRetrieveParams{})
	if notFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return sub.LastResponse.RawJSON, true, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
