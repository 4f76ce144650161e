package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// grantRole defines a custom role with perms and gives it, beside their
// current roles, to a member (done by the institution's admin).
func (b *testBundle) grantRole(inst institution, userID, role string, roles []string, perms []string) {
	b.t.Helper()
	r := b.do("PUT", "/api/v1/tenant/roles/"+role, inst.admin, map[string]any{"permissions": perms})
	require.Equal(b.t, 200, r.Status, "%s", r.Raw)
	r = b.do("PUT", "/api/v1/tenant/members/"+userID+"/roles", inst.admin, map[string]any{"roles": append(roles, role)})
	require.Equal(b.t, 200, r.Status, "%s", r.Raw)
}

// requireExceeds asserts the refusal of a grant beyond the caller's own
// permissions, naming the field and a permission the caller lacks.
func requireExceeds(t *testing.T, r response, field, lacking string) {
	t.Helper()
	requireProblem(t, r, 403, "exceeds-own-permissions")
	errs, _ := r.get("errors").([]any)
	require.NotEmpty(t, errs, "body: %s", r.Raw)
	found := false
	for _, e := range errs {
		m, _ := e.(map[string]any)
		msg, _ := m["message"].(string)
		if m["field"] == field && strings.Contains(msg, lacking) {
			found = true
		}
	}
	require.True(t, found, "no error on %s naming %s: %s", field, lacking, r.Raw)
}

// TestDelegatedPermissionCannotEscalate: one delegated admin permission
// (member.update, member.invite, role.manage) does not lead to full admin.
// Nobody grants a role, invites into a role, or edits a role to contain a
// permission they do not hold themselves; one's own roles included.
func TestDelegatedPermissionCannotEscalate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("esc")
	members := "/api/v1/tenant/members/"

	t.Run("member.update cannot make oneself admin", func(t *testing.T) {
		b.grantRole(inst, inst.learnerID, "memberops", []string{"learner"}, []string{"tenancy.member.update", "tenancy.member.read"})
		r := b.do("PUT", members+inst.learnerID+"/roles", inst.learner, map[string]any{"roles": []string{"admin"}})
		requireExceeds(t, r, "roles.0", "tenancy.role.manage")
		// Nor anyone else, nor through a role of several.
		r = b.do("PUT", members+inst.instructorID+"/roles", inst.learner, map[string]any{"roles": []string{"learner", "admin"}})
		requireExceeds(t, r, "roles.1", "tenancy.member.invite")
		// Roles whose permissions the caller holds may be granted.
		r = b.do("PUT", members+inst.instructorID+"/roles", inst.learner, map[string]any{"roles": []string{"instructor", "learner"}})
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		roles := rolesByEmail(t, b.do("GET", "/api/v1/tenant/members", inst.admin, nil))
		require.Equal(t, []any{"learner", "memberops"}, roles["learner@esc.test"])
		require.Equal(t, []any{"admin"}, roles["admin@esc.test"])
	})

	t.Run("member.invite cannot invite an admin", func(t *testing.T) {
		b.grantRole(inst, inst.instructorID, "inviter", []string{"instructor"}, []string{"tenancy.member.invite"})
		r := b.do("POST", "/api/v1/tenant/invitations", inst.instructor, map[string]any{"email": "accomplice@esc.test", "roles": []string{"admin"}})
		requireExceeds(t, r, "roles.0", "tenancy.member.update")
		r = b.do("POST", "/api/v1/tenant/invitations", inst.instructor, map[string]any{"email": "accomplice@esc.test", "roles": []string{"learner", "memberops"}})
		requireExceeds(t, r, "roles.1", "tenancy.member.update")
		r = b.do("POST", "/api/v1/tenant/invitations", inst.instructor, map[string]any{"email": "colleague@esc.test", "roles": []string{"instructor"}})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		r = b.do("GET", "/api/v1/tenant/invitations", inst.admin, nil)
		require.Len(t, r.items(), 1, "only the instructor's invitation exists: %s", r.Raw)
	})

	t.Run("role.manage cannot add permissions it lacks", func(t *testing.T) {
		b.grantRole(inst, inst.learnerID, "rolemgr", []string{"learner", "memberops"}, []string{"tenancy.role.manage", "tenancy.role.read"})
		tok := inst.learner
		// Adding to one's own role.
		r := b.do("PUT", "/api/v1/tenant/roles/rolemgr", tok, map[string]any{"permissions": []string{"tenancy.role.manage", "tenancy.role.read", "identity.apikey.create"}})
		requireExceeds(t, r, "permissions.2", "identity.apikey.create")
		// Adding to a built-in role one holds.
		r = b.do("PUT", "/api/v1/tenant/roles/learner", tok, map[string]any{"permissions": []string{"tenancy.settings.read", "tenancy.settings.update"}})
		requireExceeds(t, r, "permissions.1", "tenancy.settings.update")
		// A new role with something the caller lacks, then given to oneself.
		r = b.do("PUT", "/api/v1/tenant/roles/sneaky", tok, map[string]any{"permissions": []string{"audit.log.read"}})
		requireExceeds(t, r, "permissions.0", "audit.log.read")
		// Resetting an override restores defaults the caller may lack.
		r = b.do("PUT", "/api/v1/tenant/roles/instructor", inst.admin, map[string]any{"permissions": []string{"tenancy.settings.read"}})
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		r = b.do("DELETE", "/api/v1/tenant/roles/instructor", tok, nil)
		requireExceeds(t, r, "role", "tenancy.plugin.read")
		// What the caller holds may go into a role, and any permission may
		// be taken out.
		r = b.do("PUT", "/api/v1/tenant/roles/helpers", tok, map[string]any{"permissions": []string{"tenancy.member.read", "tenancy.role.read"}})
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		r = b.do("PUT", "/api/v1/tenant/roles/inviter", tok, map[string]any{"permissions": []string{}})
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		// The caller's permissions are as before.
		r = b.do("GET", "/api/v1/me/permissions", tok, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		require.NotContains(t, r.get("permissions"), "identity.apikey.create")
		require.NotContains(t, r.get("permissions"), "tenancy.settings.update")
		require.NotContains(t, r.get("permissions"), "audit.log.read")
	})

	t.Run("an API key with member.update cannot grant admin", func(t *testing.T) {
		r := b.do("POST", "/api/v1/tenant/apikeys", inst.admin, map[string]any{"name": "sync", "permissions": []string{"tenancy.member.update"}})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		key := r.str("key")
		r = b.do("PUT", members+inst.learnerID+"/roles", key, map[string]any{"roles": []string{"admin"}})
		requireExceeds(t, r, "roles.0", "tenancy.member.read")
	})

	t.Run("the admin still grants anything", func(t *testing.T) {
		r := b.do("PUT", members+inst.instructorID+"/roles", inst.admin, map[string]any{"roles": []string{"admin"}})
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		r = b.do("POST", "/api/v1/tenant/invitations", inst.admin, map[string]any{"email": "second@esc.test", "roles": []string{"admin"}})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
	})
}

// TestAPIKeyFollowsItsCreator: a key acts with its own permissions as far
// as its creator still holds them in the institution, and stops working
// when its creator leaves it.
func TestAPIKeyFollowsItsCreator(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("keyrights")
	members := "/api/v1/tenant/members/"

	// The instructor is made a second admin and makes a key that changes roles.
	r := b.do("PUT", members+inst.instructorID+"/roles", inst.admin, map[string]any{"roles": []string{"admin"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/tenant/apikeys", inst.instructor, map[string]any{"name": "roles-sync", "permissions": []string{"tenancy.member.read", "tenancy.member.update", "identity.apikey.create"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	key := r.str("key")
	r = b.do("PUT", members+inst.learnerID+"/roles", key, map[string]any{"roles": []string{"learner"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	// A key made by the key is made on behalf of the same person.
	r = b.do("POST", "/api/v1/tenant/apikeys", key, map[string]any{"name": "child", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, inst.instructorID, r.str("created_by"), "%s", r.Raw)
	child := r.str("key")

	// Demoted to instructor, the creator no longer changes roles: nor does the key.
	r = b.do("PUT", members+inst.instructorID+"/roles", inst.admin, map[string]any{"roles": []string{"instructor"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("PUT", members+inst.learnerID+"/roles", key, map[string]any{"roles": []string{"learner"}}), 403, "permission-denied")
	requireProblem(t, b.do("POST", "/api/v1/tenant/apikeys", key, map[string]any{"name": "x", "permissions": []string{"tenancy.member.read"}}), 403, "permission-denied")
	r = b.do("GET", "/api/v1/me/permissions", key, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"tenancy.member.read"}, r.get("permissions"), "an instructor reads members, nothing more of the key's")
	require.Equal(t, 200, b.do("GET", "/api/v1/tenant/members", key, nil).Status)

	// Removed from the institution, the creator's keys stop working.
	require.Equal(t, 204, b.do("DELETE", members+inst.instructorID, inst.admin, nil).Status)
	for _, k := range []string{key, child} {
		requireProblem(t, b.do("GET", "/api/v1/tenant/members", k, nil), 401, "api-key-creator-removed")
		requireProblem(t, b.do("GET", "/api/v1/me", k, nil), 401, "api-key-creator-removed")
	}

	// A key whose creator's account is gone (created_by set to NULL by
	// the deletion) does not work either.
	r = b.do("POST", "/api/v1/tenant/apikeys", inst.admin, map[string]any{"name": "orphan", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	orphan := r.str("key")
	require.Equal(t, 200, b.do("GET", "/api/v1/tenant/members", orphan, nil).Status)
	_, err := b.pool.Exec(context.Background(), `UPDATE kernel.api_keys SET created_by = NULL WHERE id = $1`, r.str("id"))
	require.NoError(t, err)
	requireProblem(t, b.do("GET", "/api/v1/tenant/members", orphan, nil), 401, "api-key-creator-removed")
}
