package commerce

import (
	"time"

	"github.com/edulure/edulure/sdk"
)

// Event types the plugin publishes, each in the transaction of the change
// it reports, so it is delivered if and only if the change commits. Data
// structs below; a version never loses fields.
const (
	EventOrderPaid              = "commerce.order.paid.v1"
	EventOrderRefunded          = "commerce.order.refunded.v1"
	EventOrderPartiallyRefunded = "commerce.order.partially_refunded.v1"
	EventSubscriptionChanged    = "commerce.subscription.changed.v1"
	EventSubscriptionEnded      = "commerce.subscription.ended.v1"
	EventInvoicePaid            = "commerce.invoice.paid.v1"
	EventInvoicePaymentFailed   = "commerce.invoice.payment_failed.v1"
	EventAnomaly                = "commerce.billing.anomaly.v1"
	// EventWebhookReceived is the plugin's own: a verified Stripe event was
	// stored; the plugin processes it out of the webhook's request when this
	// is delivered back to it.
	EventWebhookReceived = "commerce.webhook.received.v1"
)

// The courses plugin's events the plugin follows, for the entitlement
// drift check.
const (
	EventEnrolmentCreated   = "courses.enrolment.created.v1"
	EventEnrolmentPromoted  = "courses.enrolment.promoted.v1"
	EventEnrolmentWithdrawn = "courses.enrolment.withdrawn.v1"
)

// OrderPaid is the data of commerce.order.paid.v1, in the shape the courses
// plugin reads (docs/courses.md): order_id, user_id and items, an item per
// course granted, with course_id and optionally cohort_id. An item of a
// product that grants no course has no course_id (courses skips it).
type OrderPaid struct {
	OrderID     string          `json:"order_id" format:"uuid"`
	UserID      string          `json:"user_id" format:"uuid"`
	Currency    string          `json:"currency" pattern:"^[a-z]{3}$"`
	AmountTotal int64           `json:"amount_total" minimum:"0" doc:"In the currency's minor unit."`
	Items       []OrderPaidItem `json:"items"`
}

// OrderPaidItem is one thing an order bought: a course it grants (with
// the product and price it came from), or a product that grants none.
type OrderPaidItem struct {
	ProductID string `json:"product_id" format:"uuid"`
	PriceID   string `json:"price_id" format:"uuid"`
	CourseID  string `json:"course_id,omitempty" format:"uuid"`
	CohortID  string `json:"cohort_id,omitempty" format:"uuid"`
	Quantity  int    `json:"quantity" minimum:"1"`
}

// OrderRefunded is the data of commerce.order.refunded.v1 (the whole
// order refunded: courses withdraws the enrolments it granted) and of
// commerce.order.partially_refunded.v1 (access stays).
type OrderRefunded struct {
	OrderID        string          `json:"order_id" format:"uuid"`
	UserID         string          `json:"user_id" format:"uuid"`
	Currency       string          `json:"currency" pattern:"^[a-z]{3}$"`
	AmountTotal    int64           `json:"amount_total" minimum:"0"`
	AmountRefunded int64           `json:"amount_refunded" minimum:"0" doc:"In all, so far."`
	Items          []OrderPaidItem `json:"items"`
}

// SubscriptionChanged is the data of commerce.subscription.changed.v1.
type SubscriptionChanged struct {
	SubscriptionID       string     `json:"subscription_id" format:"uuid"`
	StripeSubscriptionID string     `json:"stripe_subscription_id"`
	UserID               string     `json:"user_id,omitempty" format:"uuid"`
	ProductID            string     `json:"product_id,omitempty" format:"uuid"`
	Status               string     `json:"status" enum:"incomplete,incomplete_expired,trialing,active,past_due,canceled,unpaid,paused"`
	PreviousStatus       string     `json:"previous_status,omitempty" doc:"Empty for a subscription seen for the first time."`
	CurrentPeriodEnd     *time.Time `json:"current_period_end,omitempty"`
	CancelAtPeriodEnd    bool       `json:"cancel_at_period_end"`
}

// SubscriptionEnded is the data of commerce.subscription.ended.v1: a
// subscription bought through a checkout ended for good (canceled, or
// incomplete_expired), once. What its order granted ends with it: the
// courses plugin withdraws the order's live enrolments, as for a refund.
type SubscriptionEnded struct {
	SubscriptionID       string          `json:"subscription_id" format:"uuid"`
	StripeSubscriptionID string          `json:"stripe_subscription_id"`
	OrderID              string          `json:"order_id" format:"uuid" doc:"The checkout's order, whose grants end."`
	UserID               string          `json:"user_id" format:"uuid"`
	Status               string          `json:"status" enum:"canceled,incomplete_expired"`
	Items                []OrderPaidItem `json:"items"`
}

// InvoiceChanged is the data of commerce.invoice.paid.v1 (once per
// invoice) and commerce.invoice.payment_failed.v1 (once per failed
// attempt).
type InvoiceChanged struct {
	InvoiceID            string `json:"invoice_id" format:"uuid"`
	StripeInvoiceID      string `json:"stripe_invoice_id"`
	StripeSubscriptionID string `json:"stripe_subscription_id,omitempty"`
	UserID               string `json:"user_id,omitempty" format:"uuid"`
	Currency             string `json:"currency"`
	AmountDue            int64  `json:"amount_due"`
	AmountPaid           int64  `json:"amount_paid"`
}

// Anomaly is the data of commerce.billing.anomaly.v1: something about the
// institution's billing that was not as it should be, once per kind and
// object (governance archives them as evidence).
type Anomaly struct {
	AnomalyID  string `json:"anomaly_id" format:"uuid"`
	Kind       string `json:"kind" doc:"What was found: order_unknown_to_stripe, amount_mismatch, paid_after_close, entitlement_missing, entitlement_not_revoked, subscription_active_at_stripe, ..."`
	ObjectType string `json:"object_type" enum:"order,subscription,invoice,event"`
	ObjectID   string `json:"object_id"`
	Detail     string `json:"detail"`
	Repaired   bool   `json:"repaired" doc:"The plugin repaired what it safely could, and reports it."`
	RunID      string `json:"run_id,omitempty" format:"uuid" doc:"The reconciliation run that found it; absent when webhook processing did."`
}

// WebhookReceived is the data of commerce.webhook.received.v1.
type WebhookReceived struct {
	WebhookEventID string `json:"webhook_event_id" format:"uuid"`
	StripeEventID  string `json:"stripe_event_id"`
	Type           string `json:"type"`
}

var publishedEvents = []sdk.EventType{
	{Type: EventOrderPaid, Description: "An order was paid (a verified Stripe webhook, or reconciliation): the buyer gets what it grants.", Schema: OrderPaid{}},
	{Type: EventOrderRefunded, Description: "An order was refunded in full: what it granted is withdrawn.", Schema: OrderRefunded{}},
	{Type: EventOrderPartiallyRefunded, Description: "Part of an order was refunded; what it granted stays.", Schema: OrderRefunded{}},
	{Type: EventSubscriptionChanged, Description: "A subscription's status, period or cancellation changed.", Schema: SubscriptionChanged{}},
	{Type: EventSubscriptionEnded, Description: "A subscription bought through a checkout ended for good: what its order granted ends (courses withdraws the enrolments).", Schema: SubscriptionEnded{}},
	{Type: EventInvoicePaid, Description: "An invoice was paid (once per invoice).", Schema: InvoiceChanged{}},
	{Type: EventInvoicePaymentFailed, Description: "An attempt to pay an invoice failed.", Schema: InvoiceChanged{}},
	{Type: EventAnomaly, Description: "Billing drift found by reconciliation or processing: repaired and reported, or reported for people.", Schema: Anomaly{}},
	{Type: EventWebhookReceived, Description: "A verified Stripe event was stored; the plugin processes it.", Schema: WebhookReceived{}},
}

// subscriptions are the events the plugin handles.
func (p *Plugin) subscriptions() []sdk.Subscription {
	return []sdk.Subscription{
		// Stored Stripe events are processed here, out of the webhook's
		// request (webhooks.go, process.go).
		{Type: EventWebhookReceived, Handler: p.onWebhookReceived, MaxAttempts: 8},
		// What the courses plugin did with orders (entitlements.go).
		{Type: EventEnrolmentCreated, Handler: p.onEnrolment},
		{Type: EventEnrolmentPromoted, Handler: p.onEnrolment},
		{Type: EventEnrolmentWithdrawn, Handler: p.onEnrolment},
	}
}

// Job names.
const (
	JobReconcile = "reconcile-billing"
)

// jobs are the plugin's jobs.
func (p *Plugin) jobs() []sdk.Job {
	return []sdk.Job{
		{
			Name: JobReconcile, Description: "BillingReconciliationJob: compare the last 24 hours of Stripe with orders, payment intents, subscriptions and invoices; repair what is safe, report the rest.",
			Schedule: "17 * * * *", PerTenant: true, MaxAttempts: 3, Timeout: 10 * time.Minute, Permission: PermBillingManage,
			Handler: p.reconcile,
		},
	}
}
