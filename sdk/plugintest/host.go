package plugintest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/edulure/edulure/sdk"
)

// recordingHost is the default sdk.Host of a Harness.
type recordingHost struct {
	h *Harness

	mu    sync.Mutex
	audit []sdk.AuditEntry
}

var _ sdk.Host = (*recordingHost)(nil)

// Authorize allows when p holds permission and res belongs to p's
// institution (or to none).
func (r *recordingHost) Authorize(_ context.Context, p sdk.Principal, permission string, res sdk.Resource) (bool, error) {
	p = r.h.Resolve(p)
	return p.Can(permission) && (res.TenantID == "" || res.TenantID == p.TenantID), nil
}

// Audit records e after the checks a real audit log makes.
func (r *recordingHost) Audit(_ context.Context, e sdk.AuditEntry) error {
	if !strings.HasPrefix(e.Action, r.h.manifest.Name+".") {
		return sdk.Errorf(sdk.ErrInvalid, "audit action %q must start with %q", e.Action, r.h.manifest.Name+".")
	}
	if e.Details != nil {
		if _, err := json.Marshal(e.Details); err != nil {
			return err
		}
	}
	e.Actor.Roles, e.Actor.Permissions = slices.Clone(e.Actor.Roles), slices.Clone(e.Actor.Permissions)
	r.mu.Lock()
	r.audit = append(r.audit, e)
	r.mu.Unlock()
	return nil
}

// TenantConfig answers from SetTenantConfig and SetEnabled.
func (r *recordingHost) TenantConfig(_ context.Context, tenantID string) (json.RawMessage, bool, error) {
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
