package commerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Order statuses. pending → paid | expired | failed; paid →
// partially_refunded → refunded. Only a verified Stripe event (or the
// reconciliation job's look at Stripe) pays an order.
const (
	orderPending           = "pending"
	orderPaid              = "paid"
	orderExpired           = "expired"
	orderFailed            = "failed"
	orderPartiallyRefunded = "partially_refunded"
	orderRefunded          = "refunded"
)

// Order is an order as the API shows it.
type Order struct {
	ID                    string      `json:"id" format:"uuid"`
	UserID                string      `json:"user_id" format:"uuid" doc:"The buyer."`
	Status                string      `json:"status" enum:"pending,paid,expired,failed,partially_refunded,refunded"`
	Mode                  string      `json:"mode" enum:"payment,subscription"`
	Currency              string      `json:"currency"`
	AmountSubtotal        int64       `json:"amount_subtotal" doc:"Minor units (cents), before discount and tax."`
	AmountDiscount        int64       `json:"amount_discount"`
	AmountTax             int64       `json:"amount_tax" doc:"Tax added (exclusive prices) or included (inclusive prices)."`
	AmountTotal           int64       `json:"amount_total" doc:"What the buyer pays."`
	AmountRefunded        int64       `json:"amount_refunded"`
	PromoCode             *string     `json:"promo_code,omitempty"`
	Tax                   TaxSnapshot `json:"tax"`
	Items                 []OrderItem `json:"items"`
	CheckoutURL           *string     `json:"checkout_url,omitempty" doc:"Stripe's hosted checkout, while the order is pending."`
	SessionExpiresAt      *time.Time  `json:"session_expires_at,omitempty"`
	StripeSessionID       *string     `json:"stripe_session_id,omitempty"`
	StripePaymentIntentID *string     `json:"stripe_payment_intent_id,omitempty"`
	StripeSubscriptionID  *string     `json:"stripe_subscription_id,omitempty"`
	StatusReason          string      `json:"status_reason,omitempty"`
	CreatedAt             time.Time   `json:"created_at"`
	UpdatedAt             time.Time   `json:"updated_at"`
	PaidAt                *time.Time  `json:"paid_at,omitempty"`
	ClosedAt              *time.Time  `json:"closed_at,omitempty" doc:"When it expired or failed."`
	RefundedAt            *time.Time  `json:"refunded_at,omitempty"`
}

// OrderItem is a line of an order, as the catalogue was when it was made.
type OrderItem struct {
	ProductID              string        `json:"product_id" format:"uuid"`
	PriceID                string        `json:"price_id" format:"uuid"`
	ProductName            string        `json:"product_name"`
	Quantity               int           `json:"quantity"`
	UnitAmount             int64         `json:"unit_amount"`
	AmountSubtotal         int64         `json:"amount_subtotal"`
	AmountDiscount         int64         `json:"amount_discount"`
	AmountTax              int64         `json:"amount_tax"`
	AmountTotal            int64         `json:"amount_total"`
	RecurringInterval      string        `json:"recurring_interval,omitempty"`
	RecurringIntervalCount int           `json:"recurring_interval_count,omitempty"`
	Entitlements           []Entitlement `json:"entitlements"`
}

// TaxSnapshot is the tax calculation of an order, kept as it was at
// checkout.
type TaxSnapshot struct {
	Calculator string `json:"calculator"`
	Country    string `json:"country,omitempty"`
	RateBPS    int    `json:"rate_bps"`
}

// ListOrdersQuery filters GET /api/v1/orders.
type ListOrdersQuery struct {
	Scope         string     `query:"scope" enum:"own,all" doc:"own (the default): the caller's orders; all: the institution's (commerce.order.manage)."`
	Status        string     `query:"status" enum:"pending,paid,expired,failed,partially_refunded,refunded"`
	UserID        string     `query:"user_id" format:"uuid" doc:"One buyer's orders (commerce.order.manage)."`
	ProductID     string     `query:"product_id" format:"uuid" doc:"Orders with an item of this product."`
	CreatedAfter  *time.Time `query:"created_after"`
	CreatedBefore *time.Time `query:"created_before"`
}

func (p *Plugin) orderRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "GET", Path: "/api/v1/orders", Permission: PermOrderSelf,
			Summary:  "Orders, newest first: one's own; with commerce.order.manage the institution's (scope=all, user_id, status, product_id, created_after, created_before).",
			Response: sdk.Page[Order]{}, Query: ListOrdersQuery{}, Paginated: true,
			Handler: p.listOrders,
		},
		{
			Method: "GET", Path: "/api/v1/orders/{order_id}", Permission: PermOrderSelf,
			Summary: "An order: one's own, or any with commerce.order.manage.", Response: Order{},
			Handler: p.getOrder,
		},
	}
}

const orderColumns = `o.id, o.user_id, o.status, o.mode, o.currency, o.amount_subtotal, o.amount_discount, o.amount_tax, o.amount_total,
	o.amount_refunded, o.promo_code, o.tax, o.checkout_url, o.session_expires_at, o.stripe_session_id, o.stripe_payment_intent_id,
	o.stripe_subscription_id, o.status_reason, o.created_at, o.updated_at, o.paid_at, o.closed_at, o.refunded_at`

func scanOrder(row pgx.Row) (*Order, error) {
	var o Order
	var tax []byte
	err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.Mode, &o.Currency, &o.AmountSubtotal, &o.AmountDiscount, &o.AmountTax, &o.AmountTotal,
		&o.AmountRefunded, &o.PromoCode, &tax, &o.CheckoutURL, &o.SessionExpiresAt, &o.StripeSessionID, &o.StripePaymentIntentID,
		&o.StripeSubscriptionID, &o.StatusReason, &o.CreatedAt, &o.UpdatedAt, &o.PaidAt, &o.ClosedAt, &o.RefundedAt)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(tax, &o.Tax); err != nil {
		return nil, fmt.Errorf("order %s: tax snapshot: %w", o.ID, err)
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	for _, t := range []*time.Time{o.SessionExpiresAt, o.PaidAt, o.ClosedAt, o.RefundedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	if o.Status != orderPending {
		o.CheckoutURL = nil
	}
	o.Items = []OrderItem{}
	return &o, nil
}

// loadOrder reads an order of the institution with its items; lock takes
// the row for the rest of the transaction. None is a 404.
func loadOrder(ctx context.Context, tx pgx.Tx, id string, lock bool) (*Order, error) {
	q := `SELECT ` + orderColumns + ` FROM orders o WHERE o.id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	o, err := scanOrder(tx.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no order %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading order %s: %w", id, err)
	}
	if err := loadItems(ctx, tx, []*Order{o}); err != nil {
		return nil, err
	}
	return o, nil
}

// loadItems fills the orders' items, in one query.
func loadItems(ctx context.Context, tx pgx.Tx, orders []*Order) error {
	if len(orders) == 0 {
		return nil
	}
	byID := map[string]*Order{}
	ids := make([]string, len(orders))
	for i, o := range orders {
		byID[o.ID], ids[i] = o, o.ID
	}
	rows, err := tx.Query(ctx, `
		SELECT order_id, product_id, price_id, product_name, quantity, unit_amount, amount_subtotal, amount_discount, amount_tax, amount_total,
		       coalesce(recurring_interval, ''), coalesce(recurring_interval_count, 0), entitlements
		FROM order_items WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, position`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var it OrderItem
		var ents []byte
		if err := rows.Scan(&id, &it.ProductID, &it.PriceID, &it.ProductName, &it.Quantity, &it.UnitAmount, &it.AmountSubtotal, &it.AmountDiscount,
			&it.AmountTax, &it.AmountTotal, &it.RecurringInterval, &it.RecurringIntervalCount, &ents); err != nil {
			return err
		}
		if err := json.Unmarshal(ents, &it.Entitlements); err != nil {
			return fmt.Errorf("order %s: entitlements: %w", id, err)
		}
		if it.Entitlements == nil {
			it.Entitlements = []Entitlement{}
		}
		byID[id].Items = append(byID[id].Items, it)
	}
	return rows.Err()
}

// visibleOrder: one's own, or any with commerce.order.manage; someone
// else's is a 404, as if it did not exist.
func visibleOrder(pr sdk.Principal, o *Order) error {
	if (pr.IsUser() && o.UserID == pr.UserID) || pr.Can(PermOrderManage) {
		return nil
	}
	return sdk.Errorf(sdk.ErrNotFound, "no order %s", o.ID)
}

func (p *Plugin) getOrder(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("order_id")
	if err != nil {
		return nil, err
	}
	var out *Order
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		o, err := loadOrder(ctx, tx, id, false)
		if err != nil {
			return err
		}
		if err := visibleOrder(req.Principal, o); err != nil {
			return err
		}
		out = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) listOrders(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListOrdersQuery](req)
	if err != nil {
		return nil, err
	}
	me := req.Principal
	manage := me.Can(PermOrderManage)
	userID := strings.ToLower(q.UserID)
	if (q.Scope == "all" || (userID != "" && userID != me.UserID)) && !manage {
		return nil, sdk.Errorf(sdk.ErrForbidden, "reading others' orders needs the permission %s", PermOrderManage)
	}
	if q.Scope != "all" && userID == "" {
		if !me.IsUser() {
			return nil, sdk.Invalid(sdk.FieldError{Field: "scope", Message: "must be all for an API key, which has no orders of its own"})
		}
		userID = me.UserID
	}
	where, args := []string{"o.tenant_id = $1"}, []any{me.TenantID}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if userID != "" {
		where = append(where, "o.user_id = "+arg(userID))
	}
	if q.Status != "" {
		where = append(where, "o.status = "+arg(q.Status))
	}
	if q.ProductID != "" {
		where = append(where, "EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.product_id = "+arg(strings.ToLower(q.ProductID))+")")
	}
	if q.CreatedAfter != nil {
		where = append(where, "o.created_at >= "+arg(*q.CreatedAfter))
	}
	if q.CreatedBefore != nil {
		where = append(where, "o.created_at < "+arg(*q.CreatedBefore))
	}
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where = append(where, fmt.Sprintf("(o.created_at, o.id) < (%s, %s::uuid)", arg(at), arg(id)))
	}
	sql := `SELECT ` + orderColumns + ` FROM orders o WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY o.created_at DESC, o.id DESC LIMIT %d`, page.Limit+1)
	var items []Order
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Order, error) { return scanOrder(r) })
		if err != nil {
			return err
		}
		if err := loadItems(ctx, tx, list); err != nil {
			return err
		}
		for _, o := range list {
			items = append(items, *o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(o Order) []string { return sdk.TimeKey(o.CreatedAt, o.ID) }))
}

// paidItems are the items of the order's paid and refunded events: one per
// course an item grants, and one without a course for an item that grants
// none.
func (o *Order) paidItems() []OrderPaidItem {
	out := []OrderPaidItem{}
	for _, it := range o.Items {
		if len(it.Entitlements) == 0 {
			out = append(out, OrderPaidItem{ProductID: it.ProductID, PriceID: it.PriceID, Quantity: it.Quantity})
		}
		for _, e := range it.Entitlements {
			out = append(out, OrderPaidItem{ProductID: it.ProductID, PriceID: it.PriceID, CourseID: e.CourseID, CohortID: e.CohortID, Quantity: it.Quantity})
		}
	}
	return out
}

// markPaid moves an order to paid, in tx, once: the promo code's
// reservation becomes a redemption, commerce.order.paid.v1 is published,
// and a refund Stripe reported before the payment (events arrive in any
// order) is applied. An order paid already changes nothing: a duplicate
// or late event never pays twice. A payment Stripe reports for an order
// that expired or failed (the checkout closed, yet the money was taken)
// pays it too, with an anomaly.
func (p *Plugin) markPaid(ctx context.Context, tx pgx.Tx, s sdk.Scope, o *Order, via string, out *outcome) error {
	switch o.Status {
	case orderPaid, orderPartiallyRefunded, orderRefunded:
		out.note("order %s was paid already", o.ID)
		return nil
	case orderExpired, orderFailed:
		if err := p.anomaly(ctx, tx, s, anomalyInput{Kind: "paid_after_close", ObjectType: "order", ObjectID: o.ID, Repaired: true,
			Detail: fmt.Sprintf("Stripe reports a payment for order %s, which was %s: it is paid now", o.ID, o.Status)}); err != nil {
			return err
		}
	}
	now := p.now()
	if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'paid', paid_at = $2, updated_at = $2, status_reason = $3 WHERE id = $1`, o.ID, now, "paid ("+via+")"); err != nil {
		return fmt.Errorf("paying order %s: %w", o.ID, err)
	}
	if err := redeemPromo(ctx, tx, o.ID); err != nil {
		return err
	}
	out.change("order", o.ID, o.Status, orderPaid)
	out.user(o.UserID)
	prev := o.Status
	o.Status, o.PaidAt = orderPaid, &now
	err := s.Publish(ctx, tx, EventOrderPaid, OrderPaid{OrderID: o.ID, UserID: o.UserID, Currency: o.Currency, AmountTotal: o.AmountTotal, Items: o.paidItems()})
	if err != nil {
		return err
	}
	_ = prev
	if o.AmountRefunded > 0 {
		refunded := o.AmountRefunded
		o.AmountRefunded = 0
		return p.applyRefunded(ctx, tx, s, o, refunded, out)
	}
	return nil
}

// closeOrder ends a pending order that will not be paid (expired at
// Stripe, or failed) and releases its promo code reservation. Any other
// status is left as it is.
func closeOrder(ctx context.Context, tx pgx.Tx, o *Order, status, reason string, now time.Time, out *outcome) error {
	if o.Status != orderPending {
		out.note("order %s is %s: not %s", o.ID, o.Status, status)
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE orders SET status = $2, closed_at = $3, updated_at = $3, status_reason = $4 WHERE id = $1`, o.ID, status, now, reason); err != nil {
		return fmt.Errorf("closing order %s: %w", o.ID, err)
	}
	if err := releasePromo(ctx, tx, o.ID, out); err != nil {
		return err
	}
	out.change("order", o.ID, o.Status, status)
	out.user(o.UserID)
	o.Status = status
	return nil
}

// applyRefunded records that refunded (Stripe's total for the order's
// payment, which only grows) has been refunded. It is idempotent and
// order-independent: a total no larger than the one recorded changes
// nothing, so no refund is counted twice. A paid order becomes
// partially_refunded or refunded, publishing the event of the new state; a
// refund reported before the payment is kept until the order is paid.
func (p *Plugin) applyRefunded(ctx context.Context, tx pgx.Tx, s sdk.Scope, o *Order, refunded int64, out *outcome) error {
	if refunded <= o.AmountRefunded {
		out.note("order %s: refunds of %d recorded already", o.ID, o.AmountRefunded)
		return nil
	}
	refunded = min(refunded, o.AmountTotal)
	status := o.Status
	now := p.now()
	switch o.Status {
	case orderPaid, orderPartiallyRefunded:
		status = orderPartiallyRefunded
		if refunded >= o.AmountTotal {
			status = orderRefunded
		}
	}
	_, err := tx.Exec(ctx, `UPDATE orders SET amount_refunded = $2, status = $3, updated_at = $4,
		refunded_at = CASE WHEN $3 = 'refunded' THEN $4 ELSE refunded_at END WHERE id = $1`, o.ID, refunded, status, now)
	if err != nil {
		return fmt.Errorf("recording the refund of order %s: %w", o.ID, err)
	}
	out.change("order", o.ID, o.Status, status)
	out.user(o.UserID)
	from := o.Status
	o.AmountRefunded, o.Status = refunded, status
	if status == from && status != orderPartiallyRefunded {
		return nil // not paid yet: applied when it is
	}
	data := OrderRefunded{OrderID: o.ID, UserID: o.UserID, Currency: o.Currency, AmountTotal: o.AmountTotal, AmountRefunded: refunded, Items: o.paidItems()}
	typ := EventOrderPartiallyRefunded
	if status == orderRefunded {
		typ = EventOrderRefunded
	}
	return s.Publish(ctx, tx, typ, data)
}
