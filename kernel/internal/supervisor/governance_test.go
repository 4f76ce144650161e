package supervisor_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/policies"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// The governance host calls: each refused without its capability; with
// it, bad input is INVALID_ARGUMENT, a principal of another institution
// PERMISSION_DENIED, another institution's grants are not listed, and a
// kernel without a signer says so.
func TestGovernanceHostCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := dbtest.NewPool(t)
	cat, err := authz.NewCatalogue("kernel", authz.KernelPermissions)
	require.NoError(t, err)
	engine, err := authz.NewEngine(ctx, policies.FS, cat.Defaults())
	require.NoError(t, err)
	sup := supervisor.New(supervisor.Deps{Logger: hclog.New(&hclog.LoggerOptions{Output: io.Discard}), Pool: pool, Authz: engine, Catalogue: cat}, supervisor.Options{})
	t.Cleanup(sup.Close)
	a, err := app.CreateTenant(ctx, pool, "alpha", "Alpha")
	require.NoError(t, err)
	b, err := app.CreateTenant(ctx, pool, "beta", "Beta")
	require.NoError(t, err)
	admin, err := app.CreateUser(ctx, pool, app.UserSpec{Email: "admin@alpha.test", Name: "A", Password: "correct-Horse-battery-9", Tenant: "alpha", Roles: []string{"admin"}})
	require.NoError(t, err)
	stranger, err := app.CreateUser(ctx, pool, app.UserSpec{Email: "admin@beta.test", Name: "B", Password: "correct-Horse-battery-9", Tenant: "beta", Roles: []string{"admin"}})
	require.NoError(t, err)
	code := func(err error) codes.Code { return status.Code(err) }

	plain := supervisor.HostFor(sup, "governance")
	_, err = plain.ListRetentionClasses(ctx, &pluginv1.ListRetentionClassesRequest{TenantId: a.ID.String()})
	require.Equal(t, codes.PermissionDenied, code(err))
	_, err = plain.ApplyRetention(ctx, &pluginv1.HostApplyRetentionRequest{Plugin: "x", Request: &pluginv1.RetentionRequest{TenantId: a.ID.String()}})
	require.Equal(t, codes.PermissionDenied, code(err))
	_, err = plain.ListGrants(ctx, &pluginv1.ListGrantsRequest{TenantId: a.ID.String()})
	require.Equal(t, codes.PermissionDenied, code(err))
	_, err = plain.RevokeGrant(ctx, &pluginv1.RevokeGrantRequest{TenantId: a.ID.String()})
	require.Equal(t, codes.PermissionDenied, code(err))
	_, err = plain.Sign(ctx, &pluginv1.SignRequest{Purpose: "governance.x"})
	require.Equal(t, codes.PermissionDenied, code(err))

	h := supervisor.HostWithCapabilities(sup, "governance", "retention", "grants", "sign")
	_, err = h.ListGrants(ctx, &pluginv1.ListGrantsRequest{TenantId: "nope"})
	require.Equal(t, codes.InvalidArgument, code(err))
	grants, err := h.ListGrants(ctx, &pluginv1.ListGrantsRequest{TenantId: b.ID.String()})
	require.NoError(t, err)
	for _, g := range grants.Grants {
		require.NotEqual(t, admin.ID.String(), g.UserId, "another institution's member is not listed")
	}
	classes, err := h.ListRetentionClasses(ctx, &pluginv1.ListRetentionClassesRequest{TenantId: a.ID.String()})
	require.NoError(t, err)
	require.Empty(t, classes.Classes, "no plugin loaded, no class")
	_, err = h.ApplyRetention(ctx, &pluginv1.HostApplyRetentionRequest{Plugin: "messaging", Request: &pluginv1.RetentionRequest{TenantId: a.ID.String(), Class: "posts"}})
	require.Equal(t, codes.NotFound, code(err))
	_, err = h.ApplyRetention(ctx, &pluginv1.HostApplyRetentionRequest{Plugin: "messaging"})
	require.Equal(t, codes.InvalidArgument, code(err))

	revoke := func(p *pluginv1.Principal, kind, id, reason string) error {
		_, err := h.RevokeGrant(ctx, &pluginv1.RevokeGrantRequest{Principal: p, TenantId: a.ID.String(), Kind: kind, Id: id, Reason: reason})
		return err
	}
	me := &pluginv1.Principal{Kind: "user", UserId: admin.ID.String(), TenantId: a.ID.String()}
	require.Equal(t, codes.PermissionDenied, code(revoke(&pluginv1.Principal{Kind: "user", UserId: stranger.ID.String()}, "membership", admin.ID.String(), "")), "a member of another institution")
	require.Equal(t, codes.PermissionDenied, code(revoke(&pluginv1.Principal{Kind: "apikey", ApiKeyId: uuid.NewString()}, "membership", admin.ID.String(), "")), "an unknown key")
	require.Equal(t, codes.InvalidArgument, code(revoke(nil, "membership", admin.ID.String(), "")))
	require.Equal(t, codes.InvalidArgument, code(revoke(me, "membership", admin.ID.String(), "a\x00b")))
	require.Equal(t, codes.InvalidArgument, code(revoke(me, "membership", admin.ID.String(), strings.Repeat("x", 1001))))
	require.Equal(t, codes.InvalidArgument, code(revoke(me, "everything", "x", "")))
	require.Equal(t, codes.NotFound, code(revoke(me, "membership", stranger.ID.String(), "")), "another institution's member")
	require.Equal(t, codes.FailedPrecondition, code(revoke(me, "membership", admin.ID.String(), "")), "the last admin stays")

	_, err = h.Sign(ctx, &pluginv1.SignRequest{Purpose: "courses.x", Payload: []byte("x")})
	require.Equal(t, codes.InvalidArgument, code(err), "a purpose of another plugin")
	_, err = h.Sign(ctx, &pluginv1.SignRequest{Purpose: "governance.x", Payload: make([]byte, 1<<20+1)})
	require.Equal(t, codes.InvalidArgument, code(err), "over 1 MiB")
	_, err = h.Sign(ctx, &pluginv1.SignRequest{Purpose: "governance.x", Payload: []byte("x")})
	require.Equal(t, codes.Unavailable, code(err), "no keyring here")
}
