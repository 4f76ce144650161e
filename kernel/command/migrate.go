package command

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/migrations"
)

func init() {
	commands["migrate"] = command{synopsis: "Apply the kernel's database migrations (needs DATABASE_URL)", run: migrate}
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return fmt.Errorf("DATABASE_URL: is required")
	}
	pool, err := database.Connect(ctx, url, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := database.MigrateKernel(ctx, pool, migrations.FS)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied migrations %v\n", applied)
	return nil
}
