package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A secret setting (the test plugin's api_key, secret:"true") is sealed at
// rest, kept when other settings change, replaced or cleared only when
// asked, delivered to the plugin inside its configuration (Request.Config,
// sdk.Config, Host.TenantConfig), and never shown: not in any API answer,
// audit entry, event, log line or database column.
func TestPluginSecretSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Values no test could produce by chance, so finding one anywhere is a
	// leak.
	operatorKey, s1, s2, s3 := secretValue("op"), secretValue("s1"), secretValue("s2"), secretValue("s3")
	tooLong := secretValue("bad") + strings.Repeat("z", 100)
	const badNumber = 918273645012
	leaks := []string{operatorKey, s1, s2, s3, tooLong, fmt.Sprint(badNumber)}
	opFile := filepath.Join(dir, "probe_api_key")
	require.NoError(t, os.WriteFile(opFile, []byte(operatorKey+"\n"), 0o600))

	logs := &lockedBuffer{}
	var out io.Writer = logs
	if testing.Verbose() {
		out = io.MultiWriter(logs, os.Stderr)
	}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: out, JSONFormat: true})
	file := writePluginsFile(t, "", pluginBlock{variant: probe, config: fmt.Sprintf(`{ api_key = file(%q) }`, opFile)})
	b := setupLogged(t, logger, "EDULURE_PLUGINS_FILE", file)
	b.allow5xx = true
	op := b.operator()
	a, c := b.institution("alpha"), b.institution("beta")

	var answers []response // every API answer, scanned at the end
	do := func(method, path, token string, body any) response {
		t.Helper()
		r := b.do(method, path, token, body)
		answers = append(answers, r)
		return r
	}
	probeView := func(r response) response {
		t.Helper()
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		for _, it := range r.items() {
			if it["name"] == "probe" {
				return response{Status: 200, Body: it}
			}
		}
		t.Fatalf("no probe plugin in %s", r.Raw)
		return response{}
	}
	echo := func(tb *testBundle, token string) response {
		t.Helper()
		r := tb.do("GET", "/api/v1/probe/echo/1", token, nil)
		answers = append(answers, r)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		return r
	}
	put := func(body map[string]any) response {
		t.Helper()
		return do("PUT", "/api/v1/tenant/plugins/probe", a.admin, body)
	}

	// Unset: the view says so, the schema marks it writeOnly, and the
	// plugin reads the operator's key (from file()).
	v := probeView(do("GET", "/api/v1/tenant/plugins", a.admin, nil))
	require.Equal(t, map[string]any{"set": false}, v.get("secrets", "api_key"))
	require.Equal(t, true, v.get("config_schema", "properties", "api_key", "writeOnly"))
	r := echo(b, a.learner)
	require.Equal(t, digest(operatorKey), r.str("api_key_sha256"))
	require.Equal(t, digest(operatorKey), r.str("operator_api_key_sha256"))
	require.Empty(t, r.str("api_key_given"))

	// Set: shown as set with its time, delivered to the plugin.
	before := time.Now().Add(-time.Minute)
	r = put(map[string]any{"enabled": true, "config": map[string]any{"greeting": "hi", "api_key": s1}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, map[string]any{"greeting": "hi"}, r.get("config"))
	require.Equal(t, true, r.get("secrets", "api_key", "set"))
	changedAt := r.str("secrets", "api_key", "changed_at")
	changed1, err := time.Parse(time.RFC3339Nano, changedAt)
	require.NoError(t, err)
	require.True(t, changed1.After(before))
	r = echo(b, a.learner)
	require.Equal(t, digest(s1), r.str("api_key_sha256"), "sdk.Config: the institution's key over the operator's")
	require.Equal(t, digest(s1), r.str("api_key_given"), "Request.Config")
	require.Equal(t, map[string]any{"greeting": "hi"}, r.get("config"))
	r = do("GET", "/api/v1/probe/host", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, digest(s1), r.str("api_key_given"), "Host.TenantConfig")
	require.Equal(t, digest(operatorKey), echo(b, c.learner).str("api_key_sha256"), "beta's setting is its own")

	// Other settings change, or none is sent: the secret stays.
	r = put(map[string]any{"enabled": true, "config": map[string]any{"greeting": "hey"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, changedAt, r.str("secrets", "api_key", "changed_at"), "not changed")
	require.Equal(t, 200, put(map[string]any{"enabled": false}).Status)
	require.Equal(t, 200, put(map[string]any{"enabled": true, "config": nil}).Status)
	r = echo(b, a.learner)
	require.Equal(t, digest(s1), r.str("api_key_sha256"))
	require.Equal(t, "hey", r.str("config", "greeting"))

	// Refused values are named, never repeated, and change nothing.
	r = put(map[string]any{"enabled": true, "config": map[string]any{"greeting": "x", "api_key": tooLong}})
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "config.api_key", r.str("errors", "0", "field"), "%s", r.Raw)
	r = put(map[string]any{"enabled": true, "config": map[string]any{"api_key": badNumber}})
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "config.api_key", r.str("errors", "0", "field"), "%s", r.Raw)
	r = echo(b, a.learner)
	require.Equal(t, digest(s1), r.str("api_key_sha256"))
	require.Equal(t, "hey", r.str("config", "greeting"))

	// Replaced by a new value.
	r = put(map[string]any{"enabled": true, "config": map[string]any{"greeting": "hey", "api_key": s2}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	changed2, err := time.Parse(time.RFC3339Nano, r.str("secrets", "api_key", "changed_at"))
	require.NoError(t, err)
	require.False(t, changed2.Before(changed1))
	require.Equal(t, digest(s2), echo(b, a.learner).str("api_key_sha256"))

	// Cleared explicitly: the operator's key applies again.
	r = put(map[string]any{"enabled": true, "config": map[string]any{"greeting": "hey", "api_key": nil}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, map[string]any{"set": false}, r.get("secrets", "api_key"))
	r = echo(b, a.learner)
	require.Equal(t, digest(operatorKey), r.str("api_key_sha256"))
	require.Empty(t, r.str("api_key_given"))

	// Set again; a second replica on the database reads it too.
	require.Equal(t, 200, put(map[string]any{"enabled": true, "config": map[string]any{"greeting": "hey", "api_key": s3}}).Status)
	require.Equal(t, digest(s3), echo(b, a.learner).str("api_key_sha256"))
	replica := b.replica(file)
	require.Equal(t, digest(s3), echo(replica, a.learner).str("api_key_sha256"))

	// Every other answer that could show it.
	ctx := context.Background()
	do("GET", "/api/v1/tenant/plugins", a.admin, nil)
	do("GET", "/api/v1/tenant/plugins", c.admin, nil)
	do("GET", "/api/v1/plugins", op, nil)
	do("GET", "/api/openapi.json", "", nil)
	r = do("GET", "/api/v1/tenant/audit", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Contains(t, string(r.Raw), `"secrets_set":["api_key"]`, "the audit entry names the secret, not its value")
	require.Contains(t, string(r.Raw), `"secrets_cleared":["api_key"]`)
	do("GET", "/api/v1/admin/audit", op, nil)
	require.Equal(t, 200, do("GET", "/api/v1/events", a.admin, nil).Status)
	do("GET", "/api/v1/events/deliveries", a.admin, nil)
	do("GET", "/api/v1/events", op, nil)
	for _, ans := range answers {
		for _, s := range leaks {
			require.NotContains(t, string(ans.Raw), s, "an API answer shows a secret")
		}
	}
	// No table of any schema (kernel, plugins, jobs) holds one in clear.
	requireNowhereInDatabase(t, b, leaks...)

	// Sealed, and bound to its institution: alpha's sealed value copied to
	// beta does not open (a 500 whose log line holds no value).
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM kernel.tenant_plugin_secrets WHERE tenant_id = $1 AND plugin = 'probe' AND name = 'api_key'", a.id).Scan(&n))
	require.Equal(t, 1, n)
	_, err = b.pool.Exec(ctx, `INSERT INTO kernel.tenant_plugins (tenant_id, plugin, enabled) VALUES ($1, 'probe', true)`, c.id)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO kernel.tenant_plugin_secrets (tenant_id, plugin, name, sealed)
		SELECT $1, plugin, name, sealed FROM kernel.tenant_plugin_secrets WHERE tenant_id = $2`, c.id, a.id)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "SELECT pg_notify('edulure_changes', $1)", "plugins:"+c.id)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r := b.do("GET", "/api/v1/probe/echo/1", c.learner, nil)
		answers = append(answers, r)
		return r.Status == 500
	}, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, logs.String(), `opening secret setting \"api_key\" of plugin \"probe\"`)

	for _, s := range leaks {
		require.NotContains(t, logs.String(), s, "a log line shows a secret")
	}
}

// requireNowhereInDatabase scans every text, JSON, array and bytea column
// of every table for the values.
func requireNowhereInDatabase(t *testing.T, b *testBundle, values ...string) {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `
		SELECT c.table_schema, c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
		WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
		  AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY', 'USER-DEFINED')`)
	require.NoError(t, err)
	type column struct{ schema, table, name, typ string }
	var cols []column
	var col column
	_, err = pgx.ForEachRow(rows, []any{&col.schema, &col.table, &col.name, &col.typ}, func() error {
		cols = append(cols, col)
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, len(cols), 20, "the scan sees the tables")
	scanned := map[string]bool{}
	for _, c := range cols {
		id := pgx.Identifier{c.schema, c.table}.Sanitize()
		colID := pgx.Identifier{c.name}.Sanitize()
		scanned[c.schema] = true
		for _, v := range values {
			q := `SELECT count(*) FROM ` + id + ` WHERE strpos(` + colID + `::text, $1) > 0`
			arg := any(v)
			if c.typ == "bytea" {
				q = `SELECT count(*) FROM ` + id + ` WHERE position($1::bytea IN ` + colID + `) > 0`
				arg = []byte(v)
			}
			var n int
			require.NoError(t, b.pool.QueryRow(ctx, q, arg).Scan(&n), "%s.%s", id, colID)
			require.Zero(t, n, "column %s.%s holds a secret in clear", id, colID)
		}
	}
	require.True(t, scanned["kernel"] && scanned["plugin_probe"], "scanned schemas: %v", scanned)
}

// secretValue is a value that appears nowhere unless it leaks.
func secretValue(tag string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "sk_" + tag + "_" + hex.EncodeToString(b)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A secret setting written as a value in plugins.hcl refuses the plugin;
// neither the refusal (state, last error, log) nor any other answer
// repeats a configuration value.
func TestPluginSecretLiteralRefused(t *testing.T) {
	t.Parallel()
	literal, long := secretValue("literal"), secretValue("greeting")
	logs := &lockedBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs, JSONFormat: true})
	file := writePluginsFile(t, "", pluginBlock{variant: probe, config: fmt.Sprintf("{\n    greeting = %q\n    api_key  = %q\n  }", long, literal)})
	b := setupLogged(t, logger, "EDULURE_PLUGINS_FILE", file)
	b.allow5xx = true
	op := b.operator()
	r := b.do("GET", "/api/v1/plugins", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "failed", r.str("items", "0", "state"), "%s", r.Raw)
	lastError := r.str("items", "0", "last_error")
	require.Contains(t, lastError, file+":8,5: config.api_key: is a secret setting: write env(\"VARIABLE\") or file(\"/path/to/secret\")")
	require.Contains(t, lastError, "config.greeting: must be at most 10 characters long")
	for _, s := range []string{literal, long} {
		require.NotContains(t, string(r.Raw), s)
		require.NotContains(t, logs.String(), s)
	}
	require.Contains(t, logs.String(), "plugin refused")
}
