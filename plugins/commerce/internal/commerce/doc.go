// Package commerce is Edulure's commerce plugin: the catalogue (products,
// what they grant, prices in minor units), promo codes with atomic
// redemption, a tax hook with a per-institution rate table, orders and
// their state machine, Stripe Checkout (stripe-go), signed Stripe webhooks
// stored before they are acknowledged and processed out of the request,
// subscriptions, invoices, refunds, and an hourly reconciliation with
// Stripe that repairs what is safe and reports the rest.
//
// It uses only the SDK, and Stripe through stripe-go with each
// institution's own secret key (a secret setting). Request and response
// bodies, query parameters, event data and the configuration are Go types
// whose struct tags hold their limits.
//
// Files, one per resource: plugin.go (manifest and wiring), config.go,
// events.go (published and subscribed types, jobs), input.go, tax.go (the
// tax hook), stripe.go (the calls to Stripe), products.go, prices.go,
// promos.go (and redemption), checkout.go, orders.go (and the state
// machine), refunds.go, signature.go (Stripe-Signature), webhooks.go (the
// intake), process.go (processing stored events), subscriptions.go,
// invoices.go, failures.go (failed events, replay, dry run), anomalies.go,
// reconcile.go (the reconcile-billing job), entitlements.go (the drift
// check), personal.go. The contract is docs/commerce.md.
package commerce
