package commerce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Refund is a refund asked for through the API.
type Refund struct {
	ID             string    `json:"id" format:"uuid"`
	OrderID        string    `json:"order_id" format:"uuid"`
	Amount         int64     `json:"amount"`
	Reason         *string   `json:"reason,omitempty"`
	Status         string    `json:"status" enum:"requested,pending,succeeded,failed,canceled" doc:"Stripe's status of the refund (requested: not yet answered)."`
	StripeRefundID *string   `json:"stripe_refund_id,omitempty"`
	RequestedBy    string    `json:"requested_by" format:"uuid"`
	CreatedAt      time.Time `json:"created_at"`
}

// RefundResult is the answer to a refund: the refund and the order after
// it.
type RefundResult struct {
	Refund Refund `json:"refund"`
	Order  Order  `json:"order"`
}

// CreateRefund is the body of POST /api/v1/orders/{order_id}/refunds.
type CreateRefund struct {
	Amount int64  `json:"amount,omitempty" minimum:"1" maximum:"99999999" doc:"Minor units; absent: all that is left to refund."`
	Reason string `json:"reason,omitempty" enum:"duplicate,fraudulent,requested_by_customer"`
}

func (p *Plugin) refundRoutes() []sdk.Route {
	return []sdk.Route{{
		Method: "POST", Path: "/api/v1/orders/{order_id}/refunds", Permission: PermOrderRefund,
		Summary: "Refund a paid order through Stripe, in full or in part (Idempotency-Key honoured). A full refund withdraws what the order granted (commerce.order.refunded.v1).",
		Request: CreateRefund{}, Response: RefundResult{}, Status: http.StatusCreated, Handler: p.refundOrder,
	}}
}

// refundOrder handles POST /api/v1/orders/{order_id}/refunds. The refund is
// recorded (requested) with the order locked, so that two admins cannot
// refund more than was paid between them; then Stripe is asked, with the
// refund's ID as idempotency key; then Stripe's answer is applied. A refund
// Stripe made (succeeded) counts at once; the charge.refunded webhook that
// follows carries the same total and changes nothing.
func (p *Plugin) refundOrder(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("order_id")
	if err != nil {
		return nil, err
	}
	var in CreateRefund
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	// An order the institution does not have is 404 before anything about
	// the institution's settings is said.
	if _, err := loadOrderIn(ctx, req, id); err != nil {
		return nil, err
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	if err := cfg.requireKey(); err != nil {
		return nil, err
	}
	key := req.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		return nil, sdk.Errorf(sdk.ErrBadRequest, "Idempotency-Key must be at most 255 characters").WithCode("bad-idempotency-key")
	}
	var r Refund
	var o *Order
	var replay bool
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		o, err = loadOrder(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if key != "" {
			err := scanRefund(tx.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds WHERE order_id = $1 AND idempotency_key = $2`, id, key), &r)
			if err == nil {
				replay = true
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if o.Status == orderRefunded {
			return sdk.Errorf(sdk.ErrConflict, "order %s is refunded in full already", id).WithCode("order_refunded")
		}
		if o.Status != orderPaid && o.Status != orderPartiallyRefunded {
			return sdk.Errorf(sdk.ErrConflict, "order %s is %s: only a paid order is refunded", id, o.Status).WithCode("order_not_paid")
		}
		if o.StripePaymentIntentID == nil {
			return sdk.Errorf(sdk.ErrConflict, "order %s has no Stripe payment to refund (a subscription's payments are refunded in Stripe's dashboard)", id).WithCode("no_payment_to_refund")
		}
		var held int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM refunds WHERE order_id = $1 AND status IN ('requested', 'pending', 'succeeded')`, id).Scan(&held); err != nil {
			return err
		}
		left := o.AmountTotal - max(held, o.AmountRefunded)
		amount := in.Amount
		if amount == 0 {
			amount = left
		}
		if left <= 0 {
			return sdk.Errorf(sdk.ErrConflict, "order %s is refunded in full already", id).WithCode("order_refunded")
		}
		if amount > left {
			return sdk.Invalid(sdk.FieldError{Field: "amount", Message: fmt.Sprintf("must be at most %d, what is left to refund", left)}).WithCode("refund_too_large")
		}
		return scanRefund(tx.QueryRow(ctx, `INSERT INTO refunds (order_id, amount, reason, status, idempotency_key, requested_by)
			VALUES ($1, $2, $3, 'requested', $4, $5) RETURNING `+refundColumns, id, amount, nullIfEmpty(in.Reason), nullIfEmpty(key), req.Principal.ID()), &r)
	})
	if err != nil {
		return nil, err
	}
	if !replay || r.Status == "requested" {
		meta := map[string]string{"order_id": o.ID, "refund_id": r.ID, "tenant_id": req.Tenant()}
		sr, err := p.stripe.refund(ctx, cfg.StripeSecretKey, *o.StripePaymentIntentID, r.Amount, in.Reason, "edulure-refund-"+r.ID, meta)
		if err != nil {
			out, final := stripeError("refunding at Stripe", err)
			if final {
				_ = req.Tx(ctx, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `UPDATE refunds SET status = 'failed', updated_at = now() WHERE id = $1`, r.ID)
					return err
				})
			}
			return nil, out
		}
		err = req.Tx(ctx, func(tx pgx.Tx) error {
			status := sr.Status
			switch status {
			case "pending", "succeeded", "failed", "canceled":
			case "requires_action":
				status = "pending"
			default:
				status = "pending"
			}
			if err := scanRefund(tx.QueryRow(ctx, `UPDATE refunds SET status = $2, stripe_refund_id = $3, updated_at = now() WHERE id = $1 RETURNING `+refundColumns,
				r.ID, status, nullIfNot(sr.ID, "re_")), &r); err != nil {
				return err
			}
			if status != "succeeded" {
				return nil
			}
			cur, err := loadOrder(ctx, tx, o.ID, true)
			if err != nil {
				return err
			}
			var total int64
			if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM refunds WHERE order_id = $1 AND status = 'succeeded'`, o.ID).Scan(&total); err != nil {
				return err
			}
			return p.applyRefunded(ctx, tx, req, cur, total, &outcome{})
		})
		if err != nil {
			return nil, err
		}
	}
	o, err = loadOrderIn(ctx, req, id)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, RefundResult{Refund: r, Order: *o})
}

const refundColumns = `id, order_id, amount, reason, status, stripe_refund_id, requested_by, created_at`

func scanRefund(row pgx.Row, r *Refund) error {
	err := row.Scan(&r.ID, &r.OrderID, &r.Amount, &r.Reason, &r.Status, &r.StripeRefundID, &r.RequestedBy, &r.CreatedAt)
	r.CreatedAt = r.CreatedAt.UTC()
	return err
}
