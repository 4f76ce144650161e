package httpapi_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/config"
)

// Institutions turn plugins on and off for themselves only; configuration
// is validated against the plugin's schema; the change reaches a second
// kernel replica on the same database within a second.
func TestPluginEnablementPerTenant(t *testing.T) {
	t.Parallel()
	b, file := withPlugins(t, pluginBlock{variant: probe})
	a, c := b.institution("alpha"), b.institution("beta")

	r := b.do("GET", "/api/v1/tenant/plugins", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "probe", r.str("items", "0", "name"))
	require.Equal(t, true, r.get("items", "0", "enabled"))
	require.Equal(t, "running", r.str("items", "0", "state"))
	require.NotNil(t, r.get("items", "0", "config_schema"))
	requireProblem(t, b.do("PUT", "/api/v1/tenant/plugins/probe", a.instructor, map[string]any{"enabled": false}), 403, "permission-denied")

	// A second replica on the same database.
	replica := b.replica(file)

	r = b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"enabled": false})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, false, r.get("enabled"))
	r = b.do("GET", "/api/v1/probe/echo/1", a.learner, nil)
	requireProblem(t, r, 404, "plugin-not-enabled")
	require.Contains(t, r.str("detail"), "not enabled for this institution")
	// Beta is unaffected.
	require.Equal(t, 200, b.do("GET", "/api/v1/probe/echo/1", c.learner, nil).Status)
	// The other replica follows, told by NOTIFY: within a second on an idle
	// machine (logged), and the bound is generous so that a loaded one
	// does not fail the test (a 1 s bound did, with requests taking 700 ms).
	changed := time.Now()
	require.Eventually(t, func() bool {
		return replica.do("GET", "/api/v1/probe/echo/1", a.learner, nil).Status == 404
	}, eventually, 20*time.Millisecond)
	t.Logf("the other replica followed in %s", time.Since(changed).Round(time.Millisecond))
	require.Equal(t, 200, replica.do("GET", "/api/v1/probe/echo/1", c.learner, nil).Status)

	// Configuration is validated against the plugin's JSON Schema.
	r = b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"enabled": true, "config": map[string]any{"greeting": "far too long a greeting"}})
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "config.greeting", r.str("errors", "0", "field"), "%s", r.Raw)
	r = b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"enabled": true, "config": map[string]any{"colour": "red"}})
	requireProblem(t, r, 422, "invalid-request")
	require.Contains(t, string(r.Raw), "colour")
	r = b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"enabled": true, "config": "yes"})
	requireProblem(t, r, 422, "invalid-request")
	requireProblem(t, b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"config": map[string]any{}}), 422, "invalid-request")
	requireProblem(t, b.do("PUT", "/api/v1/tenant/plugins/nosuch", a.admin, map[string]any{"enabled": true}), 404, "plugin-not-installed")
	// Still disabled after the refused changes: nothing half-written.
	requireProblem(t, b.do("GET", "/api/v1/probe/echo/1", a.learner, nil), 404, "plugin-not-enabled")

	r = b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"enabled": true, "config": map[string]any{"greeting": "salut"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("GET", "/api/v1/probe/echo/1", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "salut", r.str("config", "greeting"))
	require.Eventually(t, func() bool {
		return replica.do("GET", "/api/v1/probe/echo/1", a.learner, nil).str("config", "greeting") == "salut"
	}, eventually, 20*time.Millisecond)
	require.Empty(t, b.do("GET", "/api/v1/probe/echo/1", c.learner, nil).get("config", "greeting"), "beta's config is its own")

	// Audited, with the event in the outbox.
	var audits, events int
	ctx := context.Background()
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action LIKE 'tenancy.plugin.%'", a.id).Scan(&audits))
	require.Equal(t, 2, audits)
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM (SELECT id, type, tenant_id, data, occurred_at FROM kernel.outbox UNION ALL SELECT id, type, tenant_id, data, occurred_at FROM kernel.events WHERE source = 'kernel') AS ev WHERE tenant_id = $1 AND type LIKE 'tenancy.plugin.%'", a.id).Scan(&events))
	require.Equal(t, 2, events)
}

// A plugin disabled by default answers 404 until an institution enables it.
func TestPluginDisabledByDefault(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe, disabled: true})
	a := b.institution("alpha")
	requireProblem(t, b.do("GET", "/api/v1/probe/noop", a.learner, nil), 404, "plugin-not-enabled")
	require.Equal(t, 200, b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"enabled": true}).Status)
	require.Equal(t, 204, b.do("GET", "/api/v1/probe/noop", a.learner, nil).Status)
}

// Storage isolation through a real plugin process and its own role: rows
// are filtered by row-level security even though the handler's query has no
// tenant filter; a forged tenant_id is refused; with no tenant set nothing
// is visible; kernel tables and other plugins' schemas are out of reach, and
// the plugin cannot switch row-level security off.
func TestPluginStorageIsolation(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe}, pluginBlock{variant: variant{name: "other", version: "1.0.0"}})
	a, c := b.institution("alpha"), b.institution("beta")
	for _, name := range []string{"a1", "a2"} {
		require.Equal(t, 201, b.do("POST", "/api/v1/probe/items", a.admin, map[string]any{"name": name}).Status)
	}
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/items", c.admin, map[string]any{"name": "b1"}).Status)
	// A forged tenant_id in the body: RLS's WITH CHECK refuses the row.
	r := b.do("POST", "/api/v1/probe/items", a.admin, map[string]any{"name": "evil", "tenant_id": c.id})
	requireProblem(t, r, 403, "forbidden")
	require.Contains(t, r.str("detail"), "row-level security")

	names := func(r response) []string {
		var out []string
		for _, it := range r.get("items").([]any) {
			out = append(out, it.(map[string]any)["name"].(string))
		}
		return out
	}
	require.Equal(t, []string{"a1", "a2"}, names(b.do("GET", "/api/v1/probe/items", a.learner, nil)))
	require.Equal(t, []string{"b1"}, names(b.do("GET", "/api/v1/probe/items", c.learner, nil)))

	probeSQL := func(q string) response {
		r := b.do("GET", "/api/v1/probe/sql?q="+q, a.learner, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		return r
	}
	require.Equal(t, float64(0), probeSQL("no_tenant_count").get("result"), "no tenant set: no rows")
	require.Contains(t, probeSQL("kernel_users").str("error"), "permission denied for schema kernel")
	require.Contains(t, probeSQL("other_plugin").str("error"), "permission denied for schema plugin_other")
	require.Contains(t, probeSQL("disable_rls").str("error"), "must be owner")
	role := probeSQL("current_user").str("result")
	require.True(t, strings.HasSuffix(role, "plugin_probe"), "the plugin connects as its own role, not the kernel's: %s", role)
	// The rows are all there for the kernel's superuser view.
	var total int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM plugin_probe.items").Scan(&total))
	require.Equal(t, 3, total)
}

// replica starts a second kernel on the bundle's database, as another
// replica behind a load balancer would be.
func (b *testBundle) replica(pluginsFile string) *testBundle {
	b.t.Helper()
	vars := map[string]string{
		"DATABASE_URL":                  b.kernel.Config.DatabaseURL,
		"EDULURE_SECRET_KEY":            strings.Repeat("ab", 32),
		"EDULURE_AUTH_RATE_PER_IP":      "100000",
		"EDULURE_AUTH_RATE_PER_ACCOUNT": "100000",
		"EDULURE_MIGRATE_ON_START":      "false",
		"EDULURE_PLUGINS_FILE":          pluginsFile,
		"EDULURE_DB_ROLE_PREFIX":        b.kernel.Config.DBRolePrefix,
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	require.NoError(b.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	b.t.Cleanup(cancel)
	k, err := app.New(ctx, cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.Discard}), b.pool)
	require.NoError(b.t, err)
	b.t.Cleanup(k.Close)
	k.API.Run(ctx)
	return &testBundle{t: b.t, url: serve(b.t, k), pool: b.pool, kernel: k, allow5xx: b.allow5xx, document: &documentCheck{}}
}
