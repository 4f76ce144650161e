package plugintest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/edulure/edulure/sdk/internal/bridge"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// dbConnections is the size of the plugin's pool, the kernel's default
// (plugins.hcl limits.db_connections).
const dbConnections = 4

// Harness is one provisioned plugin with its own database. Its methods are
// safe for concurrent use (parallel subtests may share a Harness).
type Harness struct {
	t        testing.TB
	plugin   sdk.Plugin
	manifest sdk.Manifest
	wire     *pluginv1.Manifest // as the kernel receives it
	routes   []*wire.CheckedRoute
	subs     map[string]sdk.Subscription // by event type, for Deliver
	jobs     map[string]sdk.Job          // by name, for RunJob
	config   *jsonschema.Schema          // of the configuration; nil: none
	response map[string]*jsonschema.Schema
	logger   hclog.Logger
	logOut   *testLog
	rt       bridge.Runtime
	env      *sdk.Env

	adminURL    string // the server's maintenance database
	dbURL       string // this harness's database, as the admin
	ownsDB      bool
	rolePrefix  string // of every plugin in the database; roles are global to the server
	admin       *pgxpool.Pool
	spec        storage.Spec
	provisioned bool // storage.Provision ran (or was attempted)
	configured  bool // the plugin's Provision succeeded

	recorder *recordingHost // the default host; nil with WithHost
	objects  *objects       // the plugin's object storage

	mu      sync.Mutex
	tenants map[string]tenantSettings
}

type tenantSettings struct {
	config   json.RawMessage
	disabled bool
}

// Option changes how New sets up a Harness.
type Option func(*options)

type options struct {
	operatorConfig json.RawMessage
	host           sdk.Host
	shared         *Harness
	limits         *blobstore.Limits
}

// WithOperatorConfig sets Env.OperatorConfig, the plugin's block of
// configuration in plugins.hcl as JSON ("{}" by default).
func WithOperatorConfig(cfg json.RawMessage) Option {
	return func(o *options) { o.operatorConfig = cfg }
}

// WithHost replaces the default host, which answers Authorize from the
// principal's permissions and institution, records Audit entries (see
// AuditEntries) and answers TenantConfig from SetTenantConfig.
func WithHost(h sdk.Host) Option {
	return func(o *options) { o.host = h }
}

// WithDatabaseOf provisions the plugin in the database of another Harness,
// next to its plugin, with the same role prefix: the layout of a kernel
// running several plugins. The other Harness must outlive this one (create
// it first in the same test or a parent test).
func WithDatabaseOf(other *Harness) Option {
	return func(o *options) { o.shared = other }
}

// New provisions p as the kernel does and returns its Harness. It reads
// the manifest and refuses an invalid one, creates a fresh database (or
// uses the one of WithDatabaseOf), calls storage.Provision for the
// plugin's schema, roles, migrations and row-level security, connects
// Env.DB as the plugin's own role, and calls p.Provision. Everything is
// undone in t.Cleanup: p.Cleanup runs, the pools close, and the database
// and roles are dropped. New fails the test on any error.
func New(t testing.TB, p sdk.Plugin, opts ...Option) *Harness {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	h := &Harness{t: t, plugin: p, manifest: p.Manifest(), tenants: map[string]tenantSettings{}}
	if err := h.load(); err != nil {
		t.Fatalf("plugintest: the kernel would refuse plugin %q:\n%v", h.manifest.Name, err)
	}
	migrations, err := storage.LoadMigrations(h.manifest.Migrations)
	if err != nil {
		t.Fatalf("plugintest: plugin %q: %v", h.manifest.Name, err)
	}
	operator := o.operatorConfig
	if len(operator) == 0 {
		operator = json.RawMessage("{}")
	}
	if vs := wire.CheckConfig(h.config, operator, "config"); len(vs) > 0 {
		t.Fatalf("plugintest: WithOperatorConfig: the kernel would refuse this config block of plugin %q in plugins.hcl: %s", h.manifest.Name, violationText(vs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	h.logOut = &testLog{t: t}
	h.logger = hclog.New(&hclog.LoggerOptions{Name: h.manifest.Name, Level: hclog.Debug, Output: h.logOut, DisableTime: true})
	t.Cleanup(h.cleanup)

	if err := h.openDatabase(ctx, o.shared); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	host := o.host
	if host == nil {
		h.recorder = &recordingHost{h: h}
		host = h.recorder
	}
	// As the kernel does for every plugin, migrations or not.
	h.spec = storage.Spec{Plugin: h.manifest.Name, RolePrefix: h.rolePrefix, Password: randomHex(16), Migrations: migrations}
	h.provisioned = true
	if _, err := storage.Provision(ctx, h.admin, h.spec); err != nil {
		t.Fatalf("plugintest: provisioning plugin %q: %v", h.manifest.Name, err)
	}
	runtime, err := storage.RuntimeURL(h.dbURL, h.spec)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(runtime)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	cfg.MaxConns = dbConnections
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("plugintest: connecting as the plugin's role: %v", err)
	}
	limits := blobstore.DefaultLimits
	if o.limits != nil {
		limits = *o.limits
	}
	blobs, err := h.startStorage(limits)
	if err != nil {
		pool.Close()
		t.Fatalf("plugintest: %v", err)
	}
	// As the served plugin is provisioned: its Publish checks events
	// against the manifest's types and schemas.
	rt, err := bridge.Provision(ctx, p, h.logger, pool, host, operator, blobs)
	if err != nil {
		pool.Close()
		t.Fatalf("plugintest: plugin %q Provision: %v", h.manifest.Name, err)
	}
	h.rt, h.env = rt, rt.Env().(*sdk.Env)
	h.configured = true
	if err := h.checkPersonalData(ctx); err != nil {
		t.Fatalf("plugintest: plugin %q's personal data:\n%v", h.manifest.Name, err)
	}
	if err := h.rt.CheckRetention(ctx); err != nil {
		t.Fatalf("plugintest: plugin %q's retention classes:\n%v", h.manifest.Name, err)
	}
	return h
}

// Check returns every reason the kernel would refuse p's manifest at load
// that can be judged without the kernel's state (another plugin's routes,
// the operator's plugins.hcl): names, routes, permissions, schemas of
// bodies, queries, events and configuration, jobs, migrations. New checks
// the same, and needs a database.
//
// Since: v1.2
func Check(p sdk.Plugin) error {
	_, _, _, err := check(p)
	return err
}

func check(p sdk.Plugin) (*pluginv1.Manifest, []*wire.CheckedRoute, *jsonschema.Schema, error) {
	m, err := bridge.Compile(p)
	if err != nil {
		return nil, nil, nil, err
	}
	routes, errs := wire.CheckManifest(m)
	var config *jsonschema.Schema
	if len(m.ConfigSchemaJson) > 0 {
		if config, err = wire.CompileConfig(m.Name, m.ConfigSchemaJson); err != nil {
			errs = append(errs, err)
		}
	}
	return m, routes, config, errors.Join(errs...)
}

// load refuses what the kernel refuses and indexes the routes for Do, the
// subscriptions for Deliver and the jobs for RunJob.
func (h *Harness) load() error {
	m, routes, config, err := check(h.plugin)
	if err != nil {
		return err
	}
	h.wire, h.routes, h.config = m, routes, config
	h.response = map[string]*jsonschema.Schema{}
	for _, r := range routes {
		if len(r.ResponseSchemaJson) == 0 {
			continue
		}
		js, err := schema.JSONSchema(r.ResponseSchemaJson, m.ComponentsJson, false)
		if err == nil {
			h.response[r.Key], err = schema.Compile("response "+r.Key, js)
		}
		if err != nil {
			return fmt.Errorf("route %s: response schema: %w", r.Key, err)
		}
	}
	// Compile refused subscriptions and jobs without handlers or declared
	// twice.
	h.subs, h.jobs = map[string]sdk.Subscription{}, map[string]sdk.Job{}
	for _, s := range h.manifest.Subscribes {
		h.subs[s.Type] = s
	}
	for _, j := range h.manifest.Jobs {
		h.jobs[j.Name] = j
	}
	return nil
}

func (h *Harness) openDatabase(ctx context.Context, shared *Harness) error {
	if shared != nil {
		if shared.admin == nil {
			return errors.New("WithDatabaseOf: that Harness has no database (was it cleaned up?)")
		}
		h.adminURL, h.dbURL, h.rolePrefix = shared.adminURL, shared.dbURL, shared.rolePrefix
	} else {
		server, err := adminURL(ctx)
		if err != nil {
			return err
		}
		h.adminURL = server
		name := "plugintest_" + randomHex(6)
		if err := createDatabase(ctx, server, name); err != nil {
			return err
		}
		h.ownsDB, h.rolePrefix = true, "pt"+randomHex(4)+"_"
		if h.dbURL, err = withDatabase(server, name); err != nil {
			return err
		}
	}
	cfg, err := pgxpool.ParseConfig(h.dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 4
	if h.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return fmt.Errorf("connecting as the admin: %w", err)
	}
	return nil
}

func createDatabase(ctx context.Context, server, name string) error {
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", EnvURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		var pe *pgconn.PgError
		if err != nil && errors.As(err, &pe) && pe.Code == "55006" && attempt < 50 {
			time.Sleep(100 * time.Millisecond) // someone is connected to template1
			continue
		}
		if err != nil {
			return fmt.Errorf("creating database %s: %w", name, err)
		}
		return nil
	}
}

func withDatabase(rawURL, db string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%s must be a postgres:// URL: %w", EnvURL, err)
	}
	u.Path = "/" + db
	return u.String(), nil
}

// cleanup undoes New, in reverse order, as far as New got.
func (h *Harness) cleanup() {
	defer h.logOut.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if h.configured {
		if err := h.rt.Cleanup(ctx); err != nil {
			h.t.Errorf("plugintest: plugin %q Cleanup: %v", h.manifest.Name, err)
		}
	}
	h.objects.stop()
	if h.admin != nil {
		if h.provisioned && !h.ownsDB { // an owned database goes as a whole
			if err := storage.Drop(ctx, h.admin, h.spec); err != nil {
				h.t.Logf("plugintest: dropping plugin %q storage: %v", h.manifest.Name, err)
			}
		}
		h.admin.Close()
		h.admin = nil
	}
	if !h.ownsDB {
		return
	}
	conn, err := pgx.Connect(ctx, h.adminURL)
	if err != nil {
		h.t.Logf("plugintest: dropping the test database: %v", err)
		return
	}
	defer conn.Close(ctx)
	name := strings.TrimPrefix(mustURL(h.dbURL).Path, "/")
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		h.t.Logf("plugintest: dropping database %s: %v", name, err)
		return
	}
	// Roles are global to the server: drop those of every plugin that
	// shared this database (they own nothing now that it is gone).
	rows, _ := conn.Query(ctx, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", h.rolePrefix)
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		h.t.Logf("plugintest: listing roles to drop: %v", err)
	}
	for _, r := range roles {
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize()); err != nil {
			h.t.Logf("plugintest: dropping role %s: %v", r, err)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}

// DB is a pool on the Harness's database as the admin (a superuser, which
// row-level security does not restrict): for setting up and checking data
// behind the plugin's back.
func (h *Harness) DB() *pgxpool.Pool { return h.admin }

// PluginDB is the plugin's own Env.DB, connected as its role: what its
// handlers see.
func (h *Harness) PluginDB() *sdk.DB { return h.env.DB }

// Env is the Env the plugin was provisioned with.
func (h *Harness) Env() *sdk.Env { return h.env }

// InTenant runs fn in a transaction as the plugin's role, scoped to
// institution tenantID like Request.Tx ("" for none).
func (h *Harness) InTenant(tenantID string, fn func(tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return h.env.DB.InTenant(ctx, tenantID, fn)
}

// SetTenantConfig sets the plugin's configuration for an institution: what
// Request.Config carries on its requests, Host.TenantConfig answers and
// sdk.Config reads. The kernel checks a configuration against the
// manifest's schema when an admin saves it; a configuration it would
// refuse fails the test, with the 422's words.
func (h *Harness) SetTenantConfig(tenantID string, config json.RawMessage) {
	h.t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(config, &obj); err != nil || obj == nil {
		h.t.Fatalf("plugintest: SetTenantConfig: the configuration must be a JSON object, not %s", config)
	}
	if vs := wire.CheckConfig(h.config, config, "config"); len(vs) > 0 {
		h.t.Fatalf("plugintest: SetTenantConfig: the kernel would refuse this configuration: %s", violationText(vs))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.tenants[tenantID]
	s.config = append(json.RawMessage{}, config...)
	h.tenants[tenantID] = s
}

// SetEnabled turns the plugin on or off for an institution. It is on for
// every institution until turned off (enabled_by_default); requests from an
// institution where it is off get the kernel's 404.
func (h *Harness) SetEnabled(tenantID string, enabled bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.tenants[tenantID]
	s.disabled = !enabled
	h.tenants[tenantID] = s
}

func (h *Harness) tenantConfig(tenantID string) (json.RawMessage, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.tenants[tenantID]
	if len(s.config) == 0 {
		return json.RawMessage("{}"), !s.disabled
	}
	return append(json.RawMessage{}, s.config...), !s.disabled
}

// testLog sends the plugin's log to t.Log until the test is over.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func (w *testLog) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func violationText(vs []schema.Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Field + ": " + v.Message
	}
	return strings.Join(parts, "; ")
}
