// Package database opens the kernel's pgx pool, applies numbered SQL
// migrations under an advisory lock, and runs functions in transactions.
package database
