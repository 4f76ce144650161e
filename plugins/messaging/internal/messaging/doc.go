// Package messaging is the messaging plugin: community spaces with posts,
// comments, reactions, polls, attachments and moderation, and
// notifications by email, web push and in-app with preferences, digests,
// one-click unsubscribe and a delivery ledger. docs/messaging.md in the
// Edulure repository describes it; plugin.go holds the manifest.
package messaging
