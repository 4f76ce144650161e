package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
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
	require.Nil(t, r.get("checks"), "checks are for operators (TestReadyzShowsChecksToOperatorsOnly)")

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

// TestOpenAPIDocument checks the kernel's part of /api/openapi.json against
// the route table, and the properties a generated client relies on: every
// route documented once with its permission, security said on every
// operation, typed parameters, problem answers by status, and success
// schemas that are components with required properties and no untyped
// ones. (TestOpenAPILint runs a linter on it; every answer the tests get is
// checked against it by testBundle.do.)
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("GET", "/api/openapi.json", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	doc, err := openapi3.NewLoader().LoadFromData(r.Raw)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	require.Regexp(t, `^3\.0\.\d+$`, doc.OpenAPI)
	require.NotEmpty(t, doc.Info.Title)
	require.NotEmpty(t, doc.Servers)
	tags := map[string]bool{}
	for _, tag := range doc.Tags {
		require.NotEmpty(t, tag.Description, "tag %s", tag.Name)
		tags[tag.Name] = true
	}

	routes := b.kernel.API.Routes()
	require.NotEmpty(t, routes)
	param := regexp.MustCompile(`:([a-z_]+)`)
	ids := map[string]bool{}
	for _, route := range routes {
		name := route.Method + " " + route.Path
		item := doc.Paths.Value(param.ReplaceAllString(route.Path, "{$1}"))
		require.NotNil(t, item, "%s is missing from the document", name)
		op := item.GetOperation(route.Method)
		require.NotNil(t, op, "%s has no operation", name)
		require.False(t, ids[op.OperationID], "%s: operationId %s is not unique", name, op.OperationID)
		ids[op.OperationID] = true
		require.Len(t, op.Tags, 1, name)
		require.True(t, tags[op.Tags[0]], "%s: tag %s is not declared", name, op.Tags[0])
		if route.Access == httpapi.TenantScoped || route.Access == httpapi.Platform {
			require.Equal(t, route.Permission, op.Extensions["x-permission"], name)
		}
		require.NotNil(t, op.Security, "%s: security is not said", name)
		if route.Access == httpapi.Public {
			require.Empty(t, *op.Security, "%s is public", name)
		} else {
			require.Equal(t, openapi3.SecurityRequirements{{"bearer": []string{}}}, *op.Security, "%s needs credentials", name)
			require.NotNil(t, op.Responses.Status(401), "%s: 401 undocumented", name)
		}
		require.NotNil(t, op.Responses.Default(), "%s: problem responses", name)
		if route.Request != nil {
			require.NotNil(t, op.RequestBody, name)
			require.Equal(t, !route.BodyOptional, op.RequestBody.Value.Required, name)
			for _, st := range []int{400, 413, 415, 422} {
				require.NotNil(t, op.Responses.Status(st), "%s: %d undocumented", name, st)
			}
		}
		for _, st := range []int{400, 401, 403, 404, 409, 410, 413, 415, 422, 429} {
			if resp := op.Responses.Status(st); resp != nil {
				require.Equal(t, "#/components/responses/"+strings.ReplaceAll(http.StatusText(st), " ", ""), resp.Ref, "%s: %d is the shared problem answer", name, st)
			}
		}
		for _, m := range param.FindAllStringSubmatch(route.Path, -1) {
			p := op.Parameters.GetByInAndName("path", m[1])
			require.NotNil(t, p, "%s: path parameter %s is undocumented", name, m[1])
			s := p.Schema.Value
			switch {
			case m[1] == "delivery_id":
				require.True(t, s.Type.Is("integer"), "%s: %s", name, m[1])
			case strings.HasSuffix(m[1], "_id"):
				require.Equal(t, "uuid", s.Format, "%s: %s is a UUID", name, m[1])
			default:
				require.True(t, s.Type.Is("string"), "%s: %s", name, m[1])
			}
		}
		if limit := op.Parameters.GetByInAndName("query", "limit"); limit != nil {
			s := limit.Schema.Value
			require.True(t, s.Type.Is("integer"), name)
			require.Equal(t, 1.0, *s.Min, name)
			require.Equal(t, 100.0, *s.Max, name)
			require.True(t, op.Parameters.GetByInAndName("query", "cursor").Schema.Value.Type.Is("string"), name)
		}
		ok := op.Responses.Status(route.Status)
		require.NotNil(t, ok, "%s: success status %d", name, route.Status)
		if route.Response == nil {
			require.Empty(t, ok.Value.Content, name)
			continue
		}
		require.NotEmpty(t, ok.Value.Content, "%s documents its body", name)
		for ct, media := range ok.Value.Content {
			s := media.Schema
			if ct != "application/json" || s.Value.Type.Is("object") && s.Value.Properties == nil {
				continue // metrics (text), this document (any object)
			}
			if s.Value.Type.Is("object") && s.Ref == "" { // a page: its items are components
				require.Contains(t, s.Value.Required, "items", name)
				s = s.Value.Properties["items"].Value.Items
			}
			require.True(t, strings.HasPrefix(s.Ref, "#/components/schemas/"), "%s: the body is a named component, not %s", name, s.Ref)
			require.NotEmpty(t, s.Value.Required, "%s: %s requires nothing", name, s.Ref)
			requireTyped(t, name+" "+s.Ref, s.Value, map[*openapi3.Schema]bool{})
		}
	}
	// And nothing is documented that the server does not serve.
	documented := 0
	for _, item := range doc.Paths.Map() {
		documented += len(item.Operations())
	}
	require.Equal(t, len(routes), documented)
}

// requireTyped fails on a property whose schema says nothing (a client
// types it unknown) or is nullable without a type.
func requireTyped(t *testing.T, where string, s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	t.Helper()
	if seen[s] {
		return
	}
	seen[s] = true
	for name, p := range s.Properties {
		v := p.Value
		require.False(t, v.Type == nil && len(v.AllOf) == 0 && len(v.OneOf) == 0 && len(v.AnyOf) == 0, "%s: property %s has no type", where, name)
		require.False(t, v.Nullable && v.Type == nil, "%s: property %s is nullable with no type", where, name)
		for _, sub := range append(openapi3.SchemaRefs{v.Items}, v.AllOf...) {
			if sub != nil {
				requireTyped(t, where+"."+name, sub.Value, seen)
			}
		}
		requireTyped(t, where+"."+name, v, seen)
	}
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

	// Filters: an action, a family of them, an actor, a target, a time range.
	only := func(query string) []map[string]any {
		t.Helper()
		r := b.do("GET", "/api/v1/tenant/audit?"+query, acme.admin, nil)
		require.Equal(t, 200, r.Status, "%s: %s", query, r.Raw)
		return r.items()
	}
	got := only("action=tenancy.role.updated")
	require.Len(t, got, 1)
	require.Equal(t, "grader", got[0]["target"])
	for _, e := range only("action=tenancy.") {
		require.True(t, strings.HasPrefix(e["action"].(string), "tenancy."), "%v", e)
	}
	require.Len(t, only("action=tenancy.member."), 1+len(only("action=tenancy.member.joined")))
	require.Empty(t, only("action=tenancy.role"), "an action without its final dot is matched exactly")
	mine := only("actor_type=user&actor_id=" + acme.adminID)
	require.GreaterOrEqual(t, len(mine), 4)
	for _, e := range mine {
		require.Equal(t, acme.adminID, e["actor_id"])
	}
	require.Empty(t, only("actor_id="+acme.learnerID))
	got = only("target=" + acme.learnerID + "&action=tenancy.member.roles_changed")
	require.Len(t, got, 1)
	require.Equal(t, "audit-roles", got[0]["request_id"])
	at := items[1]["created_at"].(string)
	require.Equal(t, items[2]["id"], only("to=" + url.QueryEscape(at))[0]["id"], "written before to")
	since := only("from=" + url.QueryEscape(at))
	require.Len(t, since, 2, "written at or after from")
	require.Equal(t, items[1]["id"], since[1]["id"])
	for _, q := range []string{"action=Tenancy", "action=a..b", "actor_type=robot", "from=yesterday", "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
		"target=" + strings.Repeat("x", 501)} {
		r := b.do("GET", "/api/v1/tenant/audit?"+q, acme.admin, nil)
		require.Equal(t, 422, r.Status, "%s: %s", q, r.Raw)
	}

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
