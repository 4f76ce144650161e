package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/edulure/edulure/sdk"
)

// recordingHost is the default sdk.Host of a Harness.
type recordingHost struct {
	h *Harness

	mu         sync.Mutex
	audit      []sdk.AuditEntry
	governance *governance // made on first use
}

var _ sdk.Host = (*recordingHost)(nil)

// Authorize allows when p holds permission and res belongs to p's
// institution (or to none). Like the kernel, it looks a user's roles up
// rather than trusting the principal's: a user User made has the roles it
// was made with in its institution, and none elsewhere; an unknown user ID
// has none.
func (r *recordingHost) Authorize(_ context.Context, p sdk.Principal, permission string, res sdk.Resource) (bool, error) {
	if p.Kind == "user" && p.Permissions == nil {
		p.Roles = nil
		if roles, ok := membership(p.UserID, p.TenantID); ok {
			p.Roles = roles
		}
	}
	p = r.h.Resolve(p)
	if p.Kind != "user" && p.Kind != "apikey" {
		return false, nil
	}
	return p.Can(permission) && (res.TenantID == "" || res.TenantID == p.TenantID), nil
}

// Audit records e after the checks the kernel's audit log makes. Like the
// kernel's refusals, which reach a plugin as RPC errors, its errors are not
// sdk errors: a handler that returns one answers 500.
func (r *recordingHost) Audit(_ context.Context, e sdk.AuditEntry) error {
	if !strings.HasPrefix(e.Action, r.h.manifest.Name+".") {
		return fmt.Errorf("writing audit entry: action %q must start with %q", e.Action, r.h.manifest.Name+".")
	}
	if !isUUID(e.TenantID) {
		return fmt.Errorf("writing audit entry: tenant_id %q is not a UUID", e.TenantID)
	}
	if e.Details != nil {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("encoding audit details: %w", err)
		}
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("writing audit entry: details must be a JSON object: %w", err)
		}
	}
	e.Actor.Roles, e.Actor.Permissions = slices.Clone(e.Actor.Roles), slices.Clone(e.Actor.Permissions)
	r.mu.Lock()
	r.audit = append(r.audit, e)
	r.mu.Unlock()
	return nil
}

// Membership answers from the users User and Join made: a member of their
// institutions with their roles; anyone else is not a member.
func (r *recordingHost) Membership(_ context.Context, tenantID, userID string) (sdk.Membership, error) {
	if roles, ok := membership(userID, tenantID); ok {
		return sdk.Membership{Member: true, Roles: roles}, nil
	}
	return sdk.Membership{}, nil
}

// TenantConfig answers from SetTenantConfig and SetEnabled.
func (r *recordingHost) TenantConfig(_ context.Context, tenantID string) (json.RawMessage, bool, error) {
	if !isUUID(tenantID) {
		return nil, false, fmt.Errorf("reading tenant configuration: tenant_id %q is not a UUID", tenantID)
	}
	cfg, enabled := r.h.tenantConfig(tenantID)
	return cfg, enabled, nil
}

// AuditEntries are the entries the plugin wrote through the default host,
// oldest first. With WithHost there are none.
func (h *Harness) AuditEntries() []sdk.AuditEntry {
	if h.recorder == nil {
		return nil
	}
	h.recorder.mu.Lock()
	defer h.recorder.mu.Unlock()
	return slices.Clone(h.recorder.audit)
}

// HostFuncs is an sdk.Host built from functions, for WithHost: a nil field
// answers with sdk.ErrUnavailable.
//
// Since: v1.2 (sdk.HostFuncs before)
type HostFuncs struct {
	AuthorizeFunc    func(ctx context.Context, p sdk.Principal, permission string, res sdk.Resource) (bool, error)
	AuditFunc        func(ctx context.Context, e sdk.AuditEntry) error
	TenantConfigFunc func(ctx context.Context, tenantID string) (json.RawMessage, bool, error)
	MembershipFunc   func(ctx context.Context, tenantID, userID string) (sdk.Membership, error)
	// Since: v1.3
	RetentionClassesFunc func(ctx context.Context, tenantID string) ([]sdk.RetentionClassInfo, error)
	ApplyRetentionFunc   func(ctx context.Context, plugin string, req sdk.RetentionRequest) (sdk.RetentionResult, error)
	GrantsFunc           func(ctx context.Context, tenantID string) ([]sdk.Grant, error)
	RevokeGrantFunc      func(ctx context.Context, actor sdk.Principal, tenantID string, g sdk.GrantRef, reason string) error
	SignFunc             func(ctx context.Context, purpose string, payload []byte) (sdk.Signature, error)
}

var _ sdk.Host = HostFuncs{}

// Authorize calls AuthorizeFunc.
func (h HostFuncs) Authorize(ctx context.Context, p sdk.Principal, permission string, res sdk.Resource) (bool, error) {
	if h.AuthorizeFunc == nil {
		return false, sdk.Errorf(sdk.ErrUnavailable, "no Authorize in this host")
	}
	return h.AuthorizeFunc(ctx, p, permission, res)
}

// Audit calls AuditFunc.
func (h HostFuncs) Audit(ctx context.Context, e sdk.AuditEntry) error {
	if h.AuditFunc == nil {
		return sdk.Errorf(sdk.ErrUnavailable, "no Audit in this host")
	}
	return h.AuditFunc(ctx, e)
}

// TenantConfig calls TenantConfigFunc.
func (h HostFuncs) TenantConfig(ctx context.Context, tenantID string) (json.RawMessage, bool, error) {
	if h.TenantConfigFunc == nil {
		return nil, false, sdk.Errorf(sdk.ErrUnavailable, "no TenantConfig in this host")
	}
	return h.TenantConfigFunc(ctx, tenantID)
}

// Membership calls MembershipFunc.
func (h HostFuncs) Membership(ctx context.Context, tenantID, userID string) (sdk.Membership, error) {
	if h.MembershipFunc == nil {
		return sdk.Membership{}, sdk.Errorf(sdk.ErrUnavailable, "no Membership in this host")
	}
	return h.MembershipFunc(ctx, tenantID, userID)
}
