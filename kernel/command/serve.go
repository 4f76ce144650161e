package command

import (
	"context"
	"io"

	"github.com/edulure/edulure/kernel/internal/app"
)

func init() {
	commands["serve"] = command{synopsis: "Run the kernel's HTTP API (configured by environment)", run: serve}
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg, stderr)
	pool, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	k, err := app.New(ctx, cfg, log, pool)
	if err != nil {
		return err
	}
	return k.Serve(ctx)
}
