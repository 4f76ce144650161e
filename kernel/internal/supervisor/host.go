package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// traceHost is the Host server's interceptor when tracing: each call runs
// under a server span that continues the plugin's trace (the traceparent
// the SDK puts in the call's metadata), so a host call made while handling
// a request shows in the request's trace.
func (s *Supervisor) traceHost(plugin string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if parent := md.Get("traceparent"); len(parent) == 1 {
				state := md.Get("tracestate")
				ctx = telemetry.Extract(ctx, parent[0], strings.Join(state, ","))
			}
		}
		ctx, span := s.tracer.Start(ctx, strings.TrimPrefix(info.FullMethod, "/"), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("edulure.plugin", plugin)))
		defer span.End()
		resp, err := handler(ctx, req)
		if err != nil {
			span.SetStatus(otelcodes.Error, status.Code(err).String())
		}
		return resp, err
	}
}

// hostServer is the Host service the kernel serves to one plugin. It trusts
// the plugin with IDs only: roles and API key permissions are looked up
// again, so a plugin cannot widen a principal's rights. The object storage
// calls are blobstore.Service's, which sdk/plugintest serves too: scoped to
// this plugin, and to the capabilities its manifest declares.
type hostServer struct {
	blobstore.Service // BlobPut, BlobGet, ...; and UnimplementedHostServer
	s                 *Supervisor
	plugin            string
}

func (h *hostServer) Authorize(ctx context.Context, req *pluginv1.AuthorizeRequest) (*pluginv1.AuthorizeResponse, error) {
	p := req.Principal
	if p == nil || req.Permission == "" {
		return nil, status.Error(codes.InvalidArgument, "principal and permission are required")
	}
	in := authz.Input{Action: req.Permission, Tenant: p.TenantId}
	tenant, err := uuid.Parse(p.TenantId)
	if err != nil {
		return &pluginv1.AuthorizeResponse{Allowed: false}, nil
	}
	switch p.Kind {
	case "user":
		// A user who is unknown, or a member of another institution (or of
		// none), is simply not allowed: the plugin asked "may this person
		// ...", and the answer is no, not an error it would turn into a 500.
		user, err := uuid.Parse(p.UserId)
		if err != nil {
			return &pluginv1.AuthorizeResponse{Allowed: false}, nil
		}
		roles, err := tenancy.MemberRoles(ctx, h.s.pool, tenant, user)
		if errors.Is(err, sdk.ErrForbidden) {
			return &pluginv1.AuthorizeResponse{Allowed: false}, nil
		}
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "reading roles: %v", err)
		}
		in.Subject, in.Roles = authz.Subject{Type: "user", ID: p.UserId}, roles
	case "apikey":
		if _, err := uuid.Parse(p.ApiKeyId); err != nil {
			return &pluginv1.AuthorizeResponse{Allowed: false}, nil
		}
		// A key holds its permissions as far as its creator still does:
		// the policy gets the creator's current roles (none: denied).
		var perms []string
		var creator *uuid.UUID
		err := h.s.pool.QueryRow(ctx, `SELECT permissions, created_by FROM kernel.api_keys
			WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
			p.ApiKeyId, tenant).Scan(&perms, &creator)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && creator == nil {
			return &pluginv1.AuthorizeResponse{Allowed: false}, nil
		}
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "reading API key: %v", err)
		}
		roles, err := tenancy.MemberRoles(ctx, h.s.pool, tenant, *creator)
		if errors.Is(err, sdk.ErrForbidden) { // the creator left the institution
			return &pluginv1.AuthorizeResponse{Allowed: false}, nil
		}
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "reading roles: %v", err)
		}
		in.Subject, in.Roles = authz.Subject{Type: "apikey", ID: p.ApiKeyId, Permissions: perms}, roles
	default:
		return &pluginv1.AuthorizeResponse{Allowed: false}, nil
	}
	if r := req.Resource; r != nil && (r.Type != "" || r.Id != "" || r.TenantId != "") {
		in.Resource = &authz.Resource{Type: r.Type, ID: r.Id, Tenant: r.TenantId}
	}
	ok, err := h.s.authz.Allowed(ctx, in)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "evaluating policy: %v", err)
	}
	return &pluginv1.AuthorizeResponse{Allowed: ok}, nil
}

func (h *hostServer) WriteAudit(ctx context.Context, req *pluginv1.WriteAuditRequest) (*pluginv1.WriteAuditResponse, error) {
	if !strings.HasPrefix(req.Action, h.plugin+".") {
		return nil, status.Errorf(codes.InvalidArgument, "audit action %q must start with %q", req.Action, h.plugin+".")
	}
	tenant, err := uuid.Parse(req.TenantId)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "tenant_id is not a UUID")
	}
	data := map[string]any{}
	if len(req.DetailsJson) > 0 {
		if err := json.Unmarshal(req.DetailsJson, &data); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "details must be a JSON object: %v", err)
		}
	}
	data["plugin"] = h.plugin
	e := audit.Entry{TenantID: tenant.String(), ActorType: "system", ActorID: "plugin:" + h.plugin, Action: req.Action, Data: data, RequestID: req.RequestId}
	if a := req.Actor; a != nil && (a.Kind == "user" || a.Kind == "apikey") {
		e.ActorType, e.ActorID = a.Kind, a.UserId
		if a.Kind == "apikey" {
			e.ActorID = a.ApiKeyId
		}
	}
	if req.TargetType != "" {
		e.Target = req.TargetType + ":" + req.TargetId
	}
	err = database.InTx(ctx, h.s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM kernel.tenants WHERE id = $1)", tenant).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return status.Error(codes.NotFound, "no such tenant")
		}
		return audit.Append(ctx, tx, e)
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.Unavailable, "writing audit entry: %v", err)
	}
	return &pluginv1.WriteAuditResponse{}, nil
}

func (h *hostServer) GetTenantConfig(ctx context.Context, req *pluginv1.GetTenantConfigRequest) (*pluginv1.GetTenantConfigResponse, error) {
	tenant, err := uuid.Parse(req.TenantId)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "tenant_id is not a UUID")
	}
	st, cfg, err := h.s.TenantConfig(ctx, tenant, h.plugin)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", fmt.Errorf("reading settings: %w", err))
	}
	return &pluginv1.GetTenantConfigResponse{Enabled: st.Enabled, ConfigJson: cfg}, nil
}
