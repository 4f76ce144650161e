package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// hostClient is Host over the go-plugin broker.
type hostClient struct{ c pluginv1.HostClient }

var _ Host = (*hostClient)(nil)

func (h *hostClient) Authorize(ctx context.Context, p Principal, permission string, res Resource) (bool, error) {
	out, err := h.c.Authorize(ctx, &pluginv1.AuthorizeRequest{
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
	_, err := h.c.WriteAudit(ctx, &pluginv1.WriteAuditRequest{
		TenantId: e.TenantID, Actor: encodePrincipal(e.Actor), Action: e.Action,
		TargetType: e.TargetType, TargetId: e.TargetID, DetailsJson: details, RequestId: e.RequestID,
	})
	if err != nil {
		return fmt.Errorf("writing audit entry: %w", err)
	}
	return nil
}

func (h *hostClient) TenantConfig(ctx context.Context, tenantID string) (json.RawMessage, bool, error) {
	out, err := h.c.GetTenantConfig(ctx, &pluginv1.GetTenantConfigRequest{TenantId: tenantID})
	if err != nil {
		return nil, false, fmt.Errorf("reading tenant configuration: %w", err)
	}
	return orEmptyObject(out.ConfigJson), out.Enabled, nil
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
