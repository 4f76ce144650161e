package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/config"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/devmail"
	"github.com/edulure/edulure/kernel/internal/stripemock"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/pgcluster"
)

func init() {
	commands["dev"] = command{synopsis: "Run a development kernel: local Postgres under .data/, demo institution, serve (make run)", run: dev}
}

func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	dataDir := fs.String("data", ".data", "directory for the local database and generated secrets")
	pluginDir := fs.String("plugins", "bin/plugins", "directory of built plugin binaries to load (make plugins builds them)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(*dataDir, 0o755); err != nil { // the server user must reach pg/
		return err
	}
	env := map[string]string{}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	if os.Getenv("DATABASE_URL") == "" {
		c, err := pgcluster.Open(ctx, filepath.Join(*dataDir, "pg"), pgcluster.Options{})
		if err != nil {
			return err
		}
		if err := c.Start(ctx); err != nil {
			return err
		}
		defer func() {
			fmt.Fprintln(stdout, "stopping local Postgres")
			if err := c.Stop(); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}()
		if err := ensureDatabase(ctx, c.URL("postgres"), "edulure"); err != nil {
			return err
		}
		env["DATABASE_URL"] = c.URL("edulure")
		fmt.Fprintf(stdout, "local Postgres on 127.0.0.1:%d (data in %s)\n", c.Port, filepath.Join(*dataDir, "pg"))
	}
	if os.Getenv("EDULURE_SECRET_KEY") == "" {
		key, err := readOrCreate(filepath.Join(*dataDir, "secret.key"), func() string { return randomHex(32) })
		if err != nil {
			return err
		}
		env["EDULURE_SECRET_KEY"] = key
	}
	if os.Getenv("EDULURE_BLOB_URL") == "" {
		dir, err := filepath.Abs(filepath.Join(*dataDir, "blobs"))
		if err != nil {
			return err
		}
		env["EDULURE_BLOB_URL"] = "file://" + filepath.ToSlash(dir)
		fmt.Fprintf(stdout, "plugins' object storage in %s\n", dir)
	}
	if os.Getenv("EDULURE_LOG_FORMAT") == "" {
		env["EDULURE_LOG_FORMAT"] = "text"
	}
	if os.Getenv("EDULURE_METRICS_ALLOW") == "" && os.Getenv("EDULURE_METRICS_TOKEN") == "" && os.Getenv("EDULURE_METRICS_BASIC_AUTH") == "" {
		// /metrics without credentials, for this machine only.
		env["EDULURE_METRICS_ALLOW"] = "127.0.0.1,::1"
	}
	configs := map[string]string{}
	if os.Getenv("EDULURE_DEV_MAIL") != "off" {
		// A mail catcher, so that the messaging plugin's invitations and
		// notifications can be read (EDULURE_DEV_MAIL=off: none).
		mc, err := devmail.Start("127.0.0.1:1025", "127.0.0.1:8025")
		if err != nil {
			return fmt.Errorf("starting the mail catcher: %w", err)
		}
		defer mc.Close()
		configs["messaging"] = fmt.Sprintf(`{ smtp_host = "127.0.0.1", smtp_port = %d, smtp_security = "none" }`, mc.SMTPPort)
		fmt.Fprintf(stdout, "mail catcher: SMTP on %s; read the mail at http://%s/ (JSON: http://%s/api/messages)\n", mc.SMTPAddr, mc.HTTPAddr, mc.HTTPAddr)
	}
	if os.Getenv("EDULURE_PLUGINS_FILE") == "" {
		file := filepath.Join(*dataDir, "plugins.hcl")
		if _, err := os.Stat(filepath.Join(*pluginDir, "commerce")); err == nil {
			// The commerce plugin talks to stripe-mock, started here, with
			// a demo key and signing secret for every institution that
			// sets none (docs/commerce.md): checkout works without a
			// Stripe account.
			mock, err := startStripeMock(ctx, stdout, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "stripe-mock is not running, so the commerce plugin's checkout will fail until an institution sets a real Stripe test key: %v\n", err)
			} else {
				defer mock.Stop()
				// Secret settings come from files (file()), never inline.
				keyFile, err := filepath.Abs(filepath.Join(*dataDir, "stripe-demo-key"))
				if err != nil {
					return err
				}
				whsecFile := filepath.Join(filepath.Dir(keyFile), "stripe-demo-signing-secret")
				for f, v := range map[string]string{keyFile: DemoStripeKey, whsecFile: DemoStripeSigningSecret} {
					if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
						return err
					}
				}
				configs["commerce"] = fmt.Sprintf(`{ stripe_api_base = %q, stripe_secret_key = file(%q), webhook_signing_secret = file(%q) }`, mock.URL, keyFile, whsecFile)
				fmt.Fprintf(stdout, "stripe-mock %s on %s for the commerce plugin (demo webhook signing secret %s)\n", stripemock.Version, mock.URL, DemoStripeSigningSecret)
			}
		}
		names, err := writeDevPluginsFile(ctx, *pluginDir, file, configs)
		if err != nil {
			return fmt.Errorf("writing %s: %w", file, err)
		}
		env["EDULURE_PLUGINS_FILE"] = file
		fmt.Fprintf(stdout, "plugins from %s: %s (listed in %s)\n", *pluginDir, strings.Join(names, ", "), file)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := app.NewLogger(cfg, stderr)
	pool, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	creds, err := seedDemo(ctx, pool, *dataDir)
	if err != nil {
		return fmt.Errorf("seeding demo data: %w", err)
	}
	k, err := app.New(ctx, cfg, log, pool)
	if err != nil {
		return err
	}
	if err := startPluginDemos(ctx, k, pool); err != nil {
		k.Close()
		return fmt.Errorf("starting the plugins' demo content: %w", err)
	}
	url := "http://localhost" + cfg.Addr
	if !strings.HasPrefix(cfg.Addr, ":") {
		url = "http://" + cfg.Addr
	}
	fmt.Fprintf(stdout, "\nEdulure kernel: %s  (API docs: %s/api/openapi.json)\nAdmin console: %s/console/\n\nDemo institution %q — sign in at the console, or log in with POST /api/v1/auth/login:\n", url, url, url, "demo")
	for _, c := range creds {
		fmt.Fprintf(stdout, "  %-10s %-28s %s\n", c[0], c[1], c[2])
	}
	fmt.Fprintln(stdout, "\nPress Ctrl-C to stop.")
	return k.Serve(ctx)
}

// seedDemo creates the demo institution and its people once; passwords are
// generated on the first run and kept in <data>/demo-passwords.
func seedDemo(ctx context.Context, pool *pgxpool.Pool, dataDir string) ([][3]string, error) {
	people := []struct{ role, email, name string }{
		{"operator", "operator@edulure.test", "Platform Operator"},
		{"admin", "admin@demo.edulure.test", "Ada Admin"},
		{"instructor", "instructor@demo.edulure.test", "Ian Instructor"},
		{"learner", "learner@demo.edulure.test", "Lea Learner"},
	}
	pwFile := filepath.Join(dataDir, "demo-passwords")
	raw, err := readOrCreate(pwFile, func() string {
		var b strings.Builder
		for _, p := range people {
			fmt.Fprintf(&b, "%s %s\n", p.email, "Demo-"+randomHex(6)+"-pass")
		}
		return b.String()
	})
	if err != nil {
		return nil, err
	}
	passwords := map[string]string{}
	for _, line := range strings.Split(raw, "\n") {
		if email, pw, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			passwords[email] = pw
		}
	}
	if _, err := tenancy.GetTenantBySlug(ctx, pool, "demo"); errors.Is(err, sdk.ErrNotFound) {
		if _, err := app.CreateTenant(ctx, pool, "demo", "Demo University"); err != nil {
			return nil, err
		}
		for _, p := range people {
			spec := app.UserSpec{Email: p.email, Name: p.name, Password: passwords[p.email]}
			if p.role == "operator" {
				spec.Operator = true
			} else {
				spec.Tenant, spec.Roles = "demo", []string{p.role}
			}
			if _, err := app.CreateUser(ctx, pool, spec); err != nil {
				return nil, fmt.Errorf("creating %s: %w", p.email, err)
			}
		}
	} else if err != nil {
		return nil, err
	}
	out := make([][3]string, 0, len(people))
	for _, p := range people {
		out = append(out, [3]string{p.role, p.email, passwords[p.email]})
	}
	return out, nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func readOrCreate(path string, gen func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return strings.TrimSpace(v), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// The commerce plugin's demo Stripe credentials under make run: stripe-mock
// takes any test key, and webhooks to the demo institution are signed with
// this secret (docs/commerce.md). Neither is a secret: they reach no Stripe
// account.
const (
	DemoStripeKey           = "sk_test_edulureDemo" // stripe-mock takes letters and digits after sk_test_
	DemoStripeSigningSecret = "whsec_demo_signing_secret"
)

// startStripeMock installs (once, into bin/) and starts stripe-mock.
func startStripeMock(ctx context.Context, stdout, stderr io.Writer) (*stripemock.Server, error) {
	bin, err := stripemock.Install(ctx, "bin")
	if err != nil {
		return nil, err
	}
	return stripemock.Start(ctx, bin, nil)
}

// DemoJob is the job a plugin may declare to create demo content: `edulure
// dev` starts it for the demo institution on every start, with the demo
// people's IDs as arguments ({"admin_id", "instructor_id", "learner_id"}:
// the job takes those it needs, see docs/plugins.md). The job itself must
// do nothing when its content exists.
const DemoJob = "demo-content"

// startPluginDemos starts a run of DemoJob of every loaded plugin that
// declares one, for the demo institution, as its admin.
func startPluginDemos(ctx context.Context, k *app.Kernel, pool *pgxpool.Pool) error {
	tenant, err := tenancy.GetTenantBySlug(ctx, pool, "demo")
	if err != nil {
		return err
	}
	ids := map[string]string{}
	for role, email := range map[string]string{"admin_id": "admin@demo.edulure.test", "instructor_id": "instructor@demo.edulure.test", "learner_id": "learner@demo.edulure.test"} {
		var id string
		if err := pool.QueryRow(ctx, "SELECT id::text FROM kernel.users WHERE lower(email) = $1", email).Scan(&id); err != nil {
			return fmt.Errorf("finding demo user %s: %w", email, err)
		}
		ids[role] = id
	}
	for _, l := range k.Plugins.Loaded() {
		declared := false
		for _, j := range l.Manifest.Jobs {
			declared = declared || (j.Name == DemoJob && j.PerTenant)
		}
		if !declared {
			continue
		}
		args, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		err = database.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := k.Jobs.Trigger(ctx, tx, l.Name, DemoJob, tenant.ID, "user:"+ids["admin_id"], args)
			return err
		})
		if err != nil {
			return fmt.Errorf("plugin %s: %w", l.Name, err)
		}
	}
	return nil
}
