// Package outbox writes kernel events into the transactional outbox
// (kernel.outbox) in the same transaction as the change that caused them, so
// an event exists if and only if its change committed. Delivery to
// subscribers is the event relay's job.
package outbox
