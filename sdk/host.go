package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/metadata"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// Host is the kernel's services a plugin may call. Each call crosses the
// process boundary (a gRPC round trip): prefer the local answers a Request
// already carries (Principal.Can, Config) on hot paths.
//
// Since: v1.0 (Membership since v1.2, GovernanceHost since v1.3)
type Host interface {
	// Authorize asks for a resource-level decision: may p do permission on res?
	Authorize(ctx context.Context, p Principal, permission string, res Resource) (bool, error)
	// Audit appends an entry to the institution's tamper-evident audit log.
	// The kernel writes it in its own transaction: an entry written inside
	// a plugin transaction that then rolls back stays written.
	Audit(ctx context.Context, e AuditEntry) error
	// TenantConfig reads the plugin's configuration for an institution and
	// whether the plugin is enabled there. Config[T] is the typed way.
	TenantConfig(ctx context.Context, tenantID string) (config json.RawMessage, enabled bool, err error)
	// Membership answers whether userID is a member of tenantID, and with
	// which roles. Anyone else (a user of another institution, an unknown
	// or malformed ID) is a plain "not a member", never an error: ask it
	// before storing another person's ID.
	Membership(ctx context.Context, tenantID, userID string) (Membership, error)
	// GovernanceHost: retention across plugins, grants, signatures; each
	// needs a privileged capability the operator allowed.
	GovernanceHost
}

// Membership is a user's standing in an institution.
//
// Since: v1.2
type Membership struct {
	Member bool
	Roles  []string
}

// HasRole reports whether the member holds role.
func (m Membership) HasRole(role string) bool { return m.Member && slices.Contains(m.Roles, role) }

// Resource is the object of a resource-level decision.
//
// Since: v1.0
type Resource struct {
	Type     string
	ID       string
	TenantID string // the institution that owns it
}

// AuditEntry is one audit log entry written by a plugin.
//
// Since: v1.0
type AuditEntry struct {
	TenantID   string
	Actor      Principal
	Action     string // prefixed with the plugin's name: gamification.points.award
	TargetType string
	TargetID   string
	Details    any // encoded as JSON
	RequestID  string
}

// hostClient is Host over the go-plugin broker.
type hostClient struct{ c pluginv1.HostClient }

var _ Host = (*hostClient)(nil)

// traced carries ctx's trace context to the kernel in the call's gRPC
// metadata (traceparent, tracestate), so that the kernel's span of a host
// call joins the plugin's trace. Untraced, ctx is returned as it is.
func traced(ctx context.Context) context.Context {
	parent, state := telemetry.Inject(ctx)
	if parent == "" {
		return ctx
	}
	if state != "" {
		return metadata.AppendToOutgoingContext(ctx, "traceparent", parent, "tracestate", state)
	}
	return metadata.AppendToOutgoingContext(ctx, "traceparent", parent)
}

func (h *hostClient) Authorize(ctx context.Context, p Principal, permission string, res Resource) (bool, error) {
	out, err := h.c.Authorize(traced(ctx), &pluginv1.AuthorizeRequest{
		Principal: encodePrincipal(p), Permission: permission,
		Resource: &pluginv1.Resource{Type: res.Type, Id: res.ID, TenantId: res.TenantID},
	})
	if err != nil {
		return false, fmt.Errorf("asking the kernel for a decision: %w", err)
	}
	return out.Allowed, nil
}

func (h *hostClient) Audit(ctx context.Context, e AuditEntry) error {
	var details []byte
	if e.Details != nil {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return fmt.Errorf("encoding audit details: %w", err)
		}
	}
	_, err := h.c.WriteAudit(traced(ctx), &pluginv1.WriteAuditRequest{
		TenantId: e.TenantID, Actor: encodePrincipal(e.Actor), Action: e.Action,
		TargetType: e.TargetType, TargetId: e.TargetID, DetailsJson: details, RequestId: e.RequestID,
	})
	if err != nil {
		return fmt.Errorf("writing audit entry: %w", err)
	}
	return nil
}

func (h *hostClient) TenantConfig(ctx context.Context, tenantID string) (json.RawMessage, bool, error) {
	out, err := h.c.GetTenantConfig(traced(ctx), &pluginv1.GetTenantConfigRequest{TenantId: tenantID})
	if err != nil {
		return nil, false, fmt.Errorf("reading tenant configuration: %w", err)
	}
	return orEmptyObject(out.ConfigJson), out.Enabled, nil
}

func (h *hostClient) Membership(ctx context.Context, tenantID, userID string) (Membership, error) {
	out, err := h.c.GetMember(traced(ctx), &pluginv1.GetMemberRequest{TenantId: tenantID, UserId: userID})
	if err != nil {
		return Membership{}, fmt.Errorf("asking the kernel about a membership: %w", err)
	}
	return Membership{Member: out.Member, Roles: out.Roles}, nil
}

func (h *hostClient) eventsPublished(ctx context.Context) error {
	_, err := h.c.EventsPublished(ctx, &pluginv1.EventsPublishedRequest{})
	return err
}

// newWaker returns a function that asks call to run soon, without blocking:
// calls made while one is pending or running coalesce into one more.
func newWaker(logger hclog.Logger, call func(context.Context) error) func() {
	pending := make(chan struct{}, 1)
	go func() {
		for range pending {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := call(ctx); err != nil {
				logger.Debug("waking the kernel's event relay failed; it will poll", "error", err)
			}
			cancel()
		}
	}()
	return func() {
		select {
		case pending <- struct{}{}:
		default:
		}
	}
}
