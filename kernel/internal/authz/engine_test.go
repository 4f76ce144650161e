package authz_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/policies"
)

func newEngine(t testing.TB) *authz.Engine {
	t.Helper()
	cat, err := authz.NewCatalogue("kernel", authz.KernelPermissions)
	require.NoError(t, err)
	e, err := authz.NewEngine(context.Background(), policies.FS, cat.Defaults())
	require.NoError(t, err)
	return e
}

func TestEngineDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEngine(t)
	require.NoError(t, e.SetTenantRoles(ctx, "t1", map[string][]string{"ta": {"tenancy.member.read"}}))
	user := func(roles ...string) authz.Subject { return authz.Subject{Type: "user", ID: "u"} }
	tests := []struct {
		name   string
		in     authz.Input
		expect bool
	}{
		{"admin invites", authz.Input{Subject: user(), Roles: []string{"admin"}, Tenant: "t1", Action: "tenancy.member.invite"}, true},
		{"learner cannot invite", authz.Input{Subject: user(), Roles: []string{"learner"}, Tenant: "t1", Action: "tenancy.member.invite"}, false},
		{"custom role in its tenant", authz.Input{Subject: user(), Roles: []string{"ta"}, Tenant: "t1", Action: "tenancy.member.read"}, true},
		{"custom role elsewhere", authz.Input{Subject: user(), Roles: []string{"ta"}, Tenant: "t2", Action: "tenancy.member.read"}, false},
		{"cross-tenant resource", authz.Input{Subject: user(), Roles: []string{"admin"}, Tenant: "t1", Action: "tenancy.member.read", Resource: &authz.Resource{Tenant: "t2"}}, false},
		{"operator platform", authz.Input{Subject: authz.Subject{Type: "user", Operator: true}, Action: "platform.tenant.create"}, true},
		{"apikey scoped", authz.Input{Subject: authz.Subject{Type: "apikey", Permissions: []string{"audit.log.read"}}, Roles: []string{"admin"}, Tenant: "t1", Action: "audit.log.read"}, true},
		{"apikey outside scope", authz.Input{Subject: authz.Subject{Type: "apikey", Permissions: []string{"audit.log.read"}}, Roles: []string{"admin"}, Tenant: "t1", Action: "tenancy.member.read"}, false},
		{"apikey beyond its creator", authz.Input{Subject: authz.Subject{Type: "apikey", Permissions: []string{"audit.log.read"}}, Roles: []string{"learner"}, Tenant: "t1", Action: "audit.log.read"}, false},
		{"apikey without a creator", authz.Input{Subject: authz.Subject{Type: "apikey", Permissions: []string{"audit.log.read"}}, Tenant: "t1", Action: "audit.log.read"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := e.Allowed(ctx, tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.expect, ok)
		})
	}
	g, err := e.Granted(ctx, authz.Input{Subject: user(), Roles: []string{"ta", "learner"}, Tenant: "t1"})
	require.NoError(t, err)
	require.Equal(t, []string{"privacy.erasure.self", "privacy.export.self", "tenancy.member.read", "tenancy.settings.read"}, g)
}

func TestCatalogueRejectsBadNames(t *testing.T) {
	t.Parallel()
	_, err := authz.NewCatalogue("x", []authz.Permission{{Name: "Bad Name"}})
	require.ErrorContains(t, err, "owner.noun.verb")
	c, err := authz.NewCatalogue("kernel", authz.KernelPermissions)
	require.NoError(t, err)
	require.ErrorContains(t, c.Add("courses", []authz.Permission{{Name: "tenancy.member.read"}}), "already declared by kernel")
	require.ErrorContains(t, c.Add("courses", []authz.Permission{{Name: "courses.course.create", Defaults: []string{"owner"}}}), "not a built-in role")
}

// BenchmarkDecision measures one prepared-query decision for a tenant with
// 50 custom roles, the caller holding three of them.
func BenchmarkDecision(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b)
	roles := map[string][]string{}
	for i := range 50 {
		perms := []string{"tenancy.member.read"}
		for j := range 20 {
			perms = append(perms, fmt.Sprintf("custom.thing%d.action%d", i, j))
		}
		roles[fmt.Sprintf("role%02d", i)] = perms
	}
	roles["role49"] = append(roles["role49"], "tenancy.member.invite")
	for tn := range 100 {
		require.NoError(b, e.SetTenantRoles(ctx, fmt.Sprintf("tenant-%d", tn), roles))
	}
	in := authz.Input{Subject: authz.Subject{Type: "user", ID: "u"}, Roles: []string{"role01", "role20", "role49"}, Tenant: "tenant-42", Action: "tenancy.member.invite"}
	b.Run("opa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := e.Evaluate(ctx, in)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := e.Allowed(ctx, in)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// TestDecisionCacheFollowsDataChanges: a cached decision is never served
// after the grants it depended on change.
func TestDecisionCacheFollowsDataChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEngine(t)
	in := authz.Input{Subject: authz.Subject{Type: "user", ID: "u"}, Roles: []string{"ta"}, Tenant: "t1", Action: "tenancy.member.read"}
	for i, grant := range []bool{true, false, true} {
		perms := []string{}
		if grant {
			perms = append(perms, "tenancy.member.read")
		}
		require.NoError(t, e.SetTenantRoles(ctx, "t1", map[string][]string{"ta": perms}))
		for range 2 { // second call is served from the cache
			ok, err := e.Allowed(ctx, in)
			require.NoError(t, err)
			require.Equal(t, grant, ok, "step %d", i)
		}
	}
	// Inputs that differ in any field are different decisions.
	other := in
	other.Roles = []string{"ta", "x"}
	other.Tenant = "t2"
	ok, err := e.Allowed(ctx, other)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestReplaceAllTenantRolesDropsMissingTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEngine(t)
	in := authz.Input{Subject: authz.Subject{Type: "user", ID: "u"}, Roles: []string{"ta"}, Tenant: "t1", Action: "tenancy.member.read"}
	require.NoError(t, e.SetTenantRoles(ctx, "t1", map[string][]string{"ta": {"tenancy.member.read"}}))
	ok, err := e.Allowed(ctx, in)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, e.ReplaceAllTenantRoles(ctx, map[string]map[string][]string{"t2": {"ta": {"tenancy.member.read"}}}))
	ok, err = e.Allowed(ctx, in)
	require.NoError(t, err)
	require.False(t, ok, "t1's custom role is gone after a full reload without it")
}
