package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A plugin binary loads, its routes serve through the kernel with the
// caller's principal, permissions and the tenant's config, and the kernel's
// OpenAPI document and plugin list show it.
func TestPluginLoadAndForward(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	a := b.institution("alpha")

	r := b.do("GET", "/api/v1/probe/echo/42?q=x&q=y", a.learner, nil, "X-Request-ID", "req-echo-1", "Accept-Language", "fr")
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "probe", r.str("plugin"))
	require.Equal(t, "GET /api/v1/probe/echo/{id}", r.str("route"))
	require.Equal(t, "42", r.str("params", "id"))
	require.Equal(t, []any{"x", "y"}, r.get("query", "q"))
	require.Equal(t, "req-echo-1", r.str("request_id"))
	require.Equal(t, "user", r.str("principal", "Kind"))
	require.Equal(t, a.learnerID, r.str("principal", "UserID"))
	require.Equal(t, a.id, r.str("principal", "TenantID"))
	require.Equal(t, []any{"probe.item.read"}, r.get("principal", "Permissions"), "a learner holds read only")
	require.Equal(t, []any{"fr"}, r.get("headers", "Accept-Language"))
	require.Nil(t, r.get("headers", "Authorization"), "credentials never reach a plugin")
	require.Equal(t, true, r.get("has_deadline"))

	// Permission checked by the kernel before the plugin sees the request.
	requireProblem(t, b.do("POST", "/api/v1/probe/items", a.learner, map[string]any{"name": "x"}), 403, "permission-denied")
	requireProblem(t, b.do("GET", "/api/v1/probe/echo/1", "", nil), 401, "missing-credentials")
	// A public route needs no token.
	r = b.do("GET", "/api/v1/probe/public", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "anonymous", r.str("principal", "Kind"))

	// Typed errors from the handler become problems.
	r = b.do("GET", "/api/v1/probe/invalid", a.learner, nil)
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "title", r.str("errors", "0", "field"))
	r = b.do("GET", "/api/v1/probe/panic", a.learner, nil)
	requireProblem(t, r, 500, "plugin-error")
	require.Equal(t, "plugin", r.str("source"))
	// Unknown paths and wrong methods stay problems.
	requireProblem(t, b.do("GET", "/api/v1/nothing-here", a.learner, nil), 404, "not-found")
	requireProblem(t, b.do("DELETE", "/api/v1/probe/noop", a.learner, nil), 405, "method-not-allowed")

	// The OpenAPI document covers the plugin's routes.
	doc := b.do("GET", "/api/openapi.json", "", nil)
	require.Equal(t, 200, doc.Status)
	require.NotNil(t, doc.get("paths", "/api/v1/probe/items", "post"), "plugin route in OpenAPI")
	require.Equal(t, "probe.item.write", doc.str("paths", "/api/v1/probe/items", "post", "x-permission"))
	require.NotNil(t, doc.get("paths", "/api/v1/tenant/plugins", "get"))

	// Operators see the plugin running.
	op := b.operator()
	r = b.do("GET", "/api/v1/plugins", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "probe", r.str("items", "0", "name"))
	require.Equal(t, "running", r.str("items", "0", "state"))
	require.Equal(t, "1.0.0", r.str("items", "0", "version"))
	require.NotZero(t, r.get("items", "0", "pid"))
	requireProblem(t, b.do("GET", "/api/v1/plugins", a.admin, nil), 403, "operator-required")

	// Host services over the broker: tenant config, decisions, audit.
	r = b.do("GET", "/api/v1/probe/host", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("enabled"))
	require.Equal(t, true, r.get("may_write_own"))
	require.Equal(t, false, r.get("may_read_foreign"), "a resource of another tenant is denied")
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM kernel.audit_log WHERE action = 'probe.item.inspected' AND tenant_id = $1", a.id).Scan(&n))
	require.Equal(t, 1, n)

	// The plugin's decisions about an API key follow its creator's rights
	// too: once the admin role no longer writes items, neither does the
	// admin's key, in the route check and in the plugin's own question.
	r = b.do("POST", "/api/v1/tenant/apikeys", a.admin, map[string]any{"name": "probe", "permissions": []string{"probe.item.read", "probe.item.write"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	key := r.str("key")
	r = b.do("GET", "/api/v1/probe/host", key, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("may_write_own"), "%s", r.Raw)
	r = b.do("GET", "/api/v1/tenant/roles", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	var adminPerms []string
	for _, role := range r.items() {
		if role["name"] == "admin" {
			for _, perm := range role["permissions"].([]any) {
				if perm != "probe.item.write" {
					adminPerms = append(adminPerms, perm.(string))
				}
			}
		}
	}
	require.Equal(t, 200, b.do("PUT", "/api/v1/tenant/roles/admin", a.admin, map[string]any{"permissions": adminPerms}).Status)
	r = b.do("GET", "/api/v1/probe/host", key, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, false, r.get("may_write_own"), "%s", r.Raw)
	requireProblem(t, b.do("POST", "/api/v1/probe/items", key, map[string]any{"name": "x"}), 403, "permission-denied")
}
