package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
)

// govPlugin is the test plugin declaring the privileged capabilities.
var govPlugin = variant{name: "govt", version: "1.0.0", caps: "storage,retention,grants,sign"}

// TestPrivilegedCapabilitiesNeedTheOperator: a plugin whose manifest
// declares a privileged capability its block in plugins.hcl does not
// allow is refused, with an error naming the capability and the fix; with
// the allowance it runs; a plugin without the capability is refused the
// host call (403 through its route).
func TestPrivilegedCapabilitiesNeedTheOperator(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t,
		pluginBlock{variant: variant{name: "greedy", version: "1.0.0", caps: "retention,sign"}, allow: `"retention"`},
		pluginBlock{variant: govPlugin, allow: `"retention", "grants", "sign"`},
		pluginBlock{variant: probe})
	op := b.operator()
	var st map[string]map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st = map[string]map[string]any{}
		for _, it := range b.do("GET", "/api/v1/plugins", op, nil).items() {
			st[it["name"].(string)] = it
		}
		assert.Equal(c, "failed", st["greedy"]["state"])
		assert.Equal(c, "running", st["govt"]["state"])
		assert.Equal(c, "running", st["probe"]["state"])
	}, patience, 100*time.Millisecond)
	msg := fmt.Sprint(st["greedy"]["last_error"])
	require.Contains(t, msg, `capability "sign" is privileged and the operator has not allowed it to plugin "greedy"`)
	require.Contains(t, msg, `capabilities = ["sign"]`)
	require.NotContains(t, msg, `"retention" is privileged`, "the allowed one is not named")

	a := b.institution("uni")
	for _, path := range []string{"/api/v1/probe/gov/retention", "/api/v1/probe/gov/grants"} {
		r := b.do("GET", path, a.admin, nil)
		require.Equal(t, 403, r.Status, "%s: %s", path, r.Raw)
		require.Contains(t, r.str("detail"), "does not declare the capability")
	}
	r := b.do("POST", "/api/v1/probe/gov/sign", a.admin, map[string]any{"purpose": "probe.x", "payload": "x"})
	require.Equal(t, 403, r.Status, "%s", r.Raw)
}

// TestRetentionThroughTheKernel: a plugin with the capability lists the
// retention classes of the plugins enabled for its institution and has
// one applied: the dry run counts what the execution then deletes, only in
// that institution; a disabled plugin, an unknown class, a bad request and
// a failing plugin are reported as errors, never as an empty result.
func TestRetentionThroughTheKernel(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: govPlugin, allow: `"retention", "grants", "sign"`}, pluginBlock{variant: probe})
	a, other := b.institution("uni"), b.institution("other")
	ctx := context.Background()
	old := time.Now().AddDate(-2, 0, 0)
	for _, in := range []struct {
		tenant, user string
		at           time.Time
		n            int
	}{{a.id, a.learnerID, old, 25}, {a.id, a.instructorID, old, 4}, {a.id, a.learnerID, time.Now(), 3}, {other.id, other.learnerID, old, 9}} {
		_, err := b.pool.Exec(ctx, `INSERT INTO plugin_probe.notes (tenant_id, user_id, body, written_at) SELECT $1, $2, 'note', $3 FROM generate_series(1, $4)`,
			in.tenant, in.user, in.at, in.n)
		require.NoError(t, err)
	}
	notes := func(tenant string) int {
		return b.count(`SELECT count(*) FROM plugin_probe.notes WHERE tenant_id = $1`, tenant)
	}

	r := b.do("GET", "/api/v1/govt/gov/retention", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	var listed []string
	for _, c := range r.get("classes").([]any) {
		m := c.(map[string]any)
		listed = append(listed, m["plugin"].(string)+"."+m["name"].(string))
	}
	require.Equal(t, []string{"govt.notes", "probe.notes"}, listed)

	cutoff := time.Now().AddDate(-1, 0, 0).UTC().Format(time.RFC3339)
	req := map[string]any{"plugin": "probe", "class": "notes", "cutoff": cutoff, "action": "delete", "dry_run": true, "sample_limit": 5,
		"holds": []map[string]any{{"kind": "person", "id": a.instructorID}}}
	dry := b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, dry.Status, "%s", dry.Raw)
	require.EqualValues(t, 25, dry.get("matched"))
	require.Len(t, dry.get("sample_ids"), 5)
	require.Equal(t, 32, notes(a.id), "a dry run changes nothing")
	req["dry_run"] = false
	run := b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, run.Status, "%s", run.Raw)
	require.Equal(t, dry.get("matched"), run.get("affected"), "the execution deletes what the dry run counted")
	require.Equal(t, 7, notes(a.id), "the held person's and the recent notes stay")
	require.Equal(t, 9, notes(other.id), "another institution's notes are untouched")

	// Another institution's ID in the request is still only that
	// institution's rows: the plugin's transaction is scoped to it.
	req["tenant_id"] = other.id
	req["holds"] = []map[string]any{{"kind": "tenant"}}
	held := b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, held.Status, "%s", held.Raw)
	require.EqualValues(t, 0, held.get("affected"), "a tenant hold suspends everything")
	require.Equal(t, 9, notes(other.id))
	delete(req, "tenant_id")
	delete(req, "holds")

	for name, c := range map[string]struct {
		change map[string]any
		status int
		detail string
	}{
		"unknown class":  {map[string]any{"class": "ghosts"}, 404, `no retention class "ghosts"`},
		"unknown plugin": {map[string]any{"plugin": "nobody"}, 404, `no plugin "nobody"`},
		"bad action":     {map[string]any{"action": "shred"}, 422, `action "shred"`},
		"bad hold":       {map[string]any{"holds": []map[string]any{{"kind": "planet", "id": "x"}}}, 422, `hold kind "planet"`},
		"no cutoff":      {map[string]any{"cutoff": "0001-01-01T00:00:00Z"}, 422, "a cutoff is required"},
		"future cutoff":  {map[string]any{"cutoff": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}, 422, "is in the future"},
	} {
		body := map[string]any{}
		for k, v := range req {
			body[k] = v
		}
		for k, v := range c.change {
			body[k] = v
		}
		r := b.do("POST", "/api/v1/govt/gov/retention", a.admin, body)
		require.Equal(t, c.status, r.Status, "%s: %s", name, r.Raw)
		require.Contains(t, r.str("detail"), c.detail, name)
	}

	// A failing plugin's error is the call's error.
	require.Equal(t, 204, b.do("POST", "/api/v1/probe/gov/fail-retention", a.admin, map[string]any{"fail": true}).Status)
	r = b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 500, r.Status, "%s", r.Raw)
	require.Equal(t, 204, b.do("POST", "/api/v1/probe/gov/fail-retention", a.admin, map[string]any{"fail": false}).Status)

	// Disabled for the institution: not listed, not applied.
	require.Equal(t, 200, b.do("PUT", "/api/v1/tenant/plugins/probe", a.admin, map[string]any{"enabled": false}).Status)
	r = b.do("GET", "/api/v1/govt/gov/retention", a.admin, nil)
	require.Len(t, r.get("classes"), 1, "%s", r.Raw)
	r = b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 404, r.Status, "%s", r.Raw)
	require.Contains(t, r.str("detail"), "not enabled for the institution")
}

// TestGrantsAndSignaturesThroughTheKernel: the grants of an institution,
// with orphans (an API key of a removed member, a custom role nobody
// holds), through the host service and the kernel's own route; a
// revocation needs the acting member to hold the permission and what the
// grant gives, and is audited; a signature verifies offline against the
// published key set, not after tampering, and never passes as an access
// token.
func TestGrantsAndSignaturesThroughTheKernel(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: govPlugin, allow: `"retention", "grants", "sign"`})
	a, other := b.institution("uni"), b.institution("other")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	key := ok(b.do("POST", "/api/v1/tenant/apikeys", a.admin, map[string]any{"name": "sync", "permissions": []string{"tenancy.member.read"}}), 201)
	_, err := b.pool.Exec(context.Background(), `UPDATE kernel.api_keys SET created_by = $1 WHERE id = $2`, a.instructorID, key.str("id"))
	require.NoError(t, err)
	ok(b.do("DELETE", "/api/v1/tenant/members/"+a.instructorID, a.admin, nil), 204)
	ok(b.do("PUT", "/api/v1/tenant/roles/log_reader", a.admin, map[string]any{"description": "Reads the log", "permissions": []string{"audit.log.read"}}), 200)

	grants := func(token string) map[string]map[string]any {
		t.Helper()
		r := ok(b.do("GET", "/api/v1/govt/gov/grants", token, nil), 200)
		out := map[string]map[string]any{}
		for _, g := range r.get("grants").([]any) {
			m := g.(map[string]any)
			out[m["kind"].(string)+":"+m["id"].(string)] = m
		}
		return out
	}
	gs := grants(a.admin)
	require.Contains(t, gs, "membership:"+a.adminID)
	require.Contains(t, gs, "role:"+a.learnerID+"/learner")
	require.NotContains(t, gs, "membership:"+a.instructorID, "a removed member holds nothing")
	require.NotContains(t, gs, "membership:"+other.adminID, "another institution's members are not listed")
	k := gs["api_key:"+key.str("id")]
	require.Equal(t, true, k["orphan"], "%v", k)
	require.Contains(t, k["orphan_reason"], "no longer a member")
	require.Equal(t, true, gs["custom_role:log_reader"]["orphan"])
	require.Equal(t, false, gs["membership:"+a.adminID]["orphan"])

	// The kernel's own route, permission-checked.
	rest := ok(b.do("GET", "/api/v1/tenant/grants", a.admin, nil), 200)
	require.Len(t, rest.items(), len(gs))
	ok(b.do("GET", "/api/v1/tenant/grants", a.learner, nil), 403)
	// Paged two at a time in (kind, id) order, the pages hold each grant once.
	var paged []string
	for cursor := ""; ; {
		page := ok(b.do("GET", "/api/v1/tenant/grants?limit=2"+cursor, a.admin, nil), 200)
		require.LessOrEqual(t, len(page.items()), 2)
		for _, g := range page.items() {
			paged = append(paged, g["kind"].(string)+":"+g["id"].(string))
		}
		if page.str("next_cursor") == "" {
			break
		}
		cursor = "&cursor=" + page.str("next_cursor")
	}
	require.Len(t, paged, len(gs))
	require.True(t, slices.IsSorted(paged), "%v", paged)
	for _, g := range paged {
		require.Contains(t, gs, g)
	}
	// Filters: orphans only, one kind, one member's.
	orphans := ok(b.do("GET", "/api/v1/tenant/grants?orphan=true", a.admin, nil), 200).items()
	require.NotEmpty(t, orphans)
	for _, g := range orphans {
		require.Equal(t, true, g["orphan"], "%v", g)
	}
	keys := ok(b.do("GET", "/api/v1/tenant/grants?kind=api_key", a.admin, nil), 200).items()
	require.NotEmpty(t, keys)
	for _, g := range keys {
		require.Equal(t, "api_key", g["kind"], "%v", g)
	}
	mine := ok(b.do("GET", "/api/v1/tenant/grants?user_id="+a.learnerID, a.admin, nil), 200).items()
	require.NotEmpty(t, mine)
	for _, g := range mine {
		require.Equal(t, a.learnerID, g["user_id"], "%v", g)
	}
	for _, q := range []string{"kind=owner", "orphan=maybe", "user_id=nobody", "cursor=bogus"} {
		r := b.do("GET", "/api/v1/tenant/grants?"+q, a.admin, nil)
		require.Equal(t, 422, r.Status, "%s: %s", q, r.Raw)
	}

	// Revocation: the learner may not; the admin may, and it is audited.
	revoke := map[string]any{"kind": "api_key", "id": key.str("id"), "reason": "access review: orphan"}
	r := ok(b.do("POST", "/api/v1/govt/gov/revoke", a.learner, revoke), 403)
	require.Contains(t, r.str("detail"), "identity.apikey.revoke")
	ok(b.do("POST", "/api/v1/govt/gov/revoke", a.admin, revoke), 204)
	require.NotContains(t, grants(a.admin), "api_key:"+key.str("id"), "verified by listing again")
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.api_keys WHERE id = $1 AND revoked_at IS NOT NULL`, key.str("id")))
	var found bool
	for _, e := range b.auditEntries(a.admin) {
		if e["action"] == "identity.apikey.revoked" && strings.Contains(fmt.Sprint(e["data"]), "govt") {
			found = true
		}
	}
	require.True(t, found, "the revocation is in the audit log, naming the plugin")
	ok(b.do("POST", "/api/v1/govt/gov/revoke", a.admin, map[string]any{"kind": "membership", "id": other.learnerID}), 404)
	ok(b.do("POST", "/api/v1/govt/gov/revoke", a.admin, map[string]any{"kind": "membership", "id": a.adminID}), 409) // the last admin
	ok(b.do("POST", "/api/v1/govt/gov/revoke", a.admin, map[string]any{"kind": "custom_role", "id": "log_reader"}), 204)
	ok(b.do("POST", "/api/v1/govt/gov/revoke", a.admin, map[string]any{"kind": "planet", "id": "x"}), 422)

	// A custom role holding a permission the admin lacks cannot be revoked
	// by that admin: nobody revokes beyond what they hold.
	_, err = b.pool.Exec(context.Background(), `INSERT INTO kernel.roles (tenant_id, name, permissions) VALUES ($1, 'super', '{platform.tenant.create}')`, a.id)
	require.NoError(t, err)
	r = ok(b.do("POST", "/api/v1/govt/gov/revoke", a.admin, map[string]any{"kind": "custom_role", "id": "super"}), 403)
	require.Contains(t, r.str("detail"), "nobody revokes beyond what they hold")

	// Signatures.
	payload := `{"execution":"2026-12-01","deleted":25}`
	sig := ok(b.do("POST", "/api/v1/govt/gov/sign", a.admin, map[string]any{"purpose": "govt.retention.execution", "payload": payload}), 200)
	jwks := ok(b.do("GET", "/.well-known/jwks.json", "", nil), 200).Raw
	s := sdk.Signature{KeyID: sig.str("key_id"), Algorithm: sig.str("algorithm"), JWS: sig.str("jws")}
	claims, err := sdk.VerifySignature(jwks, s, []byte(payload))
	require.NoError(t, err)
	require.Equal(t, "govt", claims.Plugin)
	require.Equal(t, "govt.retention.execution", claims.Purpose)
	_, err = sdk.VerifySignature(jwks, s, []byte(strings.Replace(payload, "25", "26", 1)))
	require.ErrorIs(t, err, sdk.ErrSignature, "a tampered payload fails")
	forged := s
	parts := strings.Split(s.JWS, ".")
	var c map[string]any
	require.NoError(t, json.Unmarshal(mustB64(t, parts[1]), &c))
	c["purpose"] = "govt.other"
	cb, _ := json.Marshal(c)
	forged.JWS = parts[0] + "." + b64(cb) + "." + parts[2]
	_, err = sdk.VerifySignature(jwks, forged, []byte(payload))
	require.ErrorIs(t, err, sdk.ErrSignature, "changed claims fail")
	r = b.do("GET", "/api/v1/tenant", s.JWS, nil)
	require.Equal(t, 401, r.Status, "a signature is not an access token: %s", r.Raw)
	ok(b.do("POST", "/api/v1/govt/gov/sign", a.admin, map[string]any{"purpose": "kernel.token", "payload": payload}), 422)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

// TestLifecycleEventsForGovernance: a completed export and a completed
// erasure publish privacy.export.completed.v1 and
// privacy.erasure.completed.v1, the latter with each step's counts per
// plugin and table; neither names the person.
func TestLifecycleEventsForGovernance(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastPrivacy, pluginBlock{variant: probe})
	a := b.institution("uni")
	b.coolOff(a.admin, 0)
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/notes", a.learner, map[string]any{"body": "Sits by the window."}).Status)
	r := b.do("POST", "/api/v1/me/data-export", a.learner, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	export := r.str("id")
	b.waitFor("/api/v1/me/data-exports/"+export, a.learner, "ready")
	r = b.do("POST", "/api/v1/tenant/members/"+a.learnerID+"/erasure", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	erasure := r.str("id")
	b.waitFor("/api/v1/tenant/erasures/"+erasure, a.admin, "completed")

	event := func(typ string) map[string]any {
		t.Helper()
		var raw string
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			err := b.pool.QueryRow(context.Background(), `SELECT data::text FROM kernel.events WHERE type = $1 AND tenant_id = $2`, typ, a.id).Scan(&raw)
			assert.NoError(c, err)
		}, patience, 50*time.Millisecond)
		require.NotContains(t, raw, a.learnerID, "the event does not name the person")
		require.NotContains(t, raw, "learner@uni.test", "the event does not name the person")
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &m))
		return m
	}
	ex := event("privacy.export.completed.v1")
	require.Equal(t, export, ex["export_id"])
	er := event("privacy.erasure.completed.v1")
	require.Equal(t, erasure, er["erasure_id"])
	steps := map[string][]any{}
	for _, s := range er["steps"].([]any) {
		st := s.(map[string]any)
		steps[st["step"].(string)] = st["counts"].([]any)
	}
	require.Contains(t, steps, "kernel:access")
	require.Contains(t, steps, "kernel:data")
	probeCounts := fmt.Sprint(steps["plugin:probe"])
	require.Contains(t, probeCounts, "table:notes", "%v", er)
	require.Contains(t, probeCounts, "deleted:1")
}

// TestTelemetryRetentionThroughTheKernel: the real telemetry plugin,
// asked through the kernel by a plugin holding the capability, drops the
// day partitions holding only the institution's expired statements and
// deletes its statements from a day it shares with another institution,
// whose statements stay; the dry run counted what went.
func TestTelemetryRetentionThroughTheKernel(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: govPlugin, allow: `"retention", "grants", "sign"`}, pluginBlock{variant: telemetryPlugin})
	a, other := b.institution("uni"), b.institution("other")
	ctx := context.Background()
	day := func(ago int) time.Time {
		return time.Now().UTC().AddDate(0, 0, -ago).Truncate(24 * time.Hour).Add(6 * time.Hour)
	}
	for _, ago := range []int{61, 60} {
		_, err := b.pool.Exec(ctx, `SELECT plugin_telemetry.ensure_statement_partitions($1::date, 1)`, day(ago).Format(time.DateOnly))
		require.NoError(t, err)
	}
	seed := func(tenant string, at time.Time, n int) {
		_, err := b.pool.Exec(ctx, `INSERT INTO plugin_telemetry.statements
			(tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, purpose, policy_version, source, raw)
			SELECT $1, $2, gen_random_uuid(), gen_random_uuid(), $2, 'http://adlnet.gov/expapi/verbs/experienced', 'lesson', 'analytics', 1, 'test', '{}'
			FROM generate_series(1, $3)`, tenant, at, n)
		require.NoError(t, err)
	}
	seed(a.id, day(61), 40)     // a's only: dropped
	seed(a.id, day(60), 15)     // shared: a's rows deleted
	seed(other.id, day(60), 12) // and the other's kept
	partition := func(ago int) bool {
		var found bool
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, "plugin_telemetry.statements_"+day(ago).Format("20060102")).Scan(&found))
		return found
	}
	req := map[string]any{"plugin": "telemetry", "class": "statements", "cutoff": time.Now().AddDate(0, 0, -30).UTC().Format(time.RFC3339), "action": "delete", "dry_run": true}
	dry := b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, dry.Status, "%s", dry.Raw)
	require.EqualValues(t, 55, dry.get("matched"))
	req["dry_run"] = false
	run := b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, run.Status, "%s", run.Raw)
	require.Equal(t, dry.get("matched"), run.get("affected"))
	require.False(t, partition(61), "the institution's own expired day is dropped whole")
	require.True(t, partition(60), "a day shared with another institution stays")
	require.Equal(t, 0, b.count(`SELECT count(*) FROM plugin_telemetry.statements WHERE tenant_id = $1`, a.id))
	require.Equal(t, 12, b.count(`SELECT count(*) FROM plugin_telemetry.statements WHERE tenant_id = $1`, other.id))
}

// TestMessagingRetentionThroughTheKernel: the real messaging plugin, asked
// through the kernel, deletes an institution's expired posts with their
// comments, and nothing of another institution's.
func TestMessagingRetentionThroughTheKernel(t *testing.T) {
	t.Parallel()
	catcher := startSMTPCatcher(t)
	cfg := fmt.Sprintf(`{ smtp_host = %q, smtp_port = %d, smtp_security = "none" }`, catcher.host, catcher.port)
	b, _ := withPlugins(t, pluginBlock{variant: govPlugin, allow: `"retention", "grants", "sign"`}, pluginBlock{variant: messagingPlugin, config: cfg})
	a, other := b.institution("uni"), b.institution("other")
	ctx := context.Background()
	seed := func(tenant string, at time.Time, n int) {
		_, err := b.pool.Exec(ctx, `
			WITH s AS (
				INSERT INTO plugin_messaging.spaces (tenant_id, id, kind, course_id, title, created_at)
				VALUES ($1, gen_random_uuid(), 'course', gen_random_uuid(), 'Old', $2) RETURNING id
			), p AS (
				INSERT INTO plugin_messaging.posts (tenant_id, id, space_id, author_id, kind, body, body_text, created_at)
				SELECT $1, gen_random_uuid(), s.id, gen_random_uuid(), 'post', 'x', 'x', $2 FROM s, generate_series(1, $3) RETURNING id
			)
			INSERT INTO plugin_messaging.comments (tenant_id, id, post_id, author_id, body, body_text, created_at)
			SELECT $1, gen_random_uuid(), p.id, gen_random_uuid(), 'y', 'y', $2 FROM p`, tenant, at, n)
		require.NoError(t, err)
	}
	old := time.Now().AddDate(-2, 0, 0)
	seed(a.id, old, 30)
	seed(a.id, time.Now(), 4)
	seed(other.id, old, 9)
	req := map[string]any{"plugin": "messaging", "class": "posts", "cutoff": time.Now().AddDate(-1, 0, 0).UTC().Format(time.RFC3339), "action": "delete", "dry_run": true}
	dry := b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, dry.Status, "%s", dry.Raw)
	require.EqualValues(t, 30, dry.get("matched"))
	req["dry_run"] = false
	run := b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, run.Status, "%s", run.Raw)
	require.Equal(t, dry.get("matched"), run.get("affected"))
	require.Equal(t, 4, b.count(`SELECT count(*) FROM plugin_messaging.posts WHERE tenant_id = $1`, a.id))
	require.Equal(t, 4, b.count(`SELECT count(*) FROM plugin_messaging.comments WHERE tenant_id = $1`, a.id))
	require.Equal(t, 9, b.count(`SELECT count(*) FROM plugin_messaging.posts WHERE tenant_id = $1`, other.id))
	require.Equal(t, 9, b.count(`SELECT count(*) FROM plugin_messaging.comments WHERE tenant_id = $1`, other.id))

	// Archived instead: the posts are read back through the kernel, from
	// the list to the signed URL, by the admin only.
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	seed(a.id, old, 12)
	req["action"] = "archive"
	run = b.do("POST", "/api/v1/govt/gov/retention", a.admin, req)
	require.Equal(t, 200, run.Status, "%s", run.Raw)
	require.EqualValues(t, 12, run.get("affected"))
	list := ok(b.do("GET", "/api/v1/messaging/archives", a.admin, nil), 200)
	require.Len(t, list.items(), 1, "%s", list.Raw)
	key := list.items()[0]["key"].(string)
	ok(b.do("GET", "/api/v1/messaging/archives", a.learner, nil), 403)
	require.Empty(t, ok(b.do("GET", "/api/v1/messaging/archives", other.admin, nil), 200).items())
	ok(b.do("GET", "/api/v1/messaging/archives/download?key="+url.QueryEscape(key), other.admin, nil), 404)
	dl := ok(b.do("GET", "/api/v1/messaging/archives/download?key="+url.QueryEscape(key), a.admin, nil), 200)
	got := b.do("GET", dl.str("url"), "", nil)
	require.Equal(t, 200, got.Status, "%s", got.Raw)
	zr, err := gzip.NewReader(bytes.NewReader(got.Raw))
	require.NoError(t, err)
	lines, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, 12, strings.Count(string(lines), "\n"))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'messaging.archive.downloaded'`, a.id))
}
