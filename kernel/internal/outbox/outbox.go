package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/sdk/telemetry"
)

// Kernel event types. Their payloads are documented in docs/events.md.
const (
	UserCreated             = "identity.user.created.v1"
	PasswordResetRequested  = "identity.password_reset.requested.v1"
	MFALocked               = "identity.mfa.locked.v1"
	PasswordChanged         = "identity.password.changed.v1"
	VerificationRequested   = "identity.email_verification.requested.v1"
	EmailVerified           = "identity.email.verified.v1"
	MemberJoined            = "tenancy.member.joined.v1"
	MemberRolesChanged      = "tenancy.member.roles_changed.v1"
	MemberRemoved           = "tenancy.member.removed.v1"
	InvitationCreated       = "tenancy.invitation.created.v1"
	TenantCreated           = "tenancy.tenant.created.v1"
	PluginEnabled           = "tenancy.plugin.enabled.v1"
	PluginDisabled          = "tenancy.plugin.disabled.v1"
	ErasureCompleted        = "privacy.erasure.completed.v1"
	ExportCompleted         = "privacy.export.completed.v1"
	AuditCheckpointSigned   = "audit.checkpoint.signed.v1"
	AuditVerificationFailed = "audit.verification.failed.v1"
)

// Event is one event to publish.
type Event struct {
	Type      string
	TenantID  string // "" for platform events
	Actor     string // "user:<id>", "apikey:<id>", "system"
	RequestID string
	Data      any
	// Sealer seals the type's secret fields (see secret.go); an event of a
	// type with secrets is refused without one.
	Sealer *seal.Sealer
}

// Add writes ev to the outbox inside tx and returns its ID (UUIDv7, sortable).
func Add(ctx context.Context, tx pgx.Tx, ev Event) (string, error) {
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return "", fmt.Errorf("encoding event %s: %w", ev.Type, err)
	}
	id := uuid.Must(uuid.NewV7())
	if data, err = sealData(ev.Sealer, id.String(), ev.Type, data); err != nil {
		return "", err
	}
	var tenant any
	if ev.TenantID != "" {
		tenant = ev.TenantID
	}
	traceparent, _ := telemetry.Inject(ctx) // the publishing request's trace, for the delivery to link to
	_, err = tx.Exec(ctx, `INSERT INTO kernel.outbox (id, type, tenant_id, actor, request_id, data, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, ev.Type, tenant, ev.Actor, ev.RequestID, data, traceparent)
	if err != nil {
		return "", fmt.Errorf("writing event %s to the outbox: %w", ev.Type, err)
	}
	return id.String(), nil
}
