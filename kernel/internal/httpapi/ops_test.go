package httpapi_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/httpapi"
)

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.do("GET", "/healthz", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "ok", r.str("status"))

	r = b.do("GET", "/readyz", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "ok", r.str("status"))
	require.Equal(t, "ok", r.str("checks", "database"))

	require.Equal(t, 201, b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "m@example.edu", "password": password, "display_name": "M"}).Status)
	tok := b.login("m@example.edu", "")
	require.Equal(t, 200, b.do("GET", "/api/v1/me", tok, nil).Status)
	require.Equal(t, 403, b.do("GET", "/api/v1/tenant/members/not-a-uuid", tok, nil).Status)
	require.Equal(t, 404, b.do("GET", "/no/such/route", "", nil).Status)

	r = b.do("GET", "/metrics", "", nil)
	require.Equal(t, 200, r.Status)
	require.Contains(t, r.Header.Get("Content-Type"), "text/plain")
	m := string(r.Raw)
	require.Contains(t, m, "# TYPE edulure_http_requests_total counter")
	require.Contains(t, m, `edulure_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1`)
	require.Contains(t, m, `edulure_http_requests_total{method="POST",route="/api/v1/auth/signup",status="201"} 1`)
	// Routes are labelled by template, never by the raw path.
	require.Contains(t, m, `edulure_http_requests_total{method="GET",route="/api/v1/tenant/members/:user_id",status="403"} 1`)
	require.NotContains(t, m, "not-a-uuid")
	require.NotContains(t, m, "/no/such/route")
	require.Contains(t, m, "edulure_http_request_duration_seconds_bucket")
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("GET", "/api/openapi.json", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Info    struct{ Title, Version string }       `json:"info"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.Raw, &doc))
	require.Regexp(t, `^3\.\d+\.\d+$`, doc.OpenAPI)
	require.NotEmpty(t, doc.Info.Title)

	routes := b.kernel.API.Routes()
	require.NotEmpty(t, routes)
	param := regexp.MustCompile(`:([a-z_]+)`)
	operations := 0
	for _, route := range routes {
		path := param.ReplaceAllString(route.Path, "{$1}")
		item, ok := doc.Paths[path]
		require.True(t, ok, "route %s %s is missing from the document as %s", route.Method, route.Path, path)
		raw, ok := item[strings.ToLower(route.Method)]
		require.True(t, ok, "route %s %s has no %s operation", route.Method, route.Path, route.Method)
		var op struct {
			Permission string                      `json:"x-permission"`
			Security   []map[string]any            `json:"security"`
			Responses  map[string]json.RawMessage  `json:"responses"`
			Parameters []struct{ Name, In string } `json:"parameters"`
		}
		require.NoError(t, json.Unmarshal(raw, &op))
		operations++
		if route.Access == httpapi.TenantScoped || route.Access == httpapi.Platform {
			require.Equal(t, route.Permission, op.Permission, "%s %s", route.Method, route.Path)
		}
		if route.Access != httpapi.Public {
			require.NotEmpty(t, op.Security, "%s %s needs credentials but does not say so", route.Method, route.Path)
		}
		require.Contains(t, op.Responses, "default", "%s %s: problem responses", route.Method, route.Path)
		for _, m := range param.FindAllStringSubmatch(route.Path, -1) {
			found := false
			for _, p := range op.Parameters {
				found = found || (p.Name == m[1] && p.In == "path")
			}
			require.True(t, found, "%s %s: path parameter %s is undocumented", route.Method, route.Path, m[1])
		}
	}
	// And nothing is documented that the server does not serve.
	documented := 0
	for _, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented++
			}
		}
	}
	require.Equal(t, operations, documented)
}

func TestRequestIDAndSecureHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name   string
		sent   string
		echoed bool
	}{
		{name: "well formed", sent: "client-req.123:abc_9", echoed: true},
		{name: "with spaces", sent: "has spaces in it"},
		{name: "non-ASCII", sent: "abc\u00e9"},
		{name: "too long", sent: strings.Repeat("a", 129)},
		{name: "none", sent: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.sent != "" {
				headers = []string{"X-Request-ID", tc.sent}
			}
			// A problem answer carries the same ID as the header.
			r := b.do("GET", "/api/v1/me", "", nil, headers...)
			require.Equal(t, 401, r.Status)
			got := r.Header.Get("X-Request-ID")
			if tc.echoed {
				require.Equal(t, tc.sent, got)
			} else {
				require.NotEqual(t, tc.sent, got)
				require.Regexp(t, `^[0-9a-f-]{36}$`, got)
			}
			require.Equal(t, got, r.str("request_id"))
		})
	}

	for _, path := range []string{"/healthz", "/api/v1/me", "/api/v1/nothing"} {
		r := b.do("GET", path, "", nil)
		require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"), path)
		require.Equal(t, "DENY", r.Header.Get("X-Frame-Options"), path)
		require.Equal(t, "no-referrer", r.Header.Get("Referrer-Policy"), path)
		require.Contains(t, r.Header.Get("Content-Security-Policy"), "default-src 'none'", path)
	}
	// Without configured origins there is no CORS at all.
	r := b.do("OPTIONS", "/api/v1/me", "", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "GET")
	require.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))
}

func TestCORS(t *testing.T) {
	t.Parallel()
	b := setup(t, "EDULURE_CORS_ORIGINS", "https://app.example")
	tests := []struct {
		name   string
		origin string
		allow  string
	}{
		{name: "configured origin", origin: "https://app.example", allow: "https://app.example"},
		{name: "other origin", origin: "https://evil.example", allow: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("OPTIONS", "/api/v1/tenant/invitations", "", nil,
				"Origin", tc.origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "Authorization, Content-Type, Idempotency-Key")
			require.Less(t, r.Status, 300, "%s", r.Raw)
			require.Equal(t, tc.allow, r.Header.Get("Access-Control-Allow-Origin"))
			if tc.allow != "" {
				require.Contains(t, r.Header.Get("Access-Control-Allow-Methods"), "POST")
				require.Contains(t, strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "idempotency-key")
			}
		})
	}
	// A simple request from the origin is allowed and can read the request ID.
	r := b.do("GET", "/healthz", "", nil, "Origin", "https://app.example")
	require.Equal(t, 200, r.Status)
	require.Equal(t, "https://app.example", r.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, r.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID")
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.institution("acme")
	body := map[string]any{"email": "once@acme.test", "roles": []string{"learner"}}
	countInvitations := func(email string) int {
		var n int
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.invitations WHERE email = $1`, email).Scan(&n))
		return n
	}

	first := b.do("POST", "/api/v1/tenant/invitations", acme.admin, body, "Idempotency-Key", "inv-1")
	require.Equal(t, 201, first.Status, "%s", first.Raw)
	require.Empty(t, first.Header.Get("Idempotent-Replayed"))
	again := b.do("POST", "/api/v1/tenant/invitations", acme.admin, body, "Idempotency-Key", "inv-1")
	require.Equal(t, 201, again.Status, "%s", again.Raw)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, first.str("id"), again.str("id"))
	require.Equal(t, first.str("token"), again.str("token"))
	require.Equal(t, "application/json", strings.Split(again.Header.Get("Content-Type"), ";")[0])
	require.Equal(t, 1, countInvitations("once@acme.test"))

	// The same key for another request is refused and writes nothing.
	other := map[string]any{"email": "twice@acme.test", "roles": []string{"learner"}}
	requireProblem(t, b.do("POST", "/api/v1/tenant/invitations", acme.admin, other, "Idempotency-Key", "inv-1"), 422, "idempotency-key-reused")
	require.Zero(t, countInvitations("twice@acme.test"))

	// Keys belong to their caller: another admin's same key is a new request.
	r := b.do("PUT", "/api/v1/tenant/members/"+acme.learnerID+"/roles", acme.admin, map[string]any{"roles": []string{"admin"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/tenant/invitations", acme.learner, other, "Idempotency-Key", "inv-1")
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Empty(t, r.Header.Get("Idempotent-Replayed"))
	require.Equal(t, 1, countInvitations("twice@acme.test"))

	// A failed request frees its key.
	bad := map[string]any{"email": "nope", "roles": []string{"learner"}}
	requireProblem(t, b.do("POST", "/api/v1/tenant/invitations", acme.admin, bad, "Idempotency-Key", "inv-2"), 422, "invalid-request")
	requireProblem(t, b.do("POST", "/api/v1/tenant/invitations", acme.admin, bad, "Idempotency-Key", "inv-2"), 422, "invalid-request")
	r = b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": "later@acme.test", "roles": []string{"learner"}}, "Idempotency-Key", "inv-2")
	require.Equal(t, 201, r.Status, "%s", r.Raw)

	requireProblem(t, b.do("POST", "/api/v1/tenant/invitations", acme.admin, body, "Idempotency-Key", strings.Repeat("k", 256)), 400, "bad-idempotency-key")
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.institution("acme")
	ctx := context.Background()

	// Some admin actions.
	r := b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": "new@acme.test", "roles": []string{"learner"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	invID := r.str("id")
	r = b.do("PUT", "/api/v1/tenant/roles/grader", acme.admin, map[string]any{"permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("PUT", "/api/v1/tenant/members/"+acme.learnerID+"/roles", acme.admin, map[string]any{"roles": []string{"grader"}}, "X-Request-ID", "audit-roles")
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("PATCH", "/api/v1/tenant", acme.admin, map[string]any{"name": "Acme University"})
	require.Equal(t, 200, r.Status, "%s", r.Raw)

	r = b.do("GET", "/api/v1/tenant/audit", acme.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	items := r.items()
	require.GreaterOrEqual(t, len(items), 4)
	var actions []string
	for _, e := range items[:4] {
		actions = append(actions, e["action"].(string))
		require.Equal(t, "user", e["actor_type"])
		require.Equal(t, acme.adminID, e["actor_id"])
		require.Equal(t, acme.id, e["tenant_id"])
	}
	require.Equal(t, []string{"tenancy.settings.updated", "tenancy.member.roles_changed", "tenancy.role.updated", "tenancy.invitation.created"}, actions)
	require.Equal(t, invID, items[3]["target"])
	require.Equal(t, acme.learnerID, items[1]["target"])
	require.Equal(t, "audit-roles", items[1]["request_id"])
	require.Equal(t, []any{"grader"}, items[1]["data"].(map[string]any)["roles"])
	require.Equal(t, []any{"learner"}, items[1]["data"].(map[string]any)["previous_roles"])
	for i := 1; i < len(items); i++ {
		require.Greater(t, items[i-1]["seq"].(float64), items[i]["seq"].(float64), "newest first")
	}
	// Paging walks the same entries.
	r = b.do("GET", "/api/v1/tenant/audit?limit=2", acme.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 2)
	r = b.do("GET", "/api/v1/tenant/audit?limit=2&cursor="+r.str("next_cursor"), acme.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, items[2]["id"], r.items()[0]["id"])
	requireProblem(t, b.do("GET", "/api/v1/tenant/audit", acme.instructor, nil), 403, "permission-denied")

	r = b.do("GET", "/api/v1/tenant/audit/verify", acme.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("valid"), "%s", r.Raw)
	require.Equal(t, float64(len(items)), r.get("entries"))
	require.Nil(t, r.get("broken_at_seq"))

	// The table is append-only, even for its owner.
	_, err := b.pool.Exec(ctx, `UPDATE kernel.audit_log SET action = 'x'`)
	require.ErrorContains(t, err, "append-only")
	_, err = b.pool.Exec(ctx, `DELETE FROM kernel.audit_log WHERE tenant_id = $1`, acme.id)
	require.ErrorContains(t, err, "append-only")
	_, err = b.pool.Exec(ctx, `TRUNCATE kernel.audit_log`)
	require.ErrorContains(t, err, "append-only")

	// A superuser who switches the trigger off can tamper, but verification
	// finds the row.
	var seq int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT seq FROM kernel.audit_log WHERE chain = $1 AND action = 'tenancy.member.roles_changed'`, acme.id).Scan(&seq))
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `ALTER TABLE kernel.audit_log DISABLE TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	tag, err := tx.Exec(ctx, `UPDATE kernel.audit_log SET action = 'tenancy.member.removed' WHERE chain = $1 AND seq = $2`, acme.id, seq)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	_, err = tx.Exec(ctx, `ALTER TABLE kernel.audit_log ENABLE TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, err = b.pool.Exec(ctx, `UPDATE kernel.audit_log SET action = 'x'`)
	require.ErrorContains(t, err, "append-only", "the trigger is back on")

	r = b.do("GET", "/api/v1/tenant/audit/verify", acme.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, false, r.get("valid"), "%s", r.Raw)
	require.Equal(t, float64(seq), r.get("broken_at_seq"), "%s", r.Raw)
	require.Equal(t, "entry content does not match its hash", r.str("reason"))

	// The personal values live beside the chain (erasure empties them), each
	// bound to its entry by a commitment the entry's hash covers: changing
	// one is found too.
	tx, err = b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `ALTER TABLE kernel.audit_log DISABLE TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE kernel.audit_log SET action = 'tenancy.member.roles_changed' WHERE chain = $1 AND seq = $2`, acme.id, seq)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `ALTER TABLE kernel.audit_log ENABLE TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	tag, err = b.pool.Exec(ctx, `UPDATE kernel.audit_personal SET data = jsonb_set(data, '{roles}', '["admin"]')
		WHERE entry_id = (SELECT id FROM kernel.audit_log WHERE chain = $1 AND seq = $2)`, acme.id, seq)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	r = b.do("GET", "/api/v1/tenant/audit/verify", acme.admin, nil)
	require.Equal(t, false, r.get("valid"), "%s", r.Raw)
	require.Equal(t, float64(seq), r.get("broken_at_seq"), "%s", r.Raw)
	require.Equal(t, "personal value data does not match its commitment", r.str("reason"))
	// Other chains are untouched.
	r = b.do("GET", "/api/v1/admin/audit/verify", b.operator(), nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("valid"), "%s", r.Raw)
}
