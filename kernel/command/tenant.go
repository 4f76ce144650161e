package command

import (
	"context"
	"fmt"
	"io"

	"github.com/edulure/edulure/kernel/internal/app"
)

func init() {
	commands["tenant-create"] = command{synopsis: "Create an institution: -slug uni -name 'A University'", run: tenantCreate}
}

func tenantCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tenant-create", stderr)
	slug := fs.String("slug", "", "unique slug, lowercase (required)")
	name := fs.String("name", "", "display name (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *slug == "" || *name == "" {
		fs.Usage()
		return errUsage
	}
	pool, _, err := openAdmin(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	t, err := app.CreateTenant(ctx, pool, *slug, *name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created institution %s (%s)\n", t.Slug, t.ID)
	return nil
}
