// Package command holds the edulure binary's subcommands, one file each
// (serve, dev, migrate, tenant-create, user-create, audit-verify, keys,
// plugin new). cmd/edulure/main.go only calls Run.
package command
