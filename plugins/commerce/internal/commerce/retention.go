package commerce

import "github.com/edulure/edulure/sdk"

// The retention class of commerce (docs/commerce.md, "Retention"):
// closed orders, by when they closed. An order closes when its checkout
// expired or failed (closed_at): it was never paid, is not part of the
// books, and goes with its items, promo code redemption (released) and
// payment intents (by foreign key). A pending, paid or refunded order has
// no closed_at and is never selected.
//
// Paid orders are the institution's books, kept as long as its accounting
// law requires and anonymised when the buyer is erased: no retention class
// expires them (one would need the institution's accounting period and one
// pseudonym across orders, subscriptions, invoices and redemptions, which
// only an erasure has).
func (p *Plugin) retention() []sdk.RetentionClass {
	return []sdk.RetentionClass{{
		Name: "closed_orders", Description: "Orders whose checkout expired or failed (never paid), by when they closed, with their items, promo redemptions and payment intents.",
		Table: "orders", TimeColumn: "closed_at", Subject: "user_id", ID: "id",
		Actions: []sdk.RetentionAction{sdk.RetainDelete},
	}}
}
