package governance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// EventAuditVerificationFailed is the kernel's report that an
// institution's audit chain is broken: an entry changed, deleted or out of
// sequence, or the chain no longer holds its last signed checkpoint
// (docs/events.md). The kernel repeats it every hour until dealt with.
const EventAuditVerificationFailed = "audit.verification.failed.v1"

// AuditFailureDocumentType names the evidence document of a failure.
const AuditFailureDocumentType = "edulure.governance.audit_verification_failed.v1"

// AuditFailure is the kernel's event data as filed, field by field.
type AuditFailure struct {
	Chain         string `json:"chain"`
	Reason        string `json:"reason"`
	Entries       int64  `json:"entries"`
	BrokenAtSeq   *int64 `json:"broken_at_seq,omitempty"`
	CheckpointSeq *int64 `json:"checkpoint_seq,omitempty"`
}

// onAuditVerificationFailed opens an incident "Audit log verification
// failed" (or adds to the one open: the kernel repeats the event hourly)
// and files the failure in it as evidence, written once under the event's
// ID.
func (p *Plugin) onAuditVerificationFailed(ctx context.Context, ev *sdk.Event) error {
	var f AuditFailure
	if err := ev.Decode(&f); err != nil {
		return err
	}
	id, ok := sdk.NormalizeUUID(ev.ID)
	if !ok || ev.Tenant() == "" || ev.Source != "kernel" {
		return nil // the platform's chain is the operator's; a plugin cannot publish it
	}
	doc, err := json.Marshal(map[string]any{"type": AuditFailureDocumentType, "tenant_id": ev.Tenant(), "event_id": ev.ID,
		"occurred_at": ev.OccurredAt.UTC(), "failure": f})
	if err != nil {
		return err
	}
	obj, err := sdk.Storage(ev).Put(ctx, objectKey(id), strings.NewReader(string(doc)), sdk.PutOptions{ContentType: "application/json", IfNotExists: true})
	if errors.Is(err, sdk.ErrConflict) {
		// Written by an earlier attempt (write-once): file what is stored.
		obj, err = sdk.Storage(ev).Stat(ctx, objectKey(id))
	}
	if err != nil {
		return fmt.Errorf("storing the audit failure: %w", err)
	}
	var incident string
	var opened bool
	err = ev.Tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id FROM incidents WHERE opened_for = 'audit_verification' AND status = 'open'`).Scan(&incident)
		if errors.Is(err, pgx.ErrNoRows) {
			opened = true
			err = tx.QueryRow(ctx, `INSERT INTO incidents (title, description, created_by, opened_for) VALUES ($1, $2, $3, 'audit_verification') RETURNING id`,
				"Audit log verification failed", truncate("The kernel's hourly verification found the institution's audit chain broken: "+f.Reason, 5000), pluginActor).Scan(&incident)
		}
		if err != nil {
			return err
		}
		title := "Audit verification failure " + ev.OccurredAt.UTC().Format(time.RFC3339)
		if _, err := tx.Exec(ctx, `INSERT INTO evidence_items (id, incident_id, kind, title, object_key, content_type, sha256, size, state, added_by, stored_at)
			VALUES ($1, $2, 'audit_verification', $3, $4, 'application/json', $5, $6, 'stored', $7, now()) ON CONFLICT (id) DO NOTHING`,
			id, incident, title, objectKey(id), obj.SHA256, obj.Size, pluginActor); err != nil {
			return err
		}
		return custody(ctx, tx, id, "added", pluginActor, ev.RequestID, obj.SHA256)
	})
	if err != nil {
		return err
	}
	if opened {
		p.audit(ctx, ev, sdk.Principal{}, ev.RequestID, "governance.incident.open", "governance_incident", incident,
			map[string]any{"opened_for": "audit_verification", "reason": truncate(f.Reason, 500)})
	}
	return nil
}
