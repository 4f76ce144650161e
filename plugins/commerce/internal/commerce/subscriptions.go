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

// Subscription is a subscription's state as the plugin knows it from
// Stripe.
type Subscription struct {
	ID                   string     `json:"id" format:"uuid"`
	StripeSubscriptionID string     `json:"stripe_subscription_id"`
	UserID               *string    `json:"user_id,omitempty" format:"uuid"`
	OrderID              *string    `json:"order_id,omitempty" format:"uuid"`
	ProductID            *string    `json:"product_id,omitempty" format:"uuid"`
	Status               string     `json:"status" enum:"incomplete,incomplete_expired,trialing,active,past_due,canceled,unpaid,paused"`
	CurrentPeriodStart   *time.Time `json:"current_period_start,omitempty"`
	CurrentPeriodEnd     *time.Time `json:"current_period_end,omitempty"`
	CancelAtPeriodEnd    bool       `json:"cancel_at_period_end"`
	CanceledAt           *time.Time `json:"canceled_at,omitempty"`
	EndedAt              *time.Time `json:"ended_at,omitempty"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

// ListSubscriptionsQuery filters GET /api/v1/subscriptions.
type ListSubscriptionsQuery struct {
	Scope  string `query:"scope" enum:"own,all" doc:"own (the default), or the institution's (commerce.order.manage)."`
	Status string `query:"status" enum:"incomplete,incomplete_expired,trialing,active,past_due,canceled,unpaid,paused"`
}

func (p *Plugin) subscriptionRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "GET", Path: "/api/v1/subscriptions", Permission: PermOrderSelf,
			Summary:  "Subscriptions, newest first: one's own, or the institution's (scope=all, commerce.order.manage).",
			Response: sdk.Page[Subscription]{}, Query: ListSubscriptionsQuery{}, Paginated: true, Handler: p.listSubscriptions,
		},
		{
			Method: "GET", Path: "/api/v1/subscriptions/{subscription_id}", Permission: PermOrderSelf,
			Summary: "A subscription: one's own, or any with commerce.order.manage.", Response: Subscription{}, Handler: p.getSubscription,
		},
		{
			Method: "POST", Path: "/api/v1/subscriptions/{subscription_id}/cancel", Permission: PermOrderSelf,
			Summary:  "Cancel a subscription at the end of its current period (one's own, or any with commerce.order.manage): it stays active until then.",
			Response: Subscription{}, Handler: p.cancelSubscription,
		},
	}
}

const subscriptionColumns = `id, stripe_subscription_id, user_id, order_id, product_id, status, current_period_start, current_period_end,
	cancel_at_period_end, canceled_at, ended_at, created_at, updated_at`

func scanSubscription(row pgx.Row) (*Subscription, error) {
	var s Subscription
	err := row.Scan(&s.ID, &s.StripeSubscriptionID, &s.UserID, &s.OrderID, &s.ProductID, &s.Status, &s.CurrentPeriodStart, &s.CurrentPeriodEnd,
		&s.CancelAtPeriodEnd, &s.CanceledAt, &s.EndedAt, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	for _, t := range []*time.Time{s.CurrentPeriodStart, s.CurrentPeriodEnd, s.CanceledAt, s.EndedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return &s, nil
}

func visibleSubscription(pr sdk.Principal, s *Subscription) error {
	if (pr.IsUser() && s.UserID != nil && *s.UserID == pr.UserID) || pr.Can(PermOrderManage) {
		return nil
	}
	return sdk.Errorf(sdk.ErrNotFound, "no subscription %s", s.ID)
}

func loadSubscription(ctx context.Context, tx pgx.Tx, id string) (*Subscription, error) {
	s, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no subscription %s", id)
	}
	return s, err
}

func (p *Plugin) getSubscription(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("subscription_id")
	if err != nil {
		return nil, err
	}
	var out *Subscription
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if out, err = loadSubscription(ctx, tx, id); err != nil {
			return err
		}
		return visibleSubscription(req.Principal, out)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) listSubscriptions(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListSubscriptionsQuery](req)
	if err != nil {
		return nil, err
	}
	me := req.Principal
	where, args := []string{"true"}, []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if q.Scope == "all" {
		if !me.Can(PermOrderManage) {
			return nil, sdk.Errorf(sdk.ErrForbidden, "reading others' subscriptions needs the permission %s", PermOrderManage)
		}
	} else {
		if !me.IsUser() {
			return nil, sdk.Invalid(sdk.FieldError{Field: "scope", Message: "must be all for an API key"})
		}
		where = append(where, "user_id = "+arg(me.UserID))
	}
	if q.Status != "" {
		where = append(where, "status = "+arg(q.Status))
	}
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where = append(where, fmt.Sprintf("(created_at, id) < (%s, %s::uuid)", arg(at), arg(id)))
	}
	var items []Subscription
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE `+strings.Join(where, " AND ")+
			fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, page.Limit+1), args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) {
			s, err := scanSubscription(r)
			if err != nil {
				return Subscription{}, err
			}
			return *s, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(s Subscription) []string { return sdk.TimeKey(s.CreatedAt, s.ID) }))
}

// cancelSubscription asks Stripe to end the subscription at the end of
// its period; the plugin records the request, and Stripe's
// customer.subscription.updated (and, at the period's end, .deleted)
// events carry the rest.
func (p *Plugin) cancelSubscription(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("subscription_id")
	if err != nil {
		return nil, err
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	if err := cfg.requireKey(); err != nil {
		return nil, err
	}
	var s *Subscription
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if s, err = loadSubscription(ctx, tx, id); err != nil {
			return err
		}
		if err := visibleSubscription(req.Principal, s); err != nil {
			return err
		}
		switch s.Status {
		case "canceled", "incomplete_expired":
			return sdk.Errorf(sdk.ErrConflict, "subscription %s has ended", id).WithCode("subscription_ended")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !s.CancelAtPeriodEnd {
		if err := p.stripe.cancelAtPeriodEnd(ctx, cfg.StripeSecretKey, s.StripeSubscriptionID); err != nil {
			out, _ := stripeError("canceling at Stripe", err)
			return nil, out
		}
		err = req.Tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE subscriptions SET cancel_at_period_end = true, updated_at = now() WHERE id = $1 AND status <> 'canceled'`, id); err != nil {
				return err
			}
			s, err = loadSubscription(ctx, tx, id)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return sdk.JSON(http.StatusOK, s)
}

// stripeSubscription is what the plugin reads of a Stripe subscription.
// The period is on the items since Stripe's 2025 API versions, on the
// subscription before.
type stripeSubscription struct {
	ID                 string            `json:"id"`
	Status             string            `json:"status"`
	Metadata           map[string]string `json:"metadata"`
	CancelAtPeriodEnd  bool              `json:"cancel_at_period_end"`
	CanceledAt         *int64            `json:"canceled_at"`
	EndedAt            *int64            `json:"ended_at"`
	CurrentPeriodStart *int64            `json:"current_period_start"`
	CurrentPeriodEnd   *int64            `json:"current_period_end"`
	Items              struct {
		Data []struct {
			CurrentPeriodStart int64 `json:"current_period_start"`
			CurrentPeriodEnd   int64 `json:"current_period_end"`
		} `json:"data"`
	} `json:"items"`
}

var subscriptionStatuses = map[string]bool{"incomplete": true, "incomplete_expired": true, "trialing": true, "active": true, "past_due": true, "canceled": true, "unpaid": true, "paused": true}

func readSubscription(raw json.RawMessage) (*stripeSubscription, error) {
	var s stripeSubscription
	if err := json.Unmarshal(raw, &s); err != nil || !strings.HasPrefix(s.ID, "sub_") || !stripeIDPattern.MatchString(s.ID) {
		return nil, malformed("a subscription does not read")
	}
	if !subscriptionStatuses[s.Status] {
		return nil, malformed("subscription %s has a status the plugin does not know: %q", s.ID, s.Status)
	}
	return &s, nil
}

func (s *stripeSubscription) period() (start, end *time.Time) {
	if len(s.Items.Data) > 0 {
		return unixTime(s.Items.Data[0].CurrentPeriodStart), unixTime(s.Items.Data[0].CurrentPeriodEnd)
	}
	if s.CurrentPeriodStart != nil && s.CurrentPeriodEnd != nil {
		return unixTime(*s.CurrentPeriodStart), unixTime(*s.CurrentPeriodEnd)
	}
	return nil, nil
}

// subscriptionEvent handles customer.subscription.* events.
func (p *Plugin) subscriptionEvent(ctx context.Context, tx pgx.Tx, s sdk.Scope, w *webhookEvent, raw json.RawMessage, out *outcome) error {
	sub, err := readSubscription(raw)
	if err != nil {
		return err
	}
	if w.Type == "customer.subscription.deleted" {
		sub.Status = "canceled"
	}
	return p.applySubscription(ctx, tx, s, sub, w.Created, w.StripeEventID, out)
}

// applySubscription applies a subscription's state as of at (the created
// time of the event that carries it, or of a fetch), in tx:
//
//   - a subscription seen for the first time is recorded, whatever event
//     brings it (an update may arrive before its creation);
//   - a state older than the one recorded is ignored (Stripe does not
//     deliver in order); one of the same second is applied;
//   - a canceled subscription is never reactivated: nothing but another
//     canceled state applies to it.
//
// A change of status, period end or cancellation publishes
// commerce.subscription.changed.v1.
//
// A subscription of a checkout's order that ends for good (canceled,
// incomplete_expired: terminal at Stripe) publishes
// commerce.subscription.ended.v1 once, so what the order granted ends with
// it. past_due and unpaid keep it: Stripe is still collecting, and the
// subscription may become active again.
func (p *Plugin) applySubscription(ctx context.Context, tx pgx.Tx, s sdk.Scope, sub *stripeSubscription, at int64, eventID string, out *outcome) error {
	start, end := sub.period()
	canceledAt, endedAt := (*time.Time)(nil), (*time.Time)(nil)
	if sub.CanceledAt != nil {
		canceledAt = unixTime(*sub.CanceledAt)
	}
	if sub.EndedAt != nil {
		endedAt = unixTime(*sub.EndedAt)
	}
	cur, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE stripe_subscription_id = $1 FOR UPDATE`, sub.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		// First seen. Who and what: the metadata the checkout gave Stripe,
		// else the order that knows the subscription.
		var userID, orderID, productID, priceID *string
		if id, ok := sdk.NormalizeUUID(sub.Metadata["order_id"]); ok {
			orderID = &id
		}
		lookup := `SELECT o.id, o.user_id, i.product_id, i.price_id FROM orders o JOIN order_items i ON i.order_id = o.id AND i.position = 0 WHERE `
		var row pgx.Row
		if orderID != nil {
			row = tx.QueryRow(ctx, lookup+`o.id = $1`, *orderID)
		} else {
			row = tx.QueryRow(ctx, lookup+`o.stripe_subscription_id = $1`, sub.ID)
		}
		var oid, uid, pid, prid string
		if err := row.Scan(&oid, &uid, &pid, &prid); err == nil {
			orderID, userID, productID, priceID = &oid, &uid, &pid, &prid
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		} else {
			orderID = nil
			if id, ok := sdk.NormalizeUUID(sub.Metadata["user_id"]); ok {
				userID = &id
			}
		}
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO subscriptions (stripe_subscription_id, user_id, order_id, product_id, price_id, status, current_period_start, current_period_end,
				cancel_at_period_end, canceled_at, ended_at, state_at, state_event_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
			sub.ID, userID, orderID, productID, priceID, sub.Status, start, end, sub.CancelAtPeriodEnd, canceledAt, endedAt, at, nullIfEmpty(eventID)).Scan(&id)
		if err != nil {
			return fmt.Errorf("recording subscription %s: %w", sub.ID, err)
		}
		out.change("subscription", id, "", sub.Status)
		if userID != nil {
			out.user(*userID)
		}
		if err := s.Publish(ctx, tx, EventSubscriptionChanged, SubscriptionChanged{SubscriptionID: id, StripeSubscriptionID: sub.ID, UserID: deref(userID),
			ProductID: deref(productID), Status: sub.Status, CurrentPeriodEnd: end, CancelAtPeriodEnd: sub.CancelAtPeriodEnd}); err != nil {
			return err
		}
		return subscriptionEnded(ctx, tx, s, id, sub.ID, orderID, "", sub.Status)
	}
	if err != nil {
		return err
	}
	if cur.UserID != nil {
		out.user(*cur.UserID)
	}
	var stateAt int64
	if err := tx.QueryRow(ctx, `SELECT state_at FROM subscriptions WHERE id = $1`, cur.ID).Scan(&stateAt); err != nil {
		return err
	}
	switch {
	case cur.Status == "canceled" && sub.Status != "canceled":
		out.note("subscription %s is canceled: a %s state is not applied (a canceled subscription is never reactivated)", sub.ID, sub.Status)
		return nil
	case at < stateAt:
		out.note("subscription %s: a newer state is recorded (this one is from %d, the recorded one from %d)", sub.ID, at, stateAt)
		return nil
	}
	_, err = tx.Exec(ctx, `UPDATE subscriptions SET status = $2, current_period_start = coalesce($3, current_period_start), current_period_end = coalesce($4, current_period_end),
		cancel_at_period_end = $5, canceled_at = coalesce($6, canceled_at), ended_at = coalesce($7, ended_at), state_at = $8, state_event_id = $9, updated_at = now()
		WHERE id = $1`, cur.ID, sub.Status, start, end, sub.CancelAtPeriodEnd, canceledAt, endedAt, at, nullIfEmpty(eventID))
	if err != nil {
		return fmt.Errorf("updating subscription %s: %w", sub.ID, err)
	}
	periodChanged := end != nil && (cur.CurrentPeriodEnd == nil || !end.Equal(*cur.CurrentPeriodEnd))
	if cur.Status == sub.Status && !periodChanged && cur.CancelAtPeriodEnd == sub.CancelAtPeriodEnd {
		out.note("subscription %s: nothing changed", sub.ID)
		return nil
	}
	out.change("subscription", cur.ID, cur.Status, sub.Status)
	if end == nil {
		end = cur.CurrentPeriodEnd
	}
	if err := s.Publish(ctx, tx, EventSubscriptionChanged, SubscriptionChanged{SubscriptionID: cur.ID, StripeSubscriptionID: sub.ID, UserID: deref(cur.UserID),
		ProductID: deref(cur.ProductID), Status: sub.Status, PreviousStatus: cur.Status, CurrentPeriodEnd: end, CancelAtPeriodEnd: sub.CancelAtPeriodEnd}); err != nil {
		return err
	}
	return subscriptionEnded(ctx, tx, s, cur.ID, sub.ID, cur.OrderID, cur.Status, sub.Status)
}

// subscriptionEnds: the statuses after which a subscription never runs
// again.
var subscriptionEnds = map[string]bool{"canceled": true, "incomplete_expired": true}

// subscriptionEnded publishes commerce.subscription.ended.v1 when a
// subscription of a checkout's paid order moves from a running status
// (prev; "" when first seen) to an ending one: once, since an ending status
// is never left.
func subscriptionEnded(ctx context.Context, tx pgx.Tx, s sdk.Scope, id, stripeID string, orderID *string, prev, status string) error {
	if !subscriptionEnds[status] || subscriptionEnds[prev] || orderID == nil {
		return nil
	}
	o, err := loadOrder(ctx, tx, *orderID, false)
	if err != nil {
		return err
	}
	if o.Status == orderPending || o.Status == orderExpired || o.Status == orderFailed {
		return nil // it granted nothing
	}
	return s.Publish(ctx, tx, EventSubscriptionEnded, SubscriptionEnded{SubscriptionID: id, StripeSubscriptionID: stripeID, OrderID: o.ID,
		UserID: o.UserID, Status: status, Items: o.paidItems()})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
