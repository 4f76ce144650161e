// Command testplugin is a plugin for the kernel's tests: it echoes requests,
// stores rows under row-level security, sleeps, fails, panics and crashes on
// demand. Its name, version and route prefix are set at link time
// (-ldflags "-X main.name=... -X main.version=... -X main.prefix=..."), so
// one source gives the variants the tests need (upgrades, conflicts).
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

var (
	name    = "probe"
	version = "1.0.0"
	prefix  = "" // route prefix; defaults to name
)

//go:embed migrations/*.sql
var migrations embed.FS

func main() { sdk.Serve(newProbe) }

type probe struct{ env *sdk.Env }

var _ sdk.Plugin = (*probe)(nil)

func newProbe() *probe { return &probe{} }

func (p *probe) Manifest() sdk.Manifest {
	pre := prefix
	if pre == "" {
		pre = name
	}
	base := "/api/v1/" + pre
	read, write := name+".item.read", name+".item.write"
	h := func(f func(context.Context, *sdk.Request) (*sdk.Response, error)) sdk.Handler {
		return sdk.HandlerFunc(f)
	}
	return sdk.Manifest{
		Name: name, Version: version, Description: "Test plugin for the kernel's own tests",
		Permissions: []sdk.Permission{
			{Name: read, Description: "Read items", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: write, Description: "Write items", DefaultRoles: []string{"admin", "instructor"}},
		},
		Routes: []sdk.Route{
			{Method: http.MethodGet, Path: base + "/echo/{id}", Permission: read, Summary: "Echo the request", Query: []string{"q"}, Handler: h(p.echo)},
			{Method: http.MethodGet, Path: base + "/noop", Permission: read, Summary: "Answer 204", Handler: h(noop)},
			{Method: http.MethodGet, Path: base + "/public", Public: true, Summary: "Public echo", Handler: h(p.echo)},
			{Method: http.MethodPost, Path: base + "/items", Permission: write, Summary: "Store an item",
				Request:  json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`),
				Response: json.RawMessage(`{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}}}`),
				Status:   http.StatusCreated, Handler: h(p.addItem)},
			{Method: http.MethodGet, Path: base + "/items", Permission: read, Summary: "List items (no tenant filter: RLS does it)", Handler: h(p.listItems)},
			{Method: http.MethodGet, Path: base + "/sql", Permission: read, Summary: "Run a probing query as the plugin role", Query: []string{"q"}, Handler: h(p.sql)},
			{Method: http.MethodGet, Path: base + "/sleep", Permission: read, Summary: "Sleep ?ms= milliseconds", Query: []string{"ms"}, Handler: h(sleep)},
			{Method: http.MethodPost, Path: base + "/crash", Permission: read, Summary: "Exit the process mid-request", Handler: h(crash)},
			{Method: http.MethodGet, Path: base + "/invalid", Permission: read, Summary: "Answer a field error", Handler: h(invalid)},
			{Method: http.MethodGet, Path: base + "/panic", Permission: read, Summary: "Panic in the handler", Handler: h(panics)},
			{Method: http.MethodGet, Path: base + "/host", Permission: read, Summary: "Call the kernel's host services", Handler: h(p.host)},
		},
		Publishes:    []sdk.EventType{{Type: name + ".item.created.v1", Schema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"integer"}}}`)}},
		Subscribes:   []string{"tenancy.member.joined.v1"},
		Jobs:         []sdk.Job{{Name: "sweep", Schedule: "*/5 * * * *", PerTenant: true}},
		Migrations:   sdk.MustSub(migrations, "migrations"),
		ConfigSchema: json.RawMessage(`{"type":"object","additionalProperties":false,"properties":{"greeting":{"type":"string","maxLength":10}}}`),
	}
}

func (p *probe) Provision(ctx context.Context, env *sdk.Env) error {
	var op struct {
		CrashOnStart bool `json:"crash_on_start"`
	}
	if err := json.Unmarshal(env.OperatorConfig, &op); err != nil {
		return err
	}
	if op.CrashOnStart {
		os.Exit(7)
	}
	p.env = env
	return nil
}

func (p *probe) Cleanup(context.Context) error { return nil }

func (p *probe) echo(_ context.Context, r *sdk.Request) (*sdk.Response, error) {
	return sdk.JSON(http.StatusOK, map[string]any{
		"plugin": name, "version": version, "route": r.Route, "params": r.Params, "query": r.Query,
		"principal": r.Principal, "config": r.Config, "request_id": r.RequestID,
		"headers": r.Header, "has_deadline": !r.Deadline.IsZero(),
	})
}

func noop(context.Context, *sdk.Request) (*sdk.Response, error) { return sdk.NoContent() }

type item struct {
	ID       int64  `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
}

func (p *probe) addItem(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in struct {
		Name     string `json:"name"`
		TenantID string `json:"tenant_id"` // a hostile client may try another tenant
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, sdk.Invalid(sdk.FieldError{Field: "name", Message: "is required"})
	}
	tenant := r.Principal.TenantID
	if in.TenantID != "" {
		tenant = in.TenantID
	}
	var it item
	err := r.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "INSERT INTO items (tenant_id, name) VALUES ($1, $2) RETURNING id, tenant_id, name", tenant, in.Name).
			Scan(&it.ID, &it.TenantID, &it.Name)
	})
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrForbidden, "storing the item: %v", err)
	}
	return sdk.JSON(http.StatusCreated, it)
}

func (p *probe) listItems(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	items := []item{}
	err := r.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, tenant_id, name FROM items ORDER BY id")
		if err != nil {
			return err
		}
		var it item
		_, err = pgx.ForEachRow(rows, []any{&it.ID, &it.TenantID, &it.Name}, func() error {
			items = append(items, it)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"items": items})
}

// sql runs one of a fixed set of probing queries and reports the error, if
// any: the tests use it to show what the plugin's role cannot do.
func (p *probe) sql(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	queries := map[string]string{
		"kernel_users":    "SELECT count(*) FROM kernel.users",
		"other_plugin":    "SELECT count(*) FROM plugin_other.items",
		"disable_rls":     "ALTER TABLE items DISABLE ROW LEVEL SECURITY",
		"no_tenant_count": "SELECT count(*) FROM items",
		"current_user":    "SELECT current_user",
	}
	q, ok := queries[r.Query.Get("q")]
	if !ok {
		return nil, sdk.Invalid(sdk.FieldError{Field: "q", Message: "unknown probe"})
	}
	var out any
	var err error
	if r.Query.Get("q") == "no_tenant_count" {
		// No tenant set at all: RLS must hide every row.
		err = p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error { return tx.QueryRow(ctx, q).Scan(&out) })
	} else {
		err = r.Tx(ctx, func(tx pgx.Tx) error { return tx.QueryRow(ctx, q).Scan(&out) })
	}
	res := map[string]any{"result": out}
	if err != nil {
		res["error"] = err.Error()
	}
	return sdk.JSON(http.StatusOK, res)
}

func sleep(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	ms, _ := strconv.Atoi(r.Query.Get("ms"))
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return sdk.JSON(http.StatusOK, map[string]any{"slept_ms": ms, "version": version})
}

func crash(context.Context, *sdk.Request) (*sdk.Response, error) {
	os.Exit(2)
	return nil, errors.New("unreachable")
}

func invalid(context.Context, *sdk.Request) (*sdk.Response, error) {
	return nil, sdk.Invalid(sdk.FieldError{Field: "title", Message: "must not be empty"})
}

func panics(context.Context, *sdk.Request) (*sdk.Response, error) { panic("the test asked for it") }

func (p *probe) host(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	cfg, enabled, err := p.env.Host.TenantConfig(ctx, r.Principal.TenantID)
	if err != nil {
		return nil, err
	}
	own, err := p.env.Host.Authorize(ctx, r.Principal, name+".item.write", sdk.Resource{Type: "item", ID: "1", TenantID: r.Principal.TenantID})
	if err != nil {
		return nil, err
	}
	foreign, err := p.env.Host.Authorize(ctx, r.Principal, name+".item.read", sdk.Resource{Type: "item", ID: "2", TenantID: "00000000-0000-0000-0000-000000000001"})
	if err != nil {
		return nil, err
	}
	err = p.env.Host.Audit(ctx, sdk.AuditEntry{TenantID: r.Principal.TenantID, Actor: r.Principal, Action: name + ".item.inspected", TargetType: "item", TargetID: "1", Details: map[string]any{"why": "test"}, RequestID: r.RequestID})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"config": cfg, "enabled": enabled, "may_write_own": own, "may_read_foreign": foreign})
}
