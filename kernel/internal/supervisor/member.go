package supervisor

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// GetMember answers whether a user belongs to a tenant and with which roles.
// Whatever the plugin sends (an unknown user, another tenant's user, a
// malformed ID) the answer is a plain no: a plugin asks this before storing
// another person's ID, and "no" is what it must act on.
func (h *hostServer) GetMember(ctx context.Context, req *pluginv1.GetMemberRequest) (*pluginv1.GetMemberResponse, error) {
	tenant, err1 := uuid.Parse(req.TenantId)
	user, err2 := uuid.Parse(req.UserId)
	if err1 != nil || err2 != nil {
		return &pluginv1.GetMemberResponse{}, nil
	}
	roles, err := tenancy.MemberRoles(ctx, h.s.pool, tenant, user)
	if errors.Is(err, sdk.ErrForbidden) {
		return &pluginv1.GetMemberResponse{}, nil
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading membership: %v", err)
	}
	return &pluginv1.GetMemberResponse{Member: true, Roles: roles}, nil
}
