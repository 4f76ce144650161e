package supervisor_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/policies"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// A plugin that asks about a person of another institution, an unknown
// person or a malformed ID gets a plain "no", never an error: the plugin
// turns errors into 500s, and "is this a member?" has an answer.
func TestHostAuthorizeAnswersNoForStrangers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := dbtest.NewPool(t)
	cat, err := authz.NewCatalogue("kernel", authz.KernelPermissions)
	require.NoError(t, err)
	engine, err := authz.NewEngine(ctx, policies.FS, cat.Defaults())
	require.NoError(t, err)
	sup := supervisor.New(supervisor.Deps{Logger: hclog.New(&hclog.LoggerOptions{Output: io.Discard}), Pool: pool, Authz: engine, Catalogue: cat}, supervisor.Options{})
	t.Cleanup(sup.Close)
	host := supervisor.HostFor(sup, "courses")

	a, err := app.CreateTenant(ctx, pool, "alpha", "Alpha")
	require.NoError(t, err)
	_, err = app.CreateTenant(ctx, pool, "beta", "Beta")
	require.NoError(t, err)
	member, err := app.CreateUser(ctx, pool, app.UserSpec{Email: "admin@alpha.test", Name: "A", Password: "correct-Horse-battery-9", Tenant: "alpha", Roles: []string{"admin"}})
	require.NoError(t, err)
	stranger, err := app.CreateUser(ctx, pool, app.UserSpec{Email: "admin@beta.test", Name: "B", Password: "correct-Horse-battery-9", Tenant: "beta", Roles: []string{"admin"}})
	require.NoError(t, err)
	loner, err := app.CreateUser(ctx, pool, app.UserSpec{Email: "loner@nowhere.test", Name: "L", Password: "correct-Horse-battery-9"})
	require.NoError(t, err)

	ask := func(p *pluginv1.Principal) (*pluginv1.AuthorizeResponse, error) {
		return host.Authorize(ctx, &pluginv1.AuthorizeRequest{Principal: p, Permission: "tenancy.member.read"})
	}
	res, err := ask(&pluginv1.Principal{Kind: "user", UserId: member.ID.String(), TenantId: a.ID.String()})
	require.NoError(t, err)
	require.True(t, res.Allowed, "a member with the permission is allowed")

	for _, tc := range []struct {
		name string
		p    *pluginv1.Principal
	}{
		{name: "member of another institution", p: &pluginv1.Principal{Kind: "user", UserId: stranger.ID.String(), TenantId: a.ID.String()}},
		{name: "user of no institution", p: &pluginv1.Principal{Kind: "user", UserId: loner.ID.String(), TenantId: a.ID.String()}},
		{name: "unknown user", p: &pluginv1.Principal{Kind: "user", UserId: uuid.NewString(), TenantId: a.ID.String()}},
		{name: "malformed user ID", p: &pluginv1.Principal{Kind: "user", UserId: "not-a-uuid", TenantId: a.ID.String()}},
		{name: "unknown institution", p: &pluginv1.Principal{Kind: "user", UserId: member.ID.String(), TenantId: uuid.NewString()}},
		{name: "unknown API key", p: &pluginv1.Principal{Kind: "apikey", ApiKeyId: uuid.NewString(), TenantId: a.ID.String()}},
		{name: "malformed API key ID", p: &pluginv1.Principal{Kind: "apikey", ApiKeyId: "x'; --", TenantId: a.ID.String()}},
		{name: "anonymous", p: &pluginv1.Principal{Kind: "anonymous", TenantId: a.ID.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ask(tc.p)
			require.NoError(t, err, "a stranger is a no, not an error")
			require.False(t, res.Allowed)
		})
	}
}
