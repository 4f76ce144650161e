package governance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// EventErasureCompleted is the kernel's event of a completed erasure: what
// each step changed, per data class and table, naming the request and
// never the person (docs/events.md).
const EventErasureCompleted = "privacy.erasure.completed.v1"

// SignPurposeReceipt is the purpose of an erasure receipt's signature.
const SignPurposeReceipt = Name + ".erasure.receipt"

// ReceiptType names the signed document of a receipt.
const ReceiptType = "edulure.governance.erasure_receipt.v1"

// ErasureCount is what one step changed in one class and table.
type ErasureCount struct {
	Class      string `json:"class"`
	Table      string `json:"table"`
	Deleted    int64  `json:"deleted"`
	Anonymised int64  `json:"anonymised"`
	References int64  `json:"references"`
	Objects    int64  `json:"objects"`
}

// ErasureStep is one step of an erasure: the kernel's or a plugin's.
type ErasureStep struct {
	Step   string         `json:"step"`
	Counts []ErasureCount `json:"counts"`
}

// ErasureVerification is the kernel's check, once every step was done, that
// an export of the erased person comes back empty: per source (the
// kernel, each plugin with data classes) the rows and objects it still
// yielded, per class, and the error of a source that could not be
// checked. VerifiedEmpty is false when any source held something or
// failed.
type ErasureVerification struct {
	VerifiedEmpty bool                    `json:"verified_empty"`
	CheckedAt     time.Time               `json:"checked_at"`
	Sources       []ErasureVerifiedSource `json:"sources"`
}

// ErasureVerifiedSource is one source's share of a verification.
type ErasureVerifiedSource struct {
	Source  string                 `json:"source"`
	Rows    int64                  `json:"rows"`
	Objects int64                  `json:"objects"`
	Classes []ErasureVerifiedClass `json:"classes"`
	Error   string                 `json:"error,omitempty"`
}

// ErasureVerifiedClass is what one class still held.
type ErasureVerifiedClass struct {
	Class   string `json:"class"`
	Table   string `json:"table"`
	Rows    int64  `json:"rows"`
	Objects int64  `json:"objects"`
}

// ReceiptDocument is the signed document of a receipt. It holds what
// the kernel's event holds, re-encoded field by field (so that nothing
// else can ride along), and no personal data: the erasure's ID, times and
// counts.
type ReceiptDocument struct {
	Type        string        `json:"type"`
	TenantID    string        `json:"tenant_id"`
	ErasureID   string        `json:"erasure_id"`
	EventID     string        `json:"event_id"`
	Self        bool          `json:"self"`
	StartedAt   *time.Time    `json:"started_at"`
	CompletedAt time.Time     `json:"completed_at"`
	Steps       []ErasureStep `json:"steps"`
	Deleted     int64         `json:"deleted"`
	Anonymised  int64         `json:"anonymised"`
	References  int64         `json:"references"`
	Objects     int64         `json:"objects"`
	// Verification: the kernel's export of the person after the erasure;
	// null when the event carried none (a kernel before it existed).
	Verification *ErasureVerification `json:"verification"`
}

// Receipt is a stored receipt.
type Receipt struct {
	ErasureID   string        `json:"erasure_id" format:"uuid"`
	CompletedAt time.Time     `json:"completed_at"`
	ReceivedAt  time.Time     `json:"received_at"`
	Steps       []ErasureStep `json:"steps"`
	// VerifiedEmpty is the signed document's verification.verified_empty;
	// absent when the kernel sent no verification.
	VerifiedEmpty *bool          `json:"verified_empty,omitempty" doc:"whether an export of the erased person came back empty (the kernel's verification, in payload); absent when the event carried none"`
	Payload       string         `json:"payload" doc:"the signed document, exactly as signed (JSON text)"`
	Signature     *sdk.Signature `json:"signature" doc:"the kernel's signature of payload: verify it with /.well-known/jwks.json"`
}

func (p *Plugin) erasureRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/governance/erasures/receipts", Permission: PermErasureRead,
			Summary: "Signed receipts of completed erasures, newest first", Paginated: true, Response: sdk.Page[Receipt]{}, Handler: p.listReceipts},
		{Method: "GET", Path: "/api/v1/governance/erasures/receipts/{erasure_id}", Permission: PermErasureRead,
			Summary: "The signed receipt of one completed erasure", Response: Receipt{}, Handler: p.getReceipt},
	}
}

func (p *Plugin) subscriptions() []sdk.Subscription {
	return []sdk.Subscription{{
		Type: EventErasureCompleted, Handler: p.onErasureCompleted,
		// Erasures completed before the plugin was enabled get their
		// receipts too, from what the event log still holds.
		CatchUp: sdk.CatchUpRetained(),
	}, {
		// commerce's reconciliation findings, filed as evidence.
		Type: EventBillingAnomaly, Handler: p.onBillingAnomaly,
	}, {
		// a broken audit chain: an incident with its evidence.
		Type: EventAuditVerificationFailed, Handler: p.onAuditVerificationFailed, Ordered: true,
	}}
}

// onErasureCompleted signs and stores a receipt, once per erasure (a
// redelivery, or a second event of the same erasure, changes nothing).
func (p *Plugin) onErasureCompleted(ctx context.Context, ev *sdk.Event) error {
	var in struct {
		ErasureID    string               `json:"erasure_id"`
		Self         bool                 `json:"self"`
		StartedAt    *time.Time           `json:"started_at"`
		CompletedAt  time.Time            `json:"completed_at"`
		Steps        []ErasureStep        `json:"steps"`
		Verification *ErasureVerification `json:"verification"`
	}
	if err := ev.Decode(&in); err != nil {
		return err
	}
	id, ok := sdk.NormalizeUUID(in.ErasureID)
	if !ok || ev.Tenant() == "" || in.CompletedAt.IsZero() {
		// Not what the kernel's schema lets through: nothing to sign.
		if p.env != nil {
			p.env.Logger.Error("an erasure-completed event without an erasure ID, institution or completion time; no receipt", "event", ev.ID)
		}
		return nil
	}
	doc := ReceiptDocument{Type: ReceiptType, TenantID: ev.Tenant(), ErasureID: id, EventID: ev.ID, Self: in.Self,
		StartedAt: in.StartedAt, CompletedAt: in.CompletedAt.UTC(), Steps: []ErasureStep{}}
	for _, st := range in.Steps {
		if st.Counts == nil {
			st.Counts = []ErasureCount{}
		}
		for _, c := range st.Counts {
			doc.Deleted += c.Deleted
			doc.Anonymised += c.Anonymised
			doc.References += c.References
			doc.Objects += c.Objects
		}
		doc.Steps = append(doc.Steps, st)
	}
	if v := in.Verification; v != nil {
		// Field by field, as the steps: nothing else rides along.
		dv := &ErasureVerification{VerifiedEmpty: v.VerifiedEmpty, CheckedAt: v.CheckedAt.UTC(), Sources: []ErasureVerifiedSource{}}
		for _, src := range v.Sources {
			ds := ErasureVerifiedSource{Source: src.Source, Rows: src.Rows, Objects: src.Objects, Error: src.Error, Classes: []ErasureVerifiedClass{}}
			for _, c := range src.Classes {
				ds.Classes = append(ds.Classes, ErasureVerifiedClass{Class: c.Class, Table: c.Table, Rows: c.Rows, Objects: c.Objects})
			}
			if ds.Rows > 0 || ds.Objects > 0 || ds.Error != "" {
				dv.VerifiedEmpty = false // never signed as empty when a source says otherwise
			}
			dv.Sources = append(dv.Sources, ds)
		}
		doc.Verification = dv
	}
	payload, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	sig, err := ev.Host().Sign(ctx, SignPurposeReceipt, payload)
	if err != nil {
		return err // retried by the kernel: a receipt is never stored unsigned
	}
	sigJSON, _ := json.Marshal(sig)
	steps, _ := json.Marshal(doc.Steps)
	// Something of the person outlived the erasure: an incident for the
	// compliance officer, with the signed receipt as its evidence, filed
	// with the receipt.
	var filing *incidentFiling
	var obj sdk.Object
	if doc.Verification != nil && !doc.Verification.VerifiedEmpty {
		evidence, err := json.Marshal(map[string]any{"type": ErasureNotEmptyDocumentType, "receipt": json.RawMessage(payload), "signature": sig})
		if err != nil {
			return err
		}
		filing = &incidentFiling{
			OpenedFor: "erasure_verification", Title: "Erasure not verified empty",
			Description: "An export of an erased person, run by the kernel once every step was done, still found their data: " +
				"each receipt's verification names the sources, classes and tables; resume or repeat the erasure.",
			ItemID: id, ItemTitle: "Erasure " + id + " not verified empty", Doc: evidence,
			Audit: map[string]any{"erasure_id": id},
		}
		if obj, err = storeFiling(ctx, ev, *filing); err != nil {
			return err
		}
	}
	var stored, opened bool
	var incident string
	err = ev.Tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO erasure_receipts (erasure_id, completed_at, counts, payload, signature) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, erasure_id) DO NOTHING`, id, doc.CompletedAt, steps, payload, sigJSON)
		stored = tag.RowsAffected() == 1
		if err != nil || !stored || filing == nil {
			return err
		}
		incident, opened, err = fileInTx(ctx, tx, *filing, obj, ev.RequestID)
		return err
	})
	if err != nil || !stored {
		return err
	}
	p.audit(ctx, ev, sdk.Principal{}, ev.RequestID, "governance.erasure.receipt", "privacy_erasure", id,
		receiptAudit(doc))
	if opened {
		p.auditOpened(ctx, ev, *filing, incident)
	}
	return nil
}

// ErasureNotEmptyDocumentType names the evidence of an erasure that an
// export of the person found not empty: the signed receipt.
const ErasureNotEmptyDocumentType = "edulure.governance.erasure_not_empty.v1"

const receiptColumns = `erasure_id, completed_at, received_at, counts, payload, signature`

func scanReceipt(row pgx.Row) (Receipt, error) {
	var r Receipt
	var steps, payload, sig []byte
	if err := row.Scan(&r.ErasureID, &r.CompletedAt, &r.ReceivedAt, &steps, &payload, &sig); err != nil {
		return r, err
	}
	r.Payload = string(payload)
	var doc struct {
		Verification *ErasureVerification `json:"verification"`
	}
	if json.Unmarshal(payload, &doc) == nil && doc.Verification != nil {
		r.VerifiedEmpty = &doc.Verification.VerifiedEmpty
	}
	r.Steps = []ErasureStep{}
	_ = json.Unmarshal(steps, &r.Steps)
	var s sdk.Signature
	if json.Unmarshal(sig, &s) == nil && s.JWS != "" {
		r.Signature = &s
	}
	return r, nil
}

func (p *Plugin) listReceipts(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return newestFirst(ctx, req, `SELECT `+receiptColumns+` FROM erasure_receipts WHERE true`, "received_at", "erasure_id", nil,
		scanReceipt, func(r Receipt) (time.Time, string) { return r.ReceivedAt, r.ErasureID })
}

func (p *Plugin) getReceipt(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("erasure_id")
	if err != nil {
		return nil, err
	}
	var r Receipt
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanReceipt(tx.QueryRow(ctx, `SELECT `+receiptColumns+` FROM erasure_receipts WHERE erasure_id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no receipt of erasure %s in this institution: it has not completed, or belongs to another institution", id)
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, r)
}

func receiptAudit(doc ReceiptDocument) map[string]any {
	data := map[string]any{"deleted": doc.Deleted, "anonymised": doc.Anonymised, "references": doc.References, "objects": doc.Objects}
	if doc.Verification != nil {
		data["verified_empty"] = doc.Verification.VerifiedEmpty
	}
	return data
}
