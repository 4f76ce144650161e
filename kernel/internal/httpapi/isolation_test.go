package httpapi_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// adminPermissions are every permission the built-in admin role holds.
var adminPermissions = []string{
	"audit.log.read", "identity.apikey.create", "identity.apikey.read", "identity.apikey.revoke",
	"tenancy.member.invite", "tenancy.member.read", "tenancy.member.remove", "tenancy.member.update",
	"tenancy.role.manage", "tenancy.role.read", "tenancy.settings.read", "tenancy.settings.update",
}

// tenantRows is everything stored about one tenant, as text, read straight
// from the database.
func (b *testBundle) tenantRows(tenantID string) string {
	b.t.Helper()
	ctx := context.Background()
	queries := []string{
		`SELECT slug, name, self_signup, mfa_required_roles, updated_at FROM kernel.tenants WHERE id = $1`,
		`SELECT user_id, roles, updated_at FROM kernel.memberships WHERE tenant_id = $1 ORDER BY user_id`,
		`SELECT u.id, u.email, u.display_name, u.password_hash, u.updated_at FROM kernel.users u
			JOIN kernel.memberships m ON m.user_id = u.id WHERE m.tenant_id = $1 ORDER BY u.id`,
		`SELECT name, description, permissions, builtin, updated_at FROM kernel.roles WHERE tenant_id = $1 ORDER BY name`,
		`SELECT id, name, permissions, expires_at, revoked_at FROM kernel.api_keys WHERE tenant_id = $1 ORDER BY id`,
		`SELECT id, email, roles, expires_at, accepted_at, revoked_at FROM kernel.invitations WHERE tenant_id = $1 ORDER BY id`,
		`SELECT l.id, l.seq, l.actor_type, p.actor_id, l.action, p.target, l.request_id, l.hash FROM kernel.audit_log l
			LEFT JOIN kernel.audit_personal p ON p.entry_id = l.id WHERE l.chain = $1::text ORDER BY l.seq`,
	}
	var sb strings.Builder
	for _, q := range queries {
		rows, err := b.pool.Query(ctx, q, tenantID)
		require.NoError(b.t, err, q)
		for rows.Next() {
			vals, err := rows.Values()
			require.NoError(b.t, err)
			fmt.Fprintf(&sb, "%v\n", vals)
		}
		require.NoError(b.t, rows.Err())
		rows.Close()
		sb.WriteString("--\n")
	}
	return sb.String()
}

// auditEntries reads a tenant's whole audit log through the API.
func (b *testBundle) auditEntries(token string) []map[string]any {
	b.t.Helper()
	var out []map[string]any
	path := "/api/v1/tenant/audit?limit=100"
	for path != "" {
		r := b.do("GET", path, token, nil)
		require.Equal(b.t, 200, r.Status, "%s", r.Raw)
		out = append(out, r.items()...)
		path = ""
		if c := r.str("next_cursor"); c != "" {
			path = "/api/v1/tenant/audit?limit=100&cursor=" + url.QueryEscape(c)
		}
	}
	return out
}

func emailsOf(r response) []string {
	var out []string
	for _, m := range r.items() {
		out = append(out, m["email"].(string))
	}
	return out
}

// TestTenantIsolation: a user of tenant A can do nothing to tenant B's
// members, roles, keys or audit log, whatever IDs they send.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.institution("a")
	bb := b.institution("b")
	ctx := context.Background()

	// B has a custom role held by its learner, an API key and a pending invitation.
	r := b.do("PUT", "/api/v1/tenant/roles/examiner", bb.admin, map[string]any{"description": "B's examiners", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("PUT", "/api/v1/tenant/members/"+bb.learnerID+"/roles", bb.admin, map[string]any{"roles": []string{"learner", "examiner"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/tenant/apikeys", bb.admin, map[string]any{"name": "b-sync", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	bKeyID, bKey := r.str("id"), r.str("key")
	r = b.do("POST", "/api/v1/tenant/invitations", bb.admin, map[string]any{"email": "newcomer@b.test", "roles": []string{"instructor"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	bInvID, bInvToken := r.str("id"), r.str("token")
	var bInstructorID string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT id FROM kernel.users WHERE email = 'instructor@b.test'`).Scan(&bInstructorID))

	// B's key sees B's members only, whatever it claims.
	bMembers := b.do("GET", "/api/v1/tenant/members", bb.admin, nil)
	require.ElementsMatch(t, []string{"admin@b.test", "instructor@b.test", "learner@b.test"}, emailsOf(bMembers))
	for _, hdr := range [][]string{nil, {"X-Tenant-ID", a.id}} {
		r = b.do("GET", "/api/v1/tenant/members?tenant_id="+a.id, bKey, nil, hdr...)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		require.ElementsMatch(t, emailsOf(bMembers), emailsOf(r))
	}
	requireProblem(t, b.do("GET", "/api/v1/tenant/members/"+a.adminID, bKey, nil), 404, "not-found")
	r = b.do("GET", "/api/v1/me", bKey, nil)
	require.Equal(t, bb.id, r.str("tenant", "id"), "%s", r.Raw)

	// A's admin makes an all-powerful key of its own, to attack with too.
	r = b.do("POST", "/api/v1/tenant/apikeys", a.admin, map[string]any{"name": "a-ops", "permissions": adminPermissions})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	aKeyID, aKey := r.str("id"), r.str("key")

	beforeRows := b.tenantRows(bb.id)
	beforeAPI := map[string]string{}
	views := []string{"/api/v1/tenant", "/api/v1/tenant/members", "/api/v1/tenant/roles", "/api/v1/tenant/apikeys", "/api/v1/tenant/invitations", "/api/v1/tenant/audit?limit=100"}
	for _, v := range views {
		r := b.do("GET", v, bb.admin, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		beforeAPI[v] = string(r.Raw)
	}

	members := "/api/v1/tenant/members/"
	attacks := []struct {
		name    string
		method  string
		path    string
		body    any
		headers []string
		status  int
		code    string
		field   string
		keyCode string // the code answered to an API key, when it differs
	}{
		{name: "read B's admin", method: "GET", path: members + bb.adminID, status: 404, code: "not-found"},
		{name: "read B's learner, upper-case ID", method: "GET", path: members + strings.ToUpper(bb.learnerID), status: 404, code: "not-found"},
		{name: "read B's member naming B", method: "GET", path: members + bb.learnerID + "?tenant_id=" + bb.id, headers: []string{"X-Tenant-ID", bb.id}, status: 404, code: "not-found"},
		{name: "make B's learner admin", method: "PUT", path: members + bb.learnerID + "/roles", body: map[string]any{"roles": []string{"admin"}}, status: 404, code: "not-found"},
		{name: "demote B's admin", method: "PUT", path: members + bb.adminID + "/roles", body: map[string]any{"roles": []string{"learner"}}, status: 404, code: "not-found"},
		{name: "give B's learner B's role", method: "PUT", path: members + bb.learnerID + "/roles", body: map[string]any{"roles": []string{"examiner"}}, status: 422, code: "invalid-request", field: "roles.0"},
		{name: "remove B's admin", method: "DELETE", path: members + bb.adminID, status: 404, code: "not-found"},
		{name: "remove B's instructor", method: "DELETE", path: members + bInstructorID, status: 404, code: "not-found"},
		{name: "revoke B's key", method: "DELETE", path: "/api/v1/tenant/apikeys/" + bKeyID, status: 404, code: "not-found"},
		{name: "revoke B's invitation", method: "DELETE", path: "/api/v1/tenant/invitations/" + bInvID, status: 404, code: "not-found"},
		{name: "delete B's role", method: "DELETE", path: "/api/v1/tenant/roles/examiner", status: 404, code: "not-found"},
		{name: "read B as a tenant", method: "GET", path: "/api/v1/tenants/" + bb.id, status: 403, code: "operator-required"},
		{name: "list tenants", method: "GET", path: "/api/v1/tenants", status: 403, code: "operator-required"},
		{name: "platform audit", method: "GET", path: "/api/v1/admin/audit", status: 403, code: "operator-required"},
		{name: "settings naming B", method: "PATCH", path: "/api/v1/tenant", body: map[string]any{"tenant_id": bb.id, "self_signup": true}, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "invite naming B", method: "POST", path: "/api/v1/tenant/invitations", body: map[string]any{"email": "spy@b.test", "roles": []string{"admin"}, "tenant_id": bb.id}, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "key naming B", method: "POST", path: "/api/v1/tenant/apikeys", body: map[string]any{"name": "x", "permissions": []string{"tenancy.member.read"}, "tenant_id": bb.id}, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "role naming B", method: "PUT", path: "/api/v1/tenant/roles/examiner", body: map[string]any{"permissions": []string{}, "tenant_id": bb.id}, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "roles naming B", method: "PUT", path: members + bb.learnerID + "/roles", body: map[string]any{"roles": []string{"admin"}, "tenant_id": bb.id}, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "switch to B", method: "POST", path: "/api/v1/auth/switch", body: map[string]any{"tenant": "b"}, status: 403, code: "not-a-member", keyCode: "user-required"},
		{name: "accept B's invitation", method: "POST", path: "/api/v1/me/invitations/accept", body: map[string]any{"token": bInvToken}, status: 403, code: "invitation-email-mismatch", keyCode: "user-required"},
	}
	attackers := []struct{ name, token string }{{"admin", a.admin}, {"apikey", aKey}}
	n := 0
	for _, who := range attackers {
		for _, tc := range attacks {
			t.Run(who.name+"/"+tc.name, func(t *testing.T) {
				n++
				headers := append([]string{"X-Request-ID", fmt.Sprintf("attack-%d", n)}, tc.headers...)
				r := b.do(tc.method, tc.path, who.token, tc.body, headers...)
				code := tc.code
				if who.name == "apikey" && tc.keyCode != "" {
					code = tc.keyCode
				}
				requireProblem(t, r, tc.status, code)
				if tc.field != "" {
					require.Equal(t, tc.field, problemField(r, 0), "%s", r.Raw)
				}
			})
		}
	}

	// Asking for B in a header or the query string still answers about A.
	smuggle := []string{"X-Tenant-ID", bb.id}
	r = b.do("GET", "/api/v1/tenant?tenant_id="+bb.id, a.admin, nil, smuggle...)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, a.id, r.str("id"))
	r = b.do("GET", "/api/v1/tenant/members?tenant_id="+bb.id, a.admin, nil, smuggle...)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.ElementsMatch(t, []string{"admin@a.test", "instructor@a.test", "learner@a.test"}, emailsOf(r))
	r = b.do("GET", "/api/v1/tenant/apikeys?tenant_id="+bb.id, aKey, nil, smuggle...)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 1)
	require.Equal(t, aKeyID, r.items()[0]["id"])
	r = b.do("GET", "/api/v1/tenant/invitations?tenant_id="+bb.id, a.admin, nil, smuggle...)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Empty(t, r.items())
	r = b.do("GET", "/api/v1/tenant/roles?tenant_id="+bb.id, a.admin, nil, smuggle...)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	for _, role := range r.items() {
		require.NotEqual(t, "examiner", role["name"], "B's custom role is visible in A")
	}
	for _, e := range append(b.auditEntries(a.admin), b.do("GET", "/api/v1/tenant/audit?tenant_id="+bb.id, aKey, nil, smuggle...).items()...) {
		require.Equal(t, a.id, e["tenant_id"], "entry %v", e)
	}
	requireProblem(t, b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "admin@a.test", "password": password, "tenant": "b"}), 403, "not-a-member")

	// A acts in its own tenant with B's names: it all lands in A.
	r = b.do("PUT", "/api/v1/tenant/roles/examiner", a.admin, map[string]any{"permissions": []string{"tenancy.settings.read"}}, "X-Request-ID", "attack-own-role")
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("PATCH", "/api/v1/tenant", aKey, map[string]any{"name": "Renamed A"}, "X-Request-ID", "attack-own-settings", "X-Tenant-ID", bb.id)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, a.id, r.str("id"))

	// B is exactly as it was, in the database and through B's own admin.
	require.Equal(t, beforeRows, b.tenantRows(bb.id))
	for _, v := range views {
		r := b.do("GET", v, bb.admin, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		require.JSONEq(t, beforeAPI[v], string(r.Raw), "B's %s changed", v)
	}
	bAudit := b.auditEntries(bb.admin)
	require.NotEmpty(t, bAudit)
	for _, e := range bAudit {
		require.Equal(t, bb.id, e["tenant_id"], "entry %v", e)
		require.NotContains(t, []any{a.adminID, aKeyID}, e["actor_id"], "A's actor in B's audit: %v", e)
		require.False(t, strings.HasPrefix(fmt.Sprint(e["request_id"]), "attack-"), "A's request in B's audit: %v", e)
	}
	r = b.do("GET", "/api/v1/tenant/audit/verify", bb.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("valid"), "%s", r.Raw)

	// ...and A's own actions are in A's audit.
	var ownRole, ownSettings bool
	for _, e := range b.auditEntries(a.admin) {
		ownRole = ownRole || e["request_id"] == "attack-own-role"
		ownSettings = ownSettings || e["request_id"] == "attack-own-settings"
	}
	require.True(t, ownRole && ownSettings, "A's own changes are missing from A's audit")

	// B's key and B's invitation still work.
	r = b.do("GET", "/api/v1/tenant/members", bKey, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "newcomer@b.test", "password": password, "display_name": "New", "invitation_token": bInvToken})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
}
