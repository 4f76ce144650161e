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
	return p.fileIncident(ctx, ev, incidentFiling{
		OpenedFor: "audit_verification", Title: "Audit log verification failed",
		Description: "The kernel's hourly verification found the institution's audit chain broken: " + f.Reason,
		ItemID:      id, ItemTitle: "Audit verification failure " + ev.OccurredAt.UTC().Format(time.RFC3339), Doc: doc,
		Audit: map[string]any{"reason": truncate(f.Reason, 500)},
	})
}

// incidentFiling is a report of the plugin's own filed as evidence (kind
// OpenedFor) in the institution's open incident opened for it.
type incidentFiling struct {
	OpenedFor          string // the incident's opened_for and the item's kind
	Title, Description string // the incident's, when one is opened
	ItemID, ItemTitle  string
	Doc                []byte         // the evidence, JSON
	Audit              map[string]any // more of the incident's audit entry
}

// fileIncident stores f.Doc write-once under the item's ID and files it in
// the open incident opened for f.OpenedFor, opening one when none is (or
// when the last was closed), in the event's transaction. A second filing
// of the same item changes nothing.
func (p *Plugin) fileIncident(ctx context.Context, ev *sdk.Event, f incidentFiling) error {
	obj, err := storeFiling(ctx, ev, f)
	if err != nil {
		return err
	}
	var incident string
	var opened bool
	err = ev.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		incident, opened, err = fileInTx(ctx, tx, f, obj, ev.RequestID)
		return err
	})
	if err == nil && opened {
		p.auditOpened(ctx, ev, f, incident)
	}
	return err
}

// storeFiling writes the filing's document to the plugin's storage once.
func storeFiling(ctx context.Context, ev *sdk.Event, f incidentFiling) (sdk.Object, error) {
	obj, err := sdk.Storage(ev).Put(ctx, objectKey(f.ItemID), strings.NewReader(string(f.Doc)), sdk.PutOptions{ContentType: "application/json", IfNotExists: true})
	if errors.Is(err, sdk.ErrConflict) {
		// Written by an earlier attempt (write-once): file what is stored.
		obj, err = sdk.Storage(ev).Stat(ctx, objectKey(f.ItemID))
	}
	if err != nil {
		return obj, fmt.Errorf("storing the %s evidence: %w", f.OpenedFor, err)
	}
	return obj, nil
}

// fileInTx files the stored document in tx: the incident (found or
// opened) and the evidence item with its custody. It reports whether it
// opened the incident.
func fileInTx(ctx context.Context, tx pgx.Tx, f incidentFiling, obj sdk.Object, requestID string) (incident string, opened bool, err error) {
	var filed bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM evidence_items WHERE id = $1)`, f.ItemID).Scan(&filed); err != nil || filed {
		return "", false, err
	}
	err = tx.QueryRow(ctx, `SELECT id FROM incidents WHERE opened_for = $1 AND status = 'open'`, f.OpenedFor).Scan(&incident)
	if errors.Is(err, pgx.ErrNoRows) {
		opened = true
		err = tx.QueryRow(ctx, `INSERT INTO incidents (title, description, created_by, opened_for) VALUES ($1, $2, $3, $4) RETURNING id`,
			f.Title, truncate(f.Description, 5000), pluginActor, f.OpenedFor).Scan(&incident)
	}
	if err != nil {
		return "", false, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO evidence_items (id, incident_id, kind, title, object_key, content_type, sha256, size, state, added_by, stored_at)
		VALUES ($1, $2, $3, $4, $5, 'application/json', $6, $7, 'stored', $8, now())`,
		f.ItemID, incident, f.OpenedFor, f.ItemTitle, objectKey(f.ItemID), obj.SHA256, obj.Size, pluginActor); err != nil {
		return "", false, err
	}
	return incident, opened, custody(ctx, tx, f.ItemID, "added", pluginActor, requestID, obj.SHA256)
}

// auditOpened audits an incident the plugin opened.
func (p *Plugin) auditOpened(ctx context.Context, ev *sdk.Event, f incidentFiling, incident string) {
	data := map[string]any{"opened_for": f.OpenedFor}
	for k, v := range f.Audit {
		data[k] = v
	}
	p.audit(ctx, ev, sdk.Principal{}, ev.RequestID, "governance.incident.open", "governance_incident", incident, data)
}
