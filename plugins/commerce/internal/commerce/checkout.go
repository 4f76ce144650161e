package commerce

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v85"

	"github.com/edulure/edulure/sdk"
)

// CheckoutRequest is the body of POST /api/v1/checkout.
type CheckoutRequest struct {
	Items     []CheckoutItem `json:"items" minItems:"1" maxItems:"10" doc:"What to buy: one-time prices, or exactly one recurring price (a subscription)."`
	PromoCode string         `json:"promo_code,omitempty" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$"`
	Country   string         `json:"country,omitempty" pattern:"^[A-Z]{2}$" doc:"The buyer's country, for tax (ISO 3166-1 alpha-2); absent: the institution's default_country."`
}

// CheckoutItem is one price to buy.
type CheckoutItem struct {
	PriceID  string `json:"price_id" format:"uuid"`
	Quantity int    `json:"quantity,omitempty" minimum:"1" maximum:"100" doc:"1 when absent."`
}

func (p *Plugin) checkoutRoutes() []sdk.Route {
	return []sdk.Route{{
		Method: "POST", Path: "/api/v1/checkout", Permission: PermCheckout,
		Summary: "Buy: create a pending order (promo code reserved, tax snapshotted) and its Stripe Checkout Session; answers the order with checkout_url. " +
			"Idempotent by Idempotency-Key (the same key and body resume the same order and session; another body is a 422). " +
			"Paying at Stripe is confirmed by Stripe's signed webhook only: the success URL grants nothing.",
		Request: CheckoutRequest{}, Response: Order{}, Status: http.StatusCreated, Handler: p.checkout,
	}}
}

// checkoutLine is a line of a checkout being priced.
type checkoutLine struct {
	productID, priceID, productName string
	currencyCode                    string
	quantity                        int
	unit, subtotal, discount, tax   int64
	inclusive                       bool
	interval                        string
	intervalCount, trialDays        int
	entitlements                    []Entitlement
	promo                           bool // the promo code applies to it
}

func (l *checkoutLine) total() int64 {
	if l.inclusive {
		return l.subtotal - l.discount
	}
	return l.subtotal - l.discount + l.tax
}

// errResume: a concurrent request with the same Idempotency-Key made the
// order first; resume it.
var errResume = errors.New("resume the order of the idempotency key")

// checkout handles POST /api/v1/checkout.
//
//  1. With an Idempotency-Key the caller used before: the same body resumes
//     that order (its session, or the session not yet created), another is a
//     422 idempotency-key-reused.
//  2. The prices are read and priced: the promo code's discount, then the
//     tax calculator's tax on what is left (TaxCalculator; outside any
//     transaction).
//  3. One transaction reserves the promo code's redemption (its row locked,
//     so concurrent checkouts take the last one at most once) and writes the
//     order (pending) with its items and the tax snapshot.
//  4. Stripe's Checkout Session is created with the idempotency key
//     edulure-checkout-<order>-<attempt>, so a retry never creates two; its
//     ID and URL are stored. Stripe unreachable: 503, the order stays
//     pending and the same Idempotency-Key resumes it. Stripe refusing it:
//     the order fails and the reservation is released.
//
// A total of zero (a 100% promo code) has nothing to pay: the order is paid
// at once, without Stripe.
func (p *Plugin) checkout(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	me := req.Principal
	if !me.IsUser() {
		return nil, sdk.Errorf(sdk.ErrForbidden, "only a person buys: an API key cannot check out").WithCode("user_required")
	}
	var in CheckoutRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	for i := range in.Items {
		in.Items[i].PriceID = strings.ToLower(in.Items[i].PriceID)
		if in.Items[i].Quantity == 0 {
			in.Items[i].Quantity = 1
		}
		for j := range i {
			if in.Items[j].PriceID == in.Items[i].PriceID {
				return nil, sdk.Invalid(sdk.FieldError{Field: fmt.Sprintf("items.%d.price_id", i), Message: "is given twice: set its quantity"})
			}
		}
	}
	in.PromoCode = strings.ToUpper(in.PromoCode)
	canonical, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256(canonical)
	key := req.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		return nil, sdk.Errorf(sdk.ErrBadRequest, "Idempotency-Key must be at most 255 characters").WithCode("bad-idempotency-key")
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	if err := cfg.requireKey(); err != nil {
		return nil, err
	}

	var o *Order
	for attempt := 0; o == nil; attempt++ {
		if key != "" {
			if o, err = p.resumeOrder(ctx, req, key, hash[:]); err != nil || o != nil {
				break
			}
		}
		o, err = p.newOrder(ctx, req, cfg, in, key, hash[:])
		if errors.Is(err, errResume) && attempt == 0 {
			o, err = nil, nil
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	switch {
	case o.Status == orderPending && o.StripeSessionID == nil:
		if err := p.startSession(ctx, req, cfg, o); err != nil {
			return nil, err
		}
	case o.Status == orderExpired || o.Status == orderFailed:
		return nil, sdk.Errorf(sdk.ErrConflict, "order %s of this Idempotency-Key is %s: %s; check out again with another key", o.ID, o.Status, o.StatusReason).WithCode("checkout_closed")
	}
	return sdk.JSON(http.StatusCreated, o)
}

// resumeOrder finds the caller's order of an Idempotency-Key: nil when
// there is none, a 422 when it was made from another body.
func (p *Plugin) resumeOrder(ctx context.Context, req *sdk.Request, key string, hash []byte) (*Order, error) {
	var o *Order
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		var id string
		var stored []byte
		err := tx.QueryRow(ctx, `SELECT id, request_hash FROM orders WHERE user_id = $1 AND idempotency_key = $2`, req.Principal.UserID, key).Scan(&id, &stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(stored, hash) {
			return sdk.Errorf(sdk.ErrInvalid, "this Idempotency-Key was used with another request body (order %s)", id).WithCode("idempotency-key-reused")
		}
		o, err = loadOrder(ctx, tx, id, false)
		return err
	})
	return o, err
}

// newOrder prices the checkout and writes its order, reserving the promo
// code.
func (p *Plugin) newOrder(ctx context.Context, req *sdk.Request, cfg Config, in CheckoutRequest, key string, hash []byte) (*Order, error) {
	me := req.Principal
	var lines []*checkoutLine
	var promo *PromoCode
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		if lines, err = priceLines(ctx, tx, in.Items); err != nil {
			return err
		}
		if in.PromoCode != "" {
			promo, err = scanPromo(tx.QueryRow(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE code = $1`, in.PromoCode))
			if errors.Is(err, pgx.ErrNoRows) {
				return sdk.Invalid(sdk.FieldError{Field: "promo_code", Message: "is not a promo code of the institution"}).WithCode("promo_code_invalid")
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	mode, cur, err := checkoutMode(lines, in.Items)
	if err != nil {
		return nil, err
	}
	country := in.Country
	if country == "" {
		country = cfg.DefaultCountry
	}
	if promo != nil {
		if err := discount(lines, promo, cur); err != nil {
			return nil, err
		}
	}
	taxIn := TaxInput{TenantID: req.Tenant(), Country: country, Currency: cur, Config: cfg}
	for _, l := range lines {
		taxIn.Lines = append(taxIn.Lines, TaxLine{Amount: l.subtotal - l.discount, Inclusive: l.inclusive})
	}
	tax, err := p.tax.Calculate(ctx, taxIn)
	if err != nil {
		var se *sdk.Error
		if errors.As(err, &se) {
			return nil, se
		}
		p.env.Logger.Error("tax calculation", "tenant_id", req.Tenant(), "error", err)
		e := sdk.Errorf(sdk.ErrUnavailable, "the tax could not be calculated now; retry").WithCode("tax_unavailable")
		e.RetryAfterSeconds = 5
		return nil, e
	}
	if len(tax.Lines) != len(lines) {
		return nil, fmt.Errorf("the tax calculator %s answered %d lines for %d", tax.Calculator, len(tax.Lines), len(lines))
	}
	var sub, disc, taxTotal, total int64
	for i, l := range lines {
		if tax.Lines[i] < 0 {
			return nil, fmt.Errorf("the tax calculator %s answered a negative tax", tax.Calculator)
		}
		l.tax = tax.Lines[i]
		sub, disc, taxTotal, total = sub+l.subtotal, disc+l.discount, taxTotal+l.tax, total+l.total()
	}
	snapshot, err := json.Marshal(TaxSnapshot{Calculator: tax.Calculator, Country: tax.Country, RateBPS: tax.RateBPS})
	if err != nil {
		return nil, err
	}

	var o *Order
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var promoID, promoCode *string
		if promo != nil {
			c, err := reservePromo(ctx, tx, in.PromoCode, me.UserID, lines, cur, p.now())
			if err != nil {
				return err
			}
			if !samePromo(c, promo) {
				return sdk.Errorf(sdk.ErrConflict, "promo code %s changed during the checkout; retry", c.Code).WithCode("promo_code_changed")
			}
			promoID, promoCode = &c.ID, &c.Code
		}
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO orders (user_id, mode, currency, amount_subtotal, amount_discount, amount_tax, amount_total, promo_code_id, promo_code, tax, idempotency_key, request_hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (tenant_id, user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING id`,
			me.UserID, mode, cur, sub, disc, taxTotal, total, promoID, promoCode, snapshot, nullIfEmpty(key), hash).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return errResume
		}
		if err != nil {
			return fmt.Errorf("writing the order: %w", err)
		}
		for i, l := range lines {
			ents, err := json.Marshal(l.entitlements)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `
				INSERT INTO order_items (order_id, position, product_id, price_id, product_name, quantity, unit_amount, amount_subtotal, amount_discount,
					amount_tax, amount_total, recurring_interval, recurring_interval_count, entitlements)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
				id, i, l.productID, l.priceID, l.productName, l.quantity, l.unit, l.subtotal, l.discount, l.tax, l.total(),
				nullIfEmpty(l.interval), zeroNull(l.intervalCount), ents)
			if err != nil {
				return err
			}
		}
		if promoID != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO promo_redemptions (order_id, promo_code_id, user_id, status, amount_off) VALUES ($1, $2, $3, 'reserved', $4)`,
				id, *promoID, me.UserID, disc); err != nil {
				return err
			}
		}
		if total == 0 && mode == "payment" {
			// Nothing to pay: no Stripe, no webhook to wait for.
			o, err = loadOrder(ctx, tx, id, true)
			if err != nil {
				return err
			}
			return p.markPaid(ctx, tx, req, o, "nothing to pay", &outcome{})
		}
		o, err = loadOrder(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	if o.Status == orderPaid {
		return loadOrderIn(ctx, req, o.ID)
	}
	return o, nil
}

func loadOrderIn(ctx context.Context, s sdk.Scope, id string) (*Order, error) {
	var o *Order
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		o, err = loadOrder(ctx, tx, id, false)
		return err
	})
	return o, err
}

// samePromo: what the discount was computed from has not changed since.
func samePromo(a, b *PromoCode) bool {
	eq := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eq64 := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.ID == b.ID && eq(a.PercentOff, b.PercentOff) && eq64(a.AmountOff, b.AmountOff) && slices.Equal(a.ProductIDs, b.ProductIDs) && a.Duration == b.Duration
}

// priceLines reads the checkout's prices with their products: each must be
// on sale.
func priceLines(ctx context.Context, tx pgx.Tx, items []CheckoutItem) ([]*checkoutLine, error) {
	var lines []*checkoutLine
	for i, it := range items {
		field := fmt.Sprintf("items.%d.price_id", i)
		var l checkoutLine
		var active bool
		var status, currency, typ string
		var ents []byte
		err := tx.QueryRow(ctx, `
			SELECT pr.id, p.id, p.name, p.status, pr.active, pr.currency, pr.unit_amount, pr.type, pr.tax_behavior = 'inclusive',
			       coalesce(pr.recurring_interval, ''), coalesce(pr.recurring_interval_count, 0), coalesce(pr.trial_days, 0),
			       coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('course_id', e.course_id, 'cohort_id', e.cohort_id)) ORDER BY e.position)
			                 FROM product_entitlements e WHERE e.product_id = p.id), '[]')
			FROM prices pr JOIN products p ON p.id = pr.product_id WHERE pr.id = $1`, it.PriceID).
			Scan(&l.priceID, &l.productID, &l.productName, &status, &active, &currency, &l.unit, &typ, &l.inclusive,
				&l.interval, &l.intervalCount, &l.trialDays, &ents)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sdk.Invalid(sdk.FieldError{Field: field, Message: "is not a price of the institution"}).WithCode("price_unknown")
		}
		if err != nil {
			return nil, err
		}
		if !active || status != "active" {
			return nil, sdk.Invalid(sdk.FieldError{Field: field, Message: "is not on sale"}).WithCode("price_inactive")
		}
		if err := json.Unmarshal(ents, &l.entitlements); err != nil {
			return nil, err
		}
		l.quantity = it.Quantity
		l.subtotal = l.unit * int64(l.quantity)
		l.currencyCode = currency
		lines = append(lines, &l)
	}
	return lines, nil
}

// checkoutMode is payment (one-time prices) or subscription (exactly one
// recurring price), and the checkout's one currency.
func checkoutMode(lines []*checkoutLine, items []CheckoutItem) (mode, currency string, err error) {
	currency = lines[0].currencyCode
	recurring := 0
	for i, l := range lines {
		if l.currencyCode != currency {
			return "", "", sdk.Invalid(sdk.FieldError{Field: fmt.Sprintf("items.%d.price_id", i), Message: fmt.Sprintf("is in %s; the checkout is in %s: one currency per checkout", l.currencyCode, currency)})
		}
		if l.interval != "" {
			recurring++
		}
	}
	switch {
	case recurring == 0:
		return "payment", currency, nil
	case len(items) == 1:
		return "subscription", currency, nil
	}
	return "", "", sdk.Invalid(sdk.FieldError{Field: "items", Message: "a recurring price is bought alone (a subscription per checkout)"})
}

// discount applies the promo code to the lines it applies to: a percentage
// of each, rounded half up; or an amount off their sum (at most the sum),
// shared in proportion, the rounding remainder on the last.
func discount(lines []*checkoutLine, c *PromoCode, currency string) error {
	if c.Currency != nil && *c.Currency != currency {
		return sdk.Invalid(sdk.FieldError{Field: "promo_code", Message: fmt.Sprintf("takes an amount off in %s; the checkout is in %s", *c.Currency, currency)}).WithCode("promo_code_not_applicable")
	}
	var eligible []*checkoutLine
	var sum int64
	for _, l := range lines {
		if len(c.ProductIDs) == 0 || slices.Contains(c.ProductIDs, l.productID) {
			eligible = append(eligible, l)
			sum += l.subtotal
		}
	}
	if len(eligible) == 0 {
		return sdk.Invalid(sdk.FieldError{Field: "promo_code", Message: "does not apply to these products"}).WithCode("promo_code_not_applicable")
	}
	if c.Duration == "repeating" {
		for _, l := range eligible {
			if l.interval == "day" || l.interval == "week" {
				return sdk.Invalid(sdk.FieldError{Field: "promo_code", Message: "lasts a number of billing periods, which Stripe counts in months: it applies to monthly or yearly prices"}).WithCode("promo_code_not_applicable")
			}
		}
	}
	if c.PercentOff != nil {
		for _, l := range eligible {
			l.discount = divRound(l.subtotal*int64(*c.PercentOff), 100)
		}
		return nil
	}
	off := min(*c.AmountOff, sum)
	var given int64
	for i, l := range eligible {
		if i == len(eligible)-1 {
			l.discount = off - given
			break
		}
		if sum > 0 {
			l.discount = off * l.subtotal / sum
		}
		given += l.discount
	}
	return nil
}

// startSession creates the order's Stripe Checkout Session and stores it.
func (p *Plugin) startSession(ctx context.Context, req *sdk.Request, cfg Config, o *Order) error {
	params, err := p.sessionParams(ctx, req, cfg, o)
	if err == nil {
		var cs *session
		cs, err = p.stripe.createSession(ctx, cfg.StripeSecretKey, params, fmt.Sprintf("edulure-checkout-%s-%d", o.ID, p.attempt(ctx, req, o)))
		if err == nil {
			return p.storeSession(ctx, req, o, cs)
		}
	}
	out, final := stripeError("creating the Stripe checkout", err)
	if !final {
		p.env.Logger.Warn("Stripe checkout session", "tenant_id", req.Tenant(), "order_id", o.ID, "error", err)
		return out
	}
	var se *sdk.Error
	errors.As(out, &se)
	if cerr := req.Tx(ctx, func(tx pgx.Tx) error {
		cur, err := loadOrder(ctx, tx, o.ID, true)
		if err != nil {
			return err
		}
		return closeOrder(ctx, tx, cur, orderFailed, truncate(se.Detail, 500), p.now(), &outcome{})
	}); cerr != nil {
		return cerr
	}
	return out
}

// attempt is the order's attempt number: Stripe's idempotency key of its
// session is edulure-checkout-<order>-<attempt>, the same for every retry.
func (p *Plugin) attempt(ctx context.Context, req *sdk.Request, o *Order) int {
	n := 1
	_ = req.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT attempt FROM orders WHERE id = $1`, o.ID).Scan(&n)
	})
	return n
}

// storeSession records the session on the order, unless a concurrent
// retry stored one first (then that one stands).
func (p *Plugin) storeSession(ctx context.Context, req *sdk.Request, o *Order, cs *session) error {
	return req.Tx(ctx, func(tx pgx.Tx) error {
		var expires *time.Time
		if cs.ExpiresAt > 0 {
			expires = unixTime(cs.ExpiresAt)
		}
		var url *string
		if cs.URL != "" && len(cs.URL) <= 2000 {
			url = &cs.URL
		}
		_, err := tx.Exec(ctx, `UPDATE orders SET stripe_session_id = $2, checkout_url = $3, session_expires_at = $4, updated_at = now()
			WHERE id = $1 AND stripe_session_id IS NULL`, o.ID, nullIfNot(cs.ID, "cs_"), url, expires)
		if err != nil {
			return fmt.Errorf("storing checkout session %s: %w", cs.ID, err)
		}
		cur, err := loadOrder(ctx, tx, o.ID, false)
		if err != nil {
			return err
		}
		*o = *cur
		return nil
	})
}

// sessionParams are the Checkout Session of an order. In payment mode each
// line is sent at its amount after the discount (and an inclusive line with
// its tax), with the exclusive tax as a line of its own, so Stripe charges
// exactly the order's total. A subscription sends the recurring price, the
// promo code as a Stripe coupon with its duration, and the tax as a Stripe
// tax rate, so that renewals carry them too.
func (p *Plugin) sessionParams(ctx context.Context, req *sdk.Request, cfg Config, o *Order) (*stripe.CheckoutSessionCreateParams, error) {
	minutes := time.Duration(cfg.CheckoutExpiryMinutes) * time.Minute
	expires := p.now().Add(min(max(minutes, 31*time.Minute), 23*time.Hour+59*time.Minute))
	meta := map[string]string{"order_id": o.ID, "tenant_id": req.Tenant(), "user_id": o.UserID}
	params := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(o.Mode),
		SuccessURL:        stripe.String(cfg.SuccessURL),
		CancelURL:         stripe.String(cfg.CancelURL),
		ClientReferenceID: stripe.String(o.ID),
		ExpiresAt:         stripe.Int64(expires.Unix()),
		Metadata:          meta,
	}
	label := func(it OrderItem) string {
		if it.Quantity > 1 {
			return fmt.Sprintf("%s × %d", it.ProductName, it.Quantity)
		}
		return it.ProductName
	}
	if o.Mode == "payment" {
		params.PaymentIntentData = &stripe.CheckoutSessionCreatePaymentIntentDataParams{Metadata: meta}
		var exclusiveTax int64
		for _, it := range o.Items {
			amount := it.AmountSubtotal - it.AmountDiscount
			if it.AmountTotal == amount { // inclusive (or no tax)
				amount = it.AmountTotal
			} else {
				exclusiveTax += it.AmountTax
			}
			if amount == 0 {
				continue
			}
			params.LineItems = append(params.LineItems, &stripe.CheckoutSessionCreateLineItemParams{
				Quantity: stripe.Int64(1),
				PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
					Currency: stripe.String(o.Currency), UnitAmount: stripe.Int64(amount),
					ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripe.String(label(it))},
				},
			})
		}
		if exclusiveTax > 0 {
			params.LineItems = append(params.LineItems, &stripe.CheckoutSessionCreateLineItemParams{
				Quantity: stripe.Int64(1),
				PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
					Currency: stripe.String(o.Currency), UnitAmount: stripe.Int64(exclusiveTax),
					ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripe.String(taxLabel(o.Tax))},
				},
			})
		}
		return params, nil
	}
	it := o.Items[0]
	var trial int
	if err := req.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(trial_days, 0) FROM prices WHERE id = $1`, it.PriceID).Scan(&trial)
	}); err != nil {
		return nil, err
	}
	line := &stripe.CheckoutSessionCreateLineItemParams{
		Quantity: stripe.Int64(int64(it.Quantity)),
		PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
			Currency: stripe.String(o.Currency), UnitAmount: stripe.Int64(it.UnitAmount),
			ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{Name: stripe.String(it.ProductName)},
			Recurring: &stripe.CheckoutSessionCreateLineItemPriceDataRecurringParams{
				Interval: stripe.String(it.RecurringInterval), IntervalCount: stripe.Int64(int64(it.RecurringIntervalCount)),
			},
		},
	}
	inclusive := it.AmountTotal == it.AmountSubtotal-it.AmountDiscount
	if o.Tax.RateBPS > 0 {
		id, err := p.stripe.taxRate(ctx, cfg.StripeSecretKey, o.Tax.Country, o.Tax.RateBPS, inclusive,
			fmt.Sprintf("edulure-taxrate-%s-%s-%d-%t", req.Tenant(), o.Tax.Country, o.Tax.RateBPS, inclusive))
		if err != nil {
			return nil, err
		}
		line.TaxRates = []*string{stripe.String(id)}
	}
	params.LineItems = []*stripe.CheckoutSessionCreateLineItemParams{line}
	params.SubscriptionData = &stripe.CheckoutSessionCreateSubscriptionDataParams{Metadata: meta}
	if trial > 0 {
		params.SubscriptionData.TrialPeriodDays = stripe.Int64(int64(trial))
	}
	if o.AmountDiscount > 0 {
		var duration string
		var periods int
		if err := req.Tx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT c.duration, coalesce(c.duration_periods, 0) FROM promo_codes c WHERE c.id = (SELECT promo_code_id FROM orders WHERE id = $1)`, o.ID).Scan(&duration, &periods)
		}); err != nil {
			return nil, err
		}
		cp := &stripe.CouponCreateParams{
			AmountOff: stripe.Int64(o.AmountDiscount), Currency: stripe.String(o.Currency), Duration: stripe.String(duration),
			Name: stripe.String(*o.PromoCode), Metadata: map[string]string{"order_id": o.ID},
		}
		if duration == "repeating" {
			months := periods * it.RecurringIntervalCount
			if it.RecurringInterval == "year" {
				months *= 12
			}
			cp.DurationInMonths = stripe.Int64(int64(months))
		}
		id, err := p.stripe.coupon(ctx, cfg.StripeSecretKey, cp, fmt.Sprintf("edulure-coupon-%s", o.ID))
		if err != nil {
			return nil, err
		}
		params.Discounts = []*stripe.CheckoutSessionCreateDiscountParams{{Coupon: stripe.String(id)}}
	}
	return params, nil
}

func taxLabel(t TaxSnapshot) string {
	pct := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%d.%02d", t.RateBPS/100, t.RateBPS%100), "0"), ".") + "%"
	if t.Country != "" {
		return fmt.Sprintf("Tax (%s %s)", t.Country, pct)
	}
	return "Tax (" + pct + ")"
}
