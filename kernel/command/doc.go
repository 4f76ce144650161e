// Package command holds the edulure binary's subcommands, one file each
// (serve, dev, migrate, tenant-create, user-create, audit-verify, keys).
// cmd/edulure/main.go only calls Run.
package command
