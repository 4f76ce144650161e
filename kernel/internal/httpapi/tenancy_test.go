package httpapi_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// signup creates an account through the API and returns the response.
func (b *testBundle) signupVia(email string, extra map[string]any) response {
	b.t.Helper()
	body := map[string]any{"email": email, "password": password, "display_name": "Someone"}
	for k, v := range extra {
		body[k] = v
	}
	return b.do("POST", "/api/v1/auth/signup", "", body)
}

// usersWithEmail counts user rows with an email (case-insensitive).
func (b *testBundle) usersWithEmail(email string) int {
	b.t.Helper()
	var n int
	require.NoError(b.t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.users WHERE lower(email) = lower($1)`, email).Scan(&n))
	return n
}

// problemField is the field named by a problem's i-th field error.
func problemField(r response, i int) string {
	errs, _ := r.get("errors").([]any)
	if i >= len(errs) {
		return ""
	}
	f, _ := errs[i].(map[string]any)["field"].(string)
	return f
}

// rolesByEmail maps each listed member's email to its roles.
func rolesByEmail(t *testing.T, r response) map[string][]any {
	t.Helper()
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	out := map[string][]any{}
	for _, m := range r.items() {
		roles, _ := m["roles"].([]any)
		out[m["email"].(string)] = roles
	}
	return out
}

func TestOperatorCreatesTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	op := b.operator()

	r := b.do("POST", "/api/v1/tenants", op, map[string]any{"slug": "uni", "name": "University", "admin_email": "dean@uni.test"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, "uni", r.str("slug"))
	require.Nil(t, r.get("admin"), "nobody has the email yet, so no admin member: %s", r.Raw)
	tok := r.str("admin_invitation", "token")
	require.NotEmpty(t, tok, "%s", r.Raw)
	require.Equal(t, "dean@uni.test", r.str("admin_invitation", "email"))
	require.Equal(t, []any{"admin"}, r.get("admin_invitation", "roles"))

	// The dean signs up with the invitation and is the admin.
	r = b.signupVia("dean@uni.test", map[string]any{"invitation_token": tok})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	ms, _ := r.get("memberships").([]any)
	require.Len(t, ms, 1, "%s", r.Raw)
	require.Equal(t, "uni", ms[0].(map[string]any)["slug"])
	require.Equal(t, []any{"admin"}, ms[0].(map[string]any)["roles"])
	dean := b.login("dean@uni.test", "uni")
	roles := rolesByEmail(t, b.do("GET", "/api/v1/tenant/members", dean, nil))
	require.Equal(t, map[string][]any{"dean@uni.test": {"admin"}}, roles)

	// An existing account becomes admin at once.
	r = b.do("POST", "/api/v1/tenants", op, map[string]any{"slug": "college", "name": "College", "admin_email": "dean@uni.test"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Nil(t, r.get("admin_invitation"), "%s", r.Raw)
	require.Equal(t, "dean@uni.test", r.str("admin", "email"))
	require.Equal(t, []any{"admin"}, r.get("admin", "roles"))

	tests := []struct {
		name   string
		token  string
		body   map[string]any
		status int
		code   string
	}{
		{name: "duplicate slug", token: op, body: map[string]any{"slug": "uni", "name": "Again"}, status: 409, code: "slug-taken"},
		{name: "not an operator", token: dean, body: map[string]any{"slug": "mine", "name": "Mine"}, status: 403, code: "operator-required"},
		{name: "no token", token: "", body: map[string]any{"slug": "mine", "name": "Mine"}, status: 401, code: "missing-credentials"},
		{name: "bad slug", token: op, body: map[string]any{"slug": "Not A Slug", "name": "X"}, status: 422, code: "invalid-request"},
		{name: "bad admin email", token: op, body: map[string]any{"slug": "ok", "name": "X", "admin_email": "nope"}, status: 422, code: "invalid-request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireProblem(t, b.do("POST", "/api/v1/tenants", tc.token, tc.body), tc.status, tc.code)
		})
	}
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.tenants`).Scan(&n))
	require.Equal(t, 2, n, "only uni and college exist")
}

func TestInvitations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.institution("acme")

	// The admin invites a teaching assistant as instructor.
	r := b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": "ta@acme.test", "roles": []string{"instructor"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	taToken := r.str("token")
	require.NotEmpty(t, taToken)
	require.Equal(t, "pending", r.str("status"))
	require.Equal(t, []any{"instructor"}, r.get("roles"))
	require.Equal(t, acme.adminID, r.str("invited_by"))

	// The TA signs up with the token, logs in to acme and is listed.
	r = b.signupVia("ta@acme.test", map[string]any{"invitation_token": taToken})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	ta := b.login("ta@acme.test", "acme")
	r = b.do("GET", "/api/v1/tenant/members", acme.admin, nil)
	require.Equal(t, map[string][]any{
		"admin@acme.test":      {"admin"},
		"instructor@acme.test": {"instructor"},
		"learner@acme.test":    {"learner"},
		"ta@acme.test":         {"instructor"},
	}, rolesByEmail(t, r))
	r = b.do("GET", "/api/v1/me/permissions", ta, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"instructor"}, r.get("roles"))
	require.Contains(t, r.get("permissions"), "tenancy.member.read")

	t.Run("existing member", func(t *testing.T) {
		r := b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": "LEARNER@acme.test", "roles": []string{"instructor"}})
		requireProblem(t, r, 409, "already-member")
	})

	t.Run("unknown role", func(t *testing.T) {
		r := b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": "x@acme.test", "roles": []string{"wizard"}})
		requireProblem(t, r, 422, "invalid-request")
		require.Equal(t, "roles.0", problemField(r, 0))
	})

	t.Run("not allowed to invite", func(t *testing.T) {
		r := b.do("POST", "/api/v1/tenant/invitations", acme.learner, map[string]any{"email": "x@acme.test", "roles": []string{"learner"}})
		requireProblem(t, r, 403, "permission-denied")
	})

	t.Run("wrong user accepts", func(t *testing.T) {
		r := b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": "grace@acme.test", "roles": []string{"learner"}})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		graceToken := r.str("token")
		require.Equal(t, 201, b.signupVia("mallory@example.edu", nil).Status)
		mallory := b.login("mallory@example.edu", "")
		r = b.do("POST", "/api/v1/me/invitations/accept", mallory, map[string]any{"token": graceToken})
		requireProblem(t, r, 403, "invitation-email-mismatch")
		// Mallory did not join, and the invitation is still good for Grace.
		r = b.do("GET", "/api/v1/me", mallory, nil)
		require.Empty(t, r.get("memberships"), "%s", r.Raw)
		r = b.signupVia("grace@acme.test", map[string]any{"invitation_token": graceToken})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
	})

	t.Run("reused token", func(t *testing.T) {
		r := b.do("POST", "/api/v1/me/invitations/accept", ta, map[string]any{"token": taToken})
		requireProblem(t, r, 410, "invalid-invitation")
		// A new account cannot use it either, and is not created.
		r = b.signupVia("ta2@acme.test", map[string]any{"invitation_token": taToken})
		requireProblem(t, r, 410, "invalid-invitation")
		require.Zero(t, b.usersWithEmail("ta2@acme.test"))
	})

	t.Run("revoke", func(t *testing.T) {
		r := b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": "late@acme.test", "roles": []string{"learner"}})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		id, tok := r.str("id"), r.str("token")
		r = b.do("DELETE", "/api/v1/tenant/invitations/"+id, acme.admin, nil)
		require.Equal(t, 204, r.Status, "%s", r.Raw)
		r = b.do("GET", "/api/v1/tenant/invitations", acme.admin, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		var status string
		for _, it := range r.items() {
			if it["id"] == id {
				status, _ = it["status"].(string)
			}
		}
		require.Equal(t, "revoked", status)
		requireProblem(t, b.signupVia("late@acme.test", map[string]any{"invitation_token": tok}), 410, "invalid-invitation")
		require.Zero(t, b.usersWithEmail("late@acme.test"))
		requireProblem(t, b.do("DELETE", "/api/v1/tenant/invitations/"+id, acme.admin, nil), 409, "invitation-not-pending")
	})

	t.Run("members pagination", func(t *testing.T) {
		seen := map[string]bool{}
		path := "/api/v1/tenant/members?limit=2"
		pages := 0
		for path != "" {
			r := b.do("GET", path, acme.admin, nil)
			require.Equal(t, 200, r.Status, "%s", r.Raw)
			require.LessOrEqual(t, len(r.items()), 2)
			for _, m := range r.items() {
				id := m["user_id"].(string)
				require.False(t, seen[id], "member %s on two pages", id)
				seen[id] = true
			}
			pages++
			path = ""
			if c := r.str("next_cursor"); c != "" {
				path = "/api/v1/tenant/members?limit=2&cursor=" + url.QueryEscape(c)
			}
			require.Less(t, pages, 10, "pagination does not end")
		}
		// admin, instructor, learner, ta and grace.
		require.Len(t, seen, 5)
		require.Equal(t, 3, pages)
	})
}

func TestCustomRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.institution("acme")
	members := "/api/v1/tenant/members"

	requireProblem(t, b.do("GET", members, acme.learner, nil), 403, "permission-denied")

	// The catalogue a role is made from names each permission's owner and
	// the built-in roles that hold it by default.
	r := b.do("GET", "/api/v1/tenant/permissions", acme.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	found := false
	for _, p := range r.items() {
		if p["name"] == "tenancy.member.read" {
			found = true
			require.Equal(t, "kernel", p["owner"])
			require.Contains(t, p["default_roles"], "admin")
		}
	}
	require.True(t, found, "%s", r.Raw)

	// A custom role that may read members, given to the learner.
	r = b.do("PUT", "/api/v1/tenant/roles/grader", acme.admin, map[string]any{"description": "TA", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "grader", r.str("name"))
	require.Equal(t, false, r.get("builtin"))
	r = b.do("PUT", members+"/"+acme.learnerID+"/roles", acme.admin, map[string]any{"roles": []string{"learner", "grader"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"grader", "learner"}, r.get("roles"))

	// The learner's very next request, with the same token, may list members.
	r = b.do("GET", members, acme.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"grader", "learner"}, rolesByEmail(t, r)["learner@acme.test"])

	// Overriding a built-in role takes effect on the next request too.
	r = b.do("GET", members, acme.instructor, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("PUT", "/api/v1/tenant/roles/instructor", acme.admin, map[string]any{"permissions": []string{"tenancy.settings.read"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("builtin"))
	require.Equal(t, true, r.get("customised"))
	requireProblem(t, b.do("GET", members, acme.instructor, nil), 403, "permission-denied")
	r = b.do("GET", "/api/v1/me/permissions", acme.instructor, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"tenancy.settings.read"}, r.get("permissions"))
	require.Equal(t, acme.id, r.str("tenant_id"))

	// The roles listing shows both.
	r = b.do("GET", "/api/v1/tenant/roles", acme.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	perms := map[string]any{}
	for _, it := range r.items() {
		perms[it["name"].(string)] = it["permissions"]
	}
	require.Equal(t, []any{"tenancy.member.read"}, perms["grader"])
	require.Equal(t, []any{"tenancy.settings.read"}, perms["instructor"])

	// Deleting a built-in role's override restores its defaults.
	require.Equal(t, 204, b.do("DELETE", "/api/v1/tenant/roles/instructor", acme.admin, nil).Status)
	require.Equal(t, 200, b.do("GET", members, acme.instructor, nil).Status)

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
		field  string
	}{
		{name: "unknown permission", method: "PUT", path: "/api/v1/tenant/roles/grader", body: map[string]any{"permissions": []string{"tenancy.member.fly"}}, status: 422, code: "invalid-request", field: "permissions.0"},
		{name: "platform permission", method: "PUT", path: "/api/v1/tenant/roles/grader", body: map[string]any{"permissions": []string{"platform.tenant.create"}}, status: 422, code: "invalid-request", field: "permissions.0"},
		{name: "permissions missing", method: "PUT", path: "/api/v1/tenant/roles/grader", body: map[string]any{"description": "x"}, status: 422, code: "invalid-request", field: "permissions"},
		{name: "bad role name", method: "PUT", path: "/api/v1/tenant/roles/Grader!", body: map[string]any{"permissions": []string{}}, status: 422, code: "invalid-request", field: "role"},
		{name: "admin loses role.manage", method: "PUT", path: "/api/v1/tenant/roles/admin", body: map[string]any{"permissions": []string{"tenancy.member.read"}}, status: 422, code: "invalid-request", field: "permissions"},
		{name: "delete role in use", method: "DELETE", path: "/api/v1/tenant/roles/grader", status: 409, code: "role-in-use"},
		{name: "delete unknown role", method: "DELETE", path: "/api/v1/tenant/roles/ghost", status: 404, code: "not-found"},
		{name: "assign unknown role", method: "PUT", path: members + "/" + acme.learnerID + "/roles", body: map[string]any{"roles": []string{"ghost"}}, status: 422, code: "invalid-request", field: "roles.0"},
		{name: "assign no role", method: "PUT", path: members + "/" + acme.learnerID + "/roles", body: map[string]any{"roles": []string{}}, status: 422, code: "invalid-request", field: "roles"},
		{name: "demote last admin", method: "PUT", path: members + "/" + acme.adminID + "/roles", body: map[string]any{"roles": []string{"instructor"}}, status: 409, code: "last-admin"},
		{name: "remove last admin", method: "DELETE", path: members + "/" + acme.adminID, status: 409, code: "last-admin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(tc.method, tc.path, acme.admin, tc.body)
			requireProblem(t, r, tc.status, tc.code)
			if tc.field != "" {
				require.Equal(t, tc.field, problemField(r, 0), "%s", r.Raw)
			}
		})
	}

	// Nothing above changed anything: the admin is still admin and grader still exists.
	roles := rolesByEmail(t, b.do("GET", members, acme.admin, nil))
	require.Equal(t, []any{"admin"}, roles["admin@acme.test"])
	require.Equal(t, []any{"grader", "learner"}, roles["learner@acme.test"])

	// With a second admin, the first may step down; then the role can go.
	r = b.do("PUT", members+"/"+acme.learnerID+"/roles", acme.admin, map[string]any{"roles": []string{"admin"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("PUT", members+"/"+acme.adminID+"/roles", acme.admin, map[string]any{"roles": []string{"instructor"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("PUT", "/api/v1/tenant/roles/grader", acme.admin, map[string]any{"permissions": []string{}}), 403, "permission-denied")
	require.Equal(t, 204, b.do("DELETE", "/api/v1/tenant/roles/grader", acme.learner, nil).Status)
}

func TestSelfSignup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	open := b.institution("open")
	b.institution("closed")

	r := b.do("PATCH", "/api/v1/tenant", open.admin, map[string]any{"self_signup": true})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("self_signup"))

	r = b.signupVia("newbie@example.edu", map[string]any{"tenant": "open"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	ms, _ := r.get("memberships").([]any)
	require.Len(t, ms, 1, "%s", r.Raw)
	require.Equal(t, "open", ms[0].(map[string]any)["slug"])
	require.Equal(t, []any{"learner"}, ms[0].(map[string]any)["roles"])
	tok := b.login("newbie@example.edu", "open")
	r = b.do("GET", "/api/v1/me", tok, nil)
	require.Equal(t, []any{"learner"}, r.get("roles"), "%s", r.Raw)

	// The other institution never opened up: no account is left behind.
	requireProblem(t, b.signupVia("gatecrasher@example.edu", map[string]any{"tenant": "closed"}), 403, "self-signup-disabled")
	require.Zero(t, b.usersWithEmail("gatecrasher@example.edu"))

	// Closing it again closes it.
	r = b.do("PATCH", "/api/v1/tenant", open.admin, map[string]any{"self_signup": false})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	requireProblem(t, b.signupVia("late@example.edu", map[string]any{"tenant": "open"}), 403, "self-signup-disabled")
	require.Zero(t, b.usersWithEmail("late@example.edu"))

	// A learner may not open it.
	requireProblem(t, b.do("PATCH", "/api/v1/tenant", open.learner, map[string]any{"self_signup": true}), 403, "permission-denied")
	// A slug that does not exist.
	requireProblem(t, b.signupVia("lost@example.edu", map[string]any{"tenant": "nowhere"}), 404, "not-found")
	require.Zero(t, b.usersWithEmail("lost@example.edu"))
}

func TestSwitchTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.institution("a")
	bb := b.institution("b")
	b.institution("c")

	// A's learner is invited to b and accepts.
	r := b.do("POST", "/api/v1/tenant/invitations", bb.admin, map[string]any{"email": "learner@a.test", "roles": []string{"instructor"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/me/invitations/accept", a.learner, map[string]any{"token": r.str("token")})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "b", r.str("slug"))

	// Without a tenant, the login is unscoped and lists both memberships.
	r = b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "learner@a.test", "password": password})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Nil(t, r.get("tenant"), "%s", r.Raw)
	slugs := map[string]any{}
	for _, m := range r.get("memberships").([]any) {
		slugs[m.(map[string]any)["slug"].(string)] = m.(map[string]any)["roles"]
	}
	require.Equal(t, map[string]any{"a": []any{"learner"}, "b": []any{"instructor"}}, slugs)
	unscoped := r.str("access_token")
	requireProblem(t, b.do("GET", "/api/v1/tenant", unscoped, nil), 403, "tenant-required")

	// Switching gives a token for b, with b's roles.
	r = b.do("POST", "/api/v1/auth/switch", unscoped, map[string]any{"tenant": "b"})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "b", r.str("tenant", "slug"))
	inB := r.str("access_token")
	r = b.do("GET", "/api/v1/tenant", inB, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, bb.id, r.str("id"))
	r = b.do("GET", "/api/v1/me", inB, nil)
	require.Equal(t, []any{"instructor"}, r.get("roles"), "%s", r.Raw)
	// As an instructor of b the learner of a may list b's members.
	require.Equal(t, 200, b.do("GET", "/api/v1/tenant/members", inB, nil).Status)
	requireProblem(t, b.do("GET", "/api/v1/tenant/members", a.learner, nil), 403, "permission-denied")

	tests := []struct {
		name   string
		tenant string
		status int
		code   string
	}{
		{name: "not a member", tenant: "c", status: 403, code: "not-a-member"},
		{name: "no such tenant", tenant: "zzz", status: 403, code: "not-a-member"},
		{name: "bad slug", tenant: "B!", status: 422, code: "invalid-request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireProblem(t, b.do("POST", "/api/v1/auth/switch", unscoped, map[string]any{"tenant": tc.tenant}), tc.status, tc.code)
		})
	}
}
