// Package migrations embeds the kernel's numbered SQL migrations. They are
// applied to schema "kernel" by `edulure migrate`, at start (unless
// EDULURE_MIGRATE_ON_START=false) and by the test helper. A migration that has
// shipped is never edited; add a new file instead.
package migrations

import "embed"

// FS holds the *.up.sql files.
//
//go:embed *.sql
var FS embed.FS
