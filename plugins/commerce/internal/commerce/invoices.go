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

// Invoice is an invoice as the plugin knows it from Stripe's events.
type Invoice struct {
	ID                   string     `json:"id" format:"uuid"`
	StripeInvoiceID      string     `json:"stripe_invoice_id"`
	StripeSubscriptionID *string    `json:"stripe_subscription_id,omitempty"`
	UserID               *string    `json:"user_id,omitempty" format:"uuid"`
	Status               string     `json:"status" enum:"draft,open,paid,void,uncollectible"`
	Currency             string     `json:"currency"`
	AmountDue            int64      `json:"amount_due"`
	AmountPaid           int64      `json:"amount_paid"`
	HostedInvoiceURL     *string    `json:"hosted_invoice_url,omitempty" doc:"Stripe's page of the invoice."`
	PeriodStart          *time.Time `json:"period_start,omitempty"`
	PeriodEnd            *time.Time `json:"period_end,omitempty"`
	PaidAt               *time.Time `json:"paid_at,omitempty"`
	CreatedAt            time.Time  `json:"created_at"`
}

// ListInvoicesQuery filters GET /api/v1/invoices.
type ListInvoicesQuery struct {
	Scope  string `query:"scope" enum:"own,all" doc:"own (the default), or the institution's (commerce.order.manage)."`
	Status string `query:"status" enum:"draft,open,paid,void,uncollectible"`
}

func (p *Plugin) invoiceRoutes() []sdk.Route {
	return []sdk.Route{{
		Method: "GET", Path: "/api/v1/invoices", Permission: PermOrderSelf,
		Summary:  "Invoice history, newest first: one's own, or the institution's (scope=all, commerce.order.manage).",
		Response: sdk.Page[Invoice]{}, Query: ListInvoicesQuery{}, Paginated: true, Handler: p.listInvoices,
	}}
}

func (p *Plugin) listInvoices(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListInvoicesQuery](req)
	if err != nil {
		return nil, err
	}
	me := req.Principal
	where, args := []string{"true"}, []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if q.Scope == "all" {
		if !me.Can(PermOrderManage) {
			return nil, sdk.Errorf(sdk.ErrForbidden, "reading others' invoices needs the permission %s", PermOrderManage)
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
	var items []Invoice
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, stripe_invoice_id, stripe_subscription_id, user_id, status, currency, amount_due, amount_paid,
			hosted_invoice_url, period_start, period_end, paid_at, created_at FROM invoices WHERE `+strings.Join(where, " AND ")+
			fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, page.Limit+1), args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invoice, error) {
			var in Invoice
			err := r.Scan(&in.ID, &in.StripeInvoiceID, &in.StripeSubscriptionID, &in.UserID, &in.Status, &in.Currency, &in.AmountDue, &in.AmountPaid,
				&in.HostedInvoiceURL, &in.PeriodStart, &in.PeriodEnd, &in.PaidAt, &in.CreatedAt)
			in.CreatedAt = in.CreatedAt.UTC()
			return in, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(in Invoice) []string { return sdk.TimeKey(in.CreatedAt, in.ID) }))
}

// stripeInvoice is what the plugin reads of a Stripe invoice. Its
// subscription is at parent.subscription_details.subscription since
// Stripe's 2025 API versions, at subscription before.
type stripeInvoice struct {
	ID               string            `json:"id"`
	Status           string            `json:"status"`
	Currency         string            `json:"currency"`
	AmountDue        int64             `json:"amount_due"`
	AmountPaid       int64             `json:"amount_paid"`
	HostedInvoiceURL string            `json:"hosted_invoice_url"`
	PeriodStart      int64             `json:"period_start"`
	PeriodEnd        int64             `json:"period_end"`
	Metadata         map[string]string `json:"metadata"`
	Subscription     json.RawMessage   `json:"subscription"`
	Parent           struct {
		SubscriptionDetails struct {
			Subscription json.RawMessage `json:"subscription"`
		} `json:"subscription_details"`
	} `json:"parent"`
	StatusTransitions struct {
		PaidAt *int64 `json:"paid_at"`
	} `json:"status_transitions"`
}

var invoiceStatuses = map[string]bool{"draft": true, "open": true, "paid": true, "void": true, "uncollectible": true}

// invoiceStatusOf is the status an invoice event reports.
func invoiceStatusOf(eventType string, in *stripeInvoice) string {
	switch eventType {
	case "invoice.paid", "invoice.payment_succeeded":
		return "paid"
	case "invoice.voided":
		return "void"
	case "invoice.marked_uncollectible":
		return "uncollectible"
	case "invoice.finalized", "invoice.payment_failed", "invoice.payment_action_required":
		if in.Status == "draft" || in.Status == "" {
			return "open"
		}
	}
	return in.Status
}

// invoiceEvent handles invoice.* events: each event once (invoice_events,
// by Stripe's event ID); the invoice's status by the events' times, with
// paid and void final, so a late open or failed event never unpays it; the
// invoice paid (and commerce.invoice.paid.v1) once however many paid events
// arrive; each failed payment attempt published once.
func (p *Plugin) invoiceEvent(ctx context.Context, tx pgx.Tx, s sdk.Scope, w *webhookEvent, raw json.RawMessage, out *outcome) error {
	var in stripeInvoice
	if err := json.Unmarshal(raw, &in); err != nil || !strings.HasPrefix(in.ID, "in_") || !stripeIDPattern.MatchString(in.ID) {
		return malformed("an invoice does not read")
	}
	status := invoiceStatusOf(w.Type, &in)
	if !invoiceStatuses[status] {
		return malformed("invoice %s has a status the plugin does not know: %q", in.ID, in.Status)
	}
	cur := strings.ToLower(in.Currency)
	if !currencyPattern.MatchString(cur) {
		cur = ""
	}
	subID := stripeID(in.Parent.SubscriptionDetails.Subscription)
	if subID == "" {
		subID = stripeID(in.Subscription)
	}
	sub := nullIfNot(subID, "sub_")
	tag, err := tx.Exec(ctx, `INSERT INTO invoice_events (stripe_event_id, stripe_invoice_id, type, created, status, amount_paid, applied)
		VALUES ($1, $2, $3, $4, $5, $6, false) ON CONFLICT DO NOTHING`, w.StripeEventID, in.ID, truncate(w.Type, 68), w.Created, status, in.AmountPaid)
	if err != nil {
		return fmt.Errorf("recording invoice event %s: %w", w.StripeEventID, err)
	}
	if tag.RowsAffected() == 0 {
		out.note("invoice event %s was recorded already", w.StripeEventID)
		return nil
	}
	// Whose: the subscription's buyer, else the metadata's.
	var userID *string
	if sub != nil {
		_ = tx.QueryRow(ctx, `SELECT user_id FROM subscriptions WHERE stripe_subscription_id = $1`, *sub).Scan(&userID)
	}
	if userID == nil {
		if id, ok := sdk.NormalizeUUID(in.Metadata["user_id"]); ok {
			userID = &id
		}
	}
	var url *string
	if strings.HasPrefix(in.HostedInvoiceURL, "https://") && len(in.HostedInvoiceURL) <= 2000 {
		url = &in.HostedInvoiceURL
	}
	var paidAt *time.Time
	if status == "paid" {
		paidAt = unixTime(w.Created)
		if in.StatusTransitions.PaidAt != nil {
			paidAt = unixTime(*in.StatusTransitions.PaidAt)
		}
	}
	var id, prev string
	var prevAt int64
	err = tx.QueryRow(ctx, `SELECT id, status, state_at FROM invoices WHERE stripe_invoice_id = $1 FOR UPDATE`, in.ID).Scan(&id, &prev, &prevAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = tx.QueryRow(ctx, `INSERT INTO invoices (stripe_invoice_id, stripe_subscription_id, user_id, status, currency, amount_due, amount_paid,
			hosted_invoice_url, period_start, period_end, paid_at, state_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			in.ID, sub, userID, status, cur, in.AmountDue, in.AmountPaid, url, unixTime(in.PeriodStart), unixTime(in.PeriodEnd), paidAt, w.Created).Scan(&id)
		if err != nil {
			return fmt.Errorf("recording invoice %s: %w", in.ID, err)
		}
	case err != nil:
		return err
	case prev == "paid" || prev == "void":
		out.note("invoice %s is %s: final", in.ID, prev)
		if w.Type == "invoice.payment_failed" {
			return nil
		}
		return nil
	case w.Created < prevAt && !(status == "paid" || status == "void"):
		// Older, and not final: a newer state stands. A paid or void
		// invoice is final whenever its event arrives.
		out.note("invoice %s: a newer state is recorded", in.ID)
		return nil
	default:
		_, err = tx.Exec(ctx, `UPDATE invoices SET status = $2, stripe_subscription_id = coalesce(stripe_subscription_id, $3), user_id = coalesce(user_id, $4),
			currency = CASE WHEN $5 = '' THEN currency ELSE $5 END, amount_due = $6, amount_paid = $7, hosted_invoice_url = coalesce($8, hosted_invoice_url),
			period_start = coalesce($9, period_start), period_end = coalesce($10, period_end), paid_at = coalesce(paid_at, $11), state_at = greatest(state_at, $12), updated_at = now()
			WHERE id = $1`, id, status, sub, userID, cur, in.AmountDue, in.AmountPaid, url, unixTime(in.PeriodStart), unixTime(in.PeriodEnd), paidAt, w.Created)
		if err != nil {
			return fmt.Errorf("updating invoice %s: %w", in.ID, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE invoice_events SET applied = true WHERE stripe_event_id = $1`, w.StripeEventID); err != nil {
		return err
	}
	if userID != nil {
		out.user(*userID)
	}
	if prev != status {
		out.change("invoice", id, prev, status)
	}
	data := InvoiceChanged{InvoiceID: id, StripeInvoiceID: in.ID, StripeSubscriptionID: subID, UserID: deref(userID), Currency: cur, AmountDue: in.AmountDue, AmountPaid: in.AmountPaid}
	if !strings.HasPrefix(subID, "sub_") {
		data.StripeSubscriptionID = ""
	}
	switch {
	case status == "paid" && prev != "paid":
		return s.Publish(ctx, tx, EventInvoicePaid, data)
	case w.Type == "invoice.payment_failed":
		out.change("invoice", id, prev, "payment_failed")
		return s.Publish(ctx, tx, EventInvoicePaymentFailed, data)
	}
	return nil
}
