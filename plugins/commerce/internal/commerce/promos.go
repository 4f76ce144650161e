package commerce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk"
)

// PromoCode is a promo code as the API shows it.
type PromoCode struct {
	ID               string     `json:"id" format:"uuid"`
	Code             string     `json:"code"`
	PercentOff       *int       `json:"percent_off,omitempty"`
	AmountOff        *int64     `json:"amount_off,omitempty"`
	Currency         *string    `json:"currency,omitempty"`
	Duration         string     `json:"duration" enum:"once,repeating,forever"`
	DurationPeriods  *int       `json:"duration_periods,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	MaxRedemptions   *int       `json:"max_redemptions,omitempty"`
	PerCustomerLimit *int       `json:"per_customer_limit,omitempty"`
	ProductIDs       []string   `json:"product_ids" doc:"The products it applies to; empty: any."`
	Redeemed         int        `json:"redeemed" doc:"Paid orders that used it."`
	Reserved         int        `json:"reserved" doc:"Checkouts in progress holding a redemption."`
	Active           bool       `json:"active"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// CreatePromoCode is the body of POST /api/v1/promo-codes.
type CreatePromoCode struct {
	Code             string     `json:"code" pattern:"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$" doc:"What buyers type; stored in capitals, matched in any case."`
	PercentOff       *int       `json:"percent_off,omitempty" minimum:"1" maximum:"100" doc:"Percent off; or amount_off."`
	AmountOff        *int64     `json:"amount_off,omitempty" minimum:"1" maximum:"99999999" doc:"Minor units off, with currency; or percent_off."`
	Currency         string     `json:"currency,omitempty" pattern:"^[a-z]{3}$" doc:"The currency of amount_off."`
	Duration         string     `json:"duration,omitempty" enum:"once,repeating,forever" doc:"For subscriptions: the first payment (once, the default), duration_periods billing periods, or forever."`
	DurationPeriods  int        `json:"duration_periods,omitempty" minimum:"1" maximum:"36"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty" doc:"No checkout may use it from then on."`
	MaxRedemptions   int        `json:"max_redemptions,omitempty" minimum:"1" maximum:"1000000" doc:"Redemptions in all (checkouts in progress hold one); absent: no limit."`
	PerCustomerLimit int        `json:"per_customer_limit,omitempty" minimum:"1" maximum:"1000" doc:"Redemptions per buyer; absent: no limit."`
	ProductIDs       []string   `json:"product_ids,omitempty" format:"uuid" maxItems:"50" doc:"Restrict it to these products."`
}

// PatchPromoCode is the body of PATCH /api/v1/promo-codes/{promo_code_id}.
type PatchPromoCode struct {
	Active         sdk.Optional[bool]      `json:"active" doc:"false: no new checkout may use it."`
	ExpiresAt      sdk.Optional[time.Time] `json:"expires_at" doc:"null: never."`
	MaxRedemptions sdk.Optional[int]       `json:"max_redemptions" minimum:"1" maximum:"1000000" doc:"null: no limit; not below the redemptions taken and held."`
}

func (p *Plugin) promoRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/promo-codes", Permission: PermPromoManage,
			Summary: "Create a promo code: percent or amount off, once, for N billing periods or forever, with an expiry, limits and products.",
			Request: CreatePromoCode{}, Response: PromoCode{}, Status: http.StatusCreated, Handler: p.createPromo,
		},
		{
			Method: "GET", Path: "/api/v1/promo-codes", Permission: PermPromoManage,
			Summary: "Promo codes, newest first, with their redemptions.", Response: sdk.Page[PromoCode]{}, Paginated: true, Handler: p.listPromos,
		},
		{
			Method: "GET", Path: "/api/v1/promo-codes/{promo_code_id}", Permission: PermPromoManage,
			Summary: "A promo code.", Response: PromoCode{}, Handler: p.getPromo,
		},
		{
			Method: "PATCH", Path: "/api/v1/promo-codes/{promo_code_id}", Permission: PermPromoManage,
			Summary: "Turn a promo code off or on, change its expiry or its limit.", Request: PatchPromoCode{}, Response: PromoCode{}, Handler: p.patchPromo,
		},
	}
}

const promoColumns = `id, code, percent_off, amount_off, currency, duration, duration_periods, expires_at, max_redemptions, per_customer_limit,
	product_ids::text[], redeemed, reserved, active, created_at, updated_at`

func scanPromo(row pgx.Row) (*PromoCode, error) {
	var c PromoCode
	err := row.Scan(&c.ID, &c.Code, &c.PercentOff, &c.AmountOff, &c.Currency, &c.Duration, &c.DurationPeriods, &c.ExpiresAt, &c.MaxRedemptions,
		&c.PerCustomerLimit, &c.ProductIDs, &c.Redeemed, &c.Reserved, &c.Active, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if c.ProductIDs == nil {
		c.ProductIDs = []string{}
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	if c.ExpiresAt != nil {
		*c.ExpiresAt = c.ExpiresAt.UTC()
	}
	return &c, nil
}

func loadPromo(ctx context.Context, tx pgx.Tx, id string) (*PromoCode, error) {
	c, err := scanPromo(tx.QueryRow(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no promo code %s", id)
	}
	return c, err
}

func (p *Plugin) createPromo(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in CreatePromoCode
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	if (in.PercentOff == nil) == (in.AmountOff == nil) {
		bad = append(bad, sdk.FieldError{Field: "percent_off", Message: "give percent_off or amount_off, not both"})
	}
	if in.AmountOff != nil && in.Currency == "" {
		bad = append(bad, sdk.FieldError{Field: "currency", Message: "is required with amount_off"})
	}
	if in.AmountOff == nil && in.Currency != "" {
		bad = append(bad, sdk.FieldError{Field: "currency", Message: "goes with amount_off only"})
	}
	if in.Duration == "" {
		in.Duration = "once"
	}
	if (in.Duration == "repeating") != (in.DurationPeriods > 0) {
		bad = append(bad, sdk.FieldError{Field: "duration_periods", Message: "is required with duration repeating, and only with it"})
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(p.now()) {
		bad = append(bad, sdk.FieldError{Field: "expires_at", Message: "must be in the future"})
	}
	ids := make([]string, 0, len(in.ProductIDs))
	for i, id := range in.ProductIDs {
		id = strings.ToLower(id)
		if slices.Contains(ids, id) {
			bad = append(bad, sdk.FieldError{Field: fmt.Sprintf("product_ids.%d", i), Message: "is given twice"})
		}
		ids = append(ids, id)
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	code := strings.ToUpper(in.Code)
	var out *PromoCode
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM products WHERE id = ANY($1::uuid[])`, ids).Scan(&n); err != nil {
			return err
		}
		if n != len(ids) {
			return sdk.Invalid(sdk.FieldError{Field: "product_ids", Message: "names a product the institution does not have"})
		}
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO promo_codes (code, percent_off, amount_off, currency, duration, duration_periods, expires_at, max_redemptions, per_customer_limit, product_ids, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::uuid[], $11)
			ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id`,
			code, in.PercentOff, in.AmountOff, nullIfEmpty(in.Currency), in.Duration, zeroNull(in.DurationPeriods), in.ExpiresAt,
			zeroNull(in.MaxRedemptions), zeroNull(in.PerCustomerLimit), ids, req.Principal.ID()).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrConflict, "the institution has a promo code %s already", code).WithCode("promo_code_taken")
		}
		if err != nil {
			return err
		}
		out, err = loadPromo(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

func (p *Plugin) listPromos(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	where, args := "true", []any{}
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where, args = "(created_at, id) < ($1, $2::uuid)", []any{at, id}
	}
	var items []PromoCode
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE `+where+fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, page.Limit+1), args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PromoCode, error) {
			c, err := scanPromo(r)
			if err != nil {
				return PromoCode{}, err
			}
			return *c, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(c PromoCode) []string { return sdk.TimeKey(c.CreatedAt, c.ID) }))
}

func (p *Plugin) getPromo(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("promo_code_id")
	if err != nil {
		return nil, err
	}
	var out *PromoCode
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		out, err = loadPromo(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) patchPromo(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("promo_code_id")
	if err != nil {
		return nil, err
	}
	var in PatchPromoCode
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	active, activeSet, err := in.Active.NotNull("active")
	if err != nil {
		return nil, err
	}
	if !activeSet && !in.ExpiresAt.Set() && !in.MaxRedemptions.Set() {
		return nil, sdk.Invalid(sdk.FieldError{Field: "active", Message: "give active, expires_at or max_redemptions: the request changes nothing"})
	}
	var out *PromoCode
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM promo_codes WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		c, err := loadPromo(ctx, tx, id)
		if err != nil {
			return err
		}
		if activeSet {
			c.Active = active
		}
		if in.ExpiresAt.Set() {
			c.ExpiresAt = in.ExpiresAt.Ptr()
		}
		if in.MaxRedemptions.Set() {
			c.MaxRedemptions = in.MaxRedemptions.Ptr()
			if m := c.MaxRedemptions; m != nil && *m < c.Redeemed+c.Reserved {
				return sdk.Errorf(sdk.ErrConflict, "promo code %s has %d redemptions taken or held: the limit cannot go below that", c.Code, c.Redeemed+c.Reserved).WithCode("below_redemptions")
			}
		}
		_, err = tx.Exec(ctx, `UPDATE promo_codes SET active = $2, expires_at = $3, max_redemptions = $4, updated_at = now() WHERE id = $1`,
			id, c.Active, c.ExpiresAt, c.MaxRedemptions)
		if err != nil {
			return err
		}
		out, err = loadPromo(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// reservePromo takes a redemption of the promo code for a checkout, in tx:
// it locks the code's row, so concurrent checkouts take its redemptions one
// at a time, and checks what the code allows (active, not expired, the
// products, the currency, the limits; the checkout's lines are lines). The
// caller records the reservation (promo_redemptions) with the order. With
// N redemptions left, N checkouts get one and the others a 409
// promo_code_exhausted; the table's CHECK holds the limit even so.
func reservePromo(ctx context.Context, tx pgx.Tx, code, userID string, lines []*checkoutLine, currency string, now time.Time) (*PromoCode, error) {
	invalid := func(msg, codeName string) error {
		return sdk.Invalid(sdk.FieldError{Field: "promo_code", Message: msg}).WithCode(codeName)
	}
	c, err := scanPromo(tx.QueryRow(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE code = $1 FOR UPDATE`, strings.ToUpper(code)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, invalid("is not a promo code of the institution", "promo_code_invalid")
	}
	if err != nil {
		return nil, err
	}
	switch {
	case !c.Active:
		return nil, invalid("is not active", "promo_code_invalid")
	case c.ExpiresAt != nil && !c.ExpiresAt.After(now):
		return nil, invalid("has expired", "promo_code_expired")
	case c.Currency != nil && *c.Currency != currency:
		return nil, invalid(fmt.Sprintf("takes an amount off in %s; the checkout is in %s", *c.Currency, currency), "promo_code_not_applicable")
	}
	eligible := false
	for _, l := range lines {
		l.promo = len(c.ProductIDs) == 0 || slices.Contains(c.ProductIDs, l.productID)
		eligible = eligible || l.promo
	}
	if !eligible {
		return nil, invalid("does not apply to these products", "promo_code_not_applicable")
	}
	if c.MaxRedemptions != nil && c.Redeemed+c.Reserved >= *c.MaxRedemptions {
		return nil, sdk.Errorf(sdk.ErrConflict, "promo code %s has no redemptions left", c.Code).WithCode("promo_code_exhausted")
	}
	if c.PerCustomerLimit != nil {
		var used int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM promo_redemptions WHERE promo_code_id = $1 AND user_id = $2 AND status <> 'released'`, c.ID, userID).Scan(&used)
		if err != nil {
			return nil, err
		}
		if used >= *c.PerCustomerLimit {
			return nil, sdk.Errorf(sdk.ErrConflict, "promo code %s can be used %d time(s) per buyer", c.Code, *c.PerCustomerLimit).WithCode("promo_code_limit_reached")
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE promo_codes SET reserved = reserved + 1, updated_at = now() WHERE id = $1`, c.ID); err != nil {
		return nil, fmt.Errorf("reserving promo code %s: %w", c.Code, err)
	}
	return c, nil
}

// redeemPromo turns an order's reservation into a redemption (the order
// was paid). A reservation released already (the order closed, then Stripe
// reported a payment) is redeemed again when the code has room.
func redeemPromo(ctx context.Context, tx pgx.Tx, orderID string) error {
	var promoID, status string
	err := tx.QueryRow(ctx, `SELECT promo_code_id, status FROM promo_redemptions WHERE order_id = $1 FOR UPDATE`, orderID).Scan(&promoID, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	switch status {
	case "reserved":
		_, err = tx.Exec(ctx, `UPDATE promo_codes SET reserved = reserved - 1, redeemed = redeemed + 1, updated_at = now() WHERE id = $1`, promoID)
	case "released":
		var tag pgconn.CommandTag
		tag, err = tx.Exec(ctx, `UPDATE promo_codes SET redeemed = redeemed + 1, updated_at = now()
			WHERE id = $1 AND (max_redemptions IS NULL OR redeemed + reserved < max_redemptions)`, promoID)
		if err == nil && tag.RowsAffected() == 0 {
			return nil // no room: the order is paid all the same (its anomaly says so)
		}
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("redeeming the promo code of order %s: %w", orderID, err)
	}
	_, err = tx.Exec(ctx, `UPDATE promo_redemptions SET status = 'redeemed', updated_at = now() WHERE order_id = $1`, orderID)
	return err
}

// releasePromo gives back an order's reservation (its checkout expired or
// failed).
func releasePromo(ctx context.Context, tx pgx.Tx, orderID string, out *outcome) error {
	var promoID string
	err := tx.QueryRow(ctx, `UPDATE promo_redemptions SET status = 'released', updated_at = now() WHERE order_id = $1 AND status = 'reserved' RETURNING promo_code_id`, orderID).Scan(&promoID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE promo_codes SET reserved = reserved - 1, updated_at = now() WHERE id = $1`, promoID); err != nil {
		return fmt.Errorf("releasing the promo code of order %s: %w", orderID, err)
	}
	out.change("promo_code", promoID, "reserved", "released")
	return nil
}

func zeroNull(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}
