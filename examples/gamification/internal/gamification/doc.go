// Package gamification is an example plugin written against the Edulure SDK
// alone: institutions award points to their members and read a leaderboard.
// It shows the shape every plugin has: a manifest with routes, permissions,
// events, a subscription, a job and a typed configuration (plugin.go), one
// file per resource (points.go, leaderboard.go), an event handler
// (lessons.go) and a scheduled job (snapshots.go), embedded migrations, and
// tests that run the handlers with sdk/plugintest against a real PostgreSQL
// database. Bodies, event data and the configuration are Go types: the SDK
// makes their schemas, and the kernel enforces them before a handler runs.
package gamification
