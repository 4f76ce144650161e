package governance

import (
	"context"
	"encoding/json"
	"time"

	"github.com/edulure/edulure/sdk"
)

// EventBillingAnomaly is the commerce plugin's report of billing drift its
// reconciliation (or webhook processing) found (docs/commerce.md).
const EventBillingAnomaly = "commerce.billing.anomaly.v1"

// AnomalyDocumentType names the evidence document of an anomaly.
const AnomalyDocumentType = "edulure.governance.billing_anomaly.v1"

// BillingAnomaly is commerce's anomaly as filed: the fields commerce's
// schema declares, re-encoded one by one.
type BillingAnomaly struct {
	AnomalyID  string `json:"anomaly_id"`
	Kind       string `json:"kind"`
	ObjectType string `json:"object_type"`
	ObjectID   string `json:"object_id"`
	Detail     string `json:"detail"`
	Repaired   bool   `json:"repaired"`
	RunID      string `json:"run_id,omitempty"`
}

// AnomalyDocument is the evidence filed for an anomaly.
type AnomalyDocument struct {
	Type       string         `json:"type"`
	TenantID   string         `json:"tenant_id"`
	EventID    string         `json:"event_id"`
	Source     string         `json:"source"`
	OccurredAt time.Time      `json:"occurred_at"`
	Anomaly    BillingAnomaly `json:"anomaly"`
}

// onBillingAnomaly files the anomaly as evidence, written once under the
// event's ID (a redelivery stores nothing twice).
func (p *Plugin) onBillingAnomaly(ctx context.Context, ev *sdk.Event) error {
	var a BillingAnomaly
	if err := ev.Decode(&a); err != nil {
		return err
	}
	id, ok := sdk.NormalizeUUID(ev.ID)
	if !ok || ev.Tenant() == "" || ev.Source != "commerce" {
		if p.env != nil {
			p.env.Logger.Error("a billing anomaly event not from commerce, or without an ID or institution; not filed", "event", ev.ID, "source", ev.Source)
		}
		return nil
	}
	doc, err := json.Marshal(AnomalyDocument{Type: AnomalyDocumentType, TenantID: ev.Tenant(), EventID: ev.ID, Source: ev.Source, OccurredAt: ev.OccurredAt.UTC(), Anomaly: a})
	if err != nil {
		return err
	}
	title := "Billing anomaly: " + truncate(a.Kind, 100)
	if a.Repaired {
		title += " (repaired)"
	}
	_, err = p.storeEvidenceAs(ctx, ev, id, "billing_anomaly", title, "application/json", doc, pluginActor, ev.RequestID)
	return err
}
