// Package messaging is the messaging plugin: items that an institution's
// instructors create and everyone in it lists (item.go), an event published
// with each new item, and a nightly job that deletes items older than the
// institution's retention (purge.go). The manifest and the configuration
// are in plugin.go.
package messaging
