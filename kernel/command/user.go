package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/edulure/edulure/kernel/internal/app"
)

func init() {
	commands["user-create"] = command{synopsis: "Create a user, optionally an operator or a member: -email -name [-tenant slug -roles admin]", run: userCreate}
}

func userCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("user-create", stderr)
	email := fs.String("email", "", "email address (required)")
	name := fs.String("name", "", "display name (required)")
	operator := fs.Bool("operator", false, "make the user a platform operator")
	tenant := fs.String("tenant", "", "slug of an institution to join")
	roles := fs.String("roles", "learner", "comma-separated roles in -tenant")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" || *name == "" {
		fs.Usage()
		return errUsage
	}
	password := os.Getenv("EDULURE_USER_PASSWORD")
	if password == "" {
		return fmt.Errorf("EDULURE_USER_PASSWORD: is required (the new user's password; kept out of the command line so it stays out of shell history)")
	}
	pool, _, err := openAdmin(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	var rs []string
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rs = append(rs, r)
		}
	}
	u, err := app.CreateUser(ctx, pool, app.UserSpec{Email: *email, Name: *name, Password: password, Operator: *operator, Tenant: *tenant, Roles: rs})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s (%s) ready\n", u.Email, u.ID)
	return nil
}
