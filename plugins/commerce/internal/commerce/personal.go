package commerce

import "github.com/edulure/edulure/sdk"

// The personal data commerce holds (docs/commerce.md, "Personal data").
// The SDK exports and erases it from these classes.
//
// The decision: orders, their items, refunds, subscriptions and invoices
// are the institution's books, which it must keep (tax law: years), so an
// erased buyer's are kept under the erasure's pseudonym, without what
// names them: Stripe's customer ID, the hosted invoice page (which shows
// the customer's name and address), and the Stripe events as received
// (their checkout sessions carry the customer's email and address).
// Amounts, dates, products and statuses stay, so the books still add up.
func (p *Plugin) personalData() []sdk.DataClass {
	books := "Kept for the institution's books (as long as its accounting law requires); anonymised when the buyer is erased, so the totals still add up."
	return []sdk.DataClass{
		// Through orders: before orders, whose user_id erasure replaces.
		{
			Name: "order_items", Table: "order_items", Subject: "user_id", OnErase: sdk.Keep,
			Through: &sdk.Through{Column: "order_id", Table: "orders", Key: "id"},
			Purpose: "What each order bought, at which price.", Retention: books,
			NotPersonal: []string{"product_name", "entitlements"},
		},
		{
			Name: "refunds", Table: "refunds", Subject: "user_id", OnErase: sdk.Keep,
			Through: &sdk.Through{Column: "order_id", Table: "orders", Key: "id"},
			Purpose: "Refunds of the buyer's orders.", Retention: books,
			Columns:     []sdk.PersonalColumn{{Name: "requested_by", Kind: sdk.UserRef, Description: "The admin who refunded."}},
			NotPersonal: []string{"idempotency_key"},
		},
		{
			Name: "orders", Table: "orders", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose: "The buyer's orders: what they bought, for how much, and how it was paid.", Retention: books,
			Columns: []sdk.PersonalColumn{
				{Name: "stripe_customer_id", Kind: sdk.Identifier, Description: "The buyer's customer at Stripe."},
				{Name: "checkout_url", Kind: sdk.OtherPersonal, Description: "The buyer's Stripe checkout page, while it is open."},
			},
			NotPersonal: []string{"tax", "status_reason", "idempotency_key", "promo_code"},
		},
		{
			Name: "promo_redemptions", Table: "promo_redemptions", Subject: "user_id", OnErase: sdk.Keep,
			Purpose: "Which buyer used which promo code (per-buyer limits).", Retention: books,
		},
		{
			Name: "subscriptions", Table: "subscriptions", Subject: "user_id", OnErase: sdk.Keep,
			Purpose: "The buyer's subscriptions and their state at Stripe.", Retention: books,
		},
		{
			Name: "invoices", Table: "invoices", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose: "The buyer's invoices from Stripe.", Retention: books,
			Columns: []sdk.PersonalColumn{{Name: "hosted_invoice_url", Kind: sdk.OtherPersonal, Description: "Stripe's page of the invoice, which shows the customer's name and address."}},
		},
		{
			Name: "webhook_events", Table: "webhook_events", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose:     "Stripe's events about the buyer as received: processing, replay of failures and reconciliation.",
			Retention:   "30 days once processed (Stripe retries for 3); on erasure the payload is emptied and the record of the event kept.",
			Columns:     []sdk.PersonalColumn{{Name: "payload", Kind: sdk.OtherPersonal, Description: "The event as Stripe sent it: a checkout session holds the customer's email, name and address."}},
			NotPersonal: []string{"note", "api_version"},
		},
		{
			Name: "order_enrolments", Table: "order_enrolments", Subject: "user_id", OnErase: sdk.Keep,
			Purpose: "The enrolments the courses plugin made for the buyer's orders (the entitlement check).", Retention: books,
		},
		// Authored by staff: the institution's; their IDs become the pseudonym.
		{
			Name: "products", Table: "products", Purpose: "The catalogue.", Retention: "As long as the institution sells it.",
			Columns: []sdk.PersonalColumn{{Name: "created_by", Kind: sdk.UserRef, Description: "Who created it."}}, NotPersonal: []string{"name", "description"},
		},
		{
			Name: "prices", Table: "prices", Purpose: "The catalogue's prices.", Retention: "As long as the institution sells it.",
			Columns: []sdk.PersonalColumn{{Name: "created_by", Kind: sdk.UserRef, Description: "Who created it."}}, NotPersonal: []string{"nickname"},
		},
		{
			Name: "promo_codes", Table: "promo_codes", Purpose: "Promo codes.", Retention: "As long as the institution keeps them.",
			Columns: []sdk.PersonalColumn{{Name: "created_by", Kind: sdk.UserRef, Description: "Who created it."}},
		},
		{
			Name: "webhook_failures", Table: "webhook_failures", Purpose: "Failed Stripe events and who replayed them.", Retention: "With the event.",
			Columns: []sdk.PersonalColumn{{Name: "resolved_by", Kind: sdk.UserRef, Description: "The admin who replayed it."}}, NotPersonal: []string{"error"},
		},
	}
}
