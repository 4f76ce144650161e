package governance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Incident groups evidence about one matter.
type Incident struct {
	ID          string     `json:"id" format:"uuid"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Status      string     `json:"status" enum:"open,closed"`
	CreatedBy   string     `json:"created_by" doc:"user:<id> or apikey:<id>"`
	CreatedAt   time.Time  `json:"created_at"`
	ClosedAt    *time.Time `json:"closed_at"`
	ClosedBy    *string    `json:"closed_by"`
}

// IncidentDetail is an incident with its evidence.
type IncidentDetail struct {
	Incident
	Evidence []EvidenceItem `json:"evidence"`
}

// NewIncident opens an incident.
type NewIncident struct {
	Title       string `json:"title" minLength:"1" maxLength:"200"`
	Description string `json:"description,omitempty" maxLength:"5000"`
}

// EvidenceItem is one piece of evidence: an object in the plugin's
// storage, written once, with the SHA-256 the kernel recorded when it
// was stored.
type EvidenceItem struct {
	ID             string     `json:"id" format:"uuid"`
	IncidentID     *string    `json:"incident_id" format:"uuid" doc:"null for evidence the plugin files on its own (retention executions, review reports, erasure receipts)"`
	Kind           string     `json:"kind" enum:"upload,retention_execution,access_review,billing_anomaly,audit_verification,erasure_verification"`
	Title          string     `json:"title"`
	ContentType    string     `json:"content_type"`
	State          string     `json:"state" enum:"pending,stored" doc:"pending until the upload is sealed"`
	DeclaredSHA256 *string    `json:"declared_sha256"`
	DeclaredSize   *int64     `json:"declared_size"`
	SHA256         *string    `json:"sha256" doc:"the content's SHA-256 as stored, lowercase hex"`
	Size           *int64     `json:"size"`
	AddedBy        string     `json:"added_by"`
	CreatedAt      time.Time  `json:"created_at"`
	StoredAt       *time.Time `json:"stored_at"`
}

// EvidenceDetail is an item with its chain of custody.
type EvidenceDetail struct {
	EvidenceItem
	Custody []CustodyEvent `json:"custody"`
}

// CustodyEvent is one link of an item's chain of custody.
type CustodyEvent struct {
	Action    string    `json:"action" enum:"added,viewed,exported,verified,integrity_failed"`
	Actor     string    `json:"actor"`
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id"`
	SHA256    *string   `json:"sha256" doc:"the SHA-256 computed when the content was read (verified, integrity_failed)"`
}

// NewEvidence declares an upload: what it is and the SHA-256 and size of
// the file the uploader holds. The answer carries a URL to PUT the file
// to, once.
type NewEvidence struct {
	Title       string `json:"title" minLength:"1" maxLength:"200"`
	ContentType string `json:"content_type" minLength:"3" maxLength:"129" pattern:"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$"`
	SHA256      string `json:"sha256" pattern:"^[0-9a-f]{64}$" doc:"the file's SHA-256, lowercase hex: sealing refuses other content"`
	Size        int64  `json:"size" minimum:"0" doc:"the file's size in bytes"`
}

// UploadTicket is where to upload a declared item, once.
type UploadTicket struct {
	Item      EvidenceItem `json:"item"`
	UploadURL string       `json:"upload_url" doc:"PUT the file here (no token; relative to the API when it starts with /), with the declared Content-Type; a second upload is refused with 409"`
	ExpiresAt time.Time    `json:"expires_at"`
}

// VerifyResult is a verification of an item's content against its
// recorded SHA-256.
type VerifyResult struct {
	ItemID         string `json:"item_id" format:"uuid"`
	RecordedSHA256 string `json:"recorded_sha256"`
	ComputedSHA256 string `json:"computed_sha256"`
	Size           int64  `json:"size"`
	OK             bool   `json:"ok"`
}

// EvidenceQuery filters the list of evidence.
type EvidenceQuery struct {
	Kind string `json:"kind,omitempty" enum:"upload,retention_execution,access_review,billing_anomaly,audit_verification,erasure_verification"`
}

func (p *Plugin) evidenceRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/governance/incidents", Permission: PermEvidenceManage, Summary: "Open an incident",
			Request: NewIncident{}, Response: Incident{}, Status: http.StatusCreated, Handler: p.createIncident},
		{Method: "GET", Path: "/api/v1/governance/incidents", Permission: PermEvidenceRead, Summary: "List incidents, newest first",
			Paginated: true, Response: sdk.Page[Incident]{}, Handler: p.listIncidents},
		{Method: "GET", Path: "/api/v1/governance/incidents/{incident_id}", Permission: PermEvidenceRead, Summary: "An incident and its evidence",
			Response: IncidentDetail{}, Handler: p.getIncident},
		{Method: "POST", Path: "/api/v1/governance/incidents/{incident_id}/close", Permission: PermEvidenceManage,
			Summary: "Close an incident: it takes no more evidence (what it holds stays)", Response: Incident{}, Handler: p.closeIncident},
		{Method: "POST", Path: "/api/v1/governance/incidents/{incident_id}/evidence", Permission: PermEvidenceManage,
			Summary: "Declare an evidence file and get a URL to upload it once", Request: NewEvidence{}, Response: UploadTicket{}, Status: http.StatusCreated, Handler: p.declareEvidence},
		{Method: "GET", Path: "/api/v1/governance/incidents/{incident_id}/export", Permission: PermEvidenceRead,
			Summary: "Export an incident's evidence as a zip bundle with a manifest (recorded as exported)", ContentType: "application/zip", Stream: p.exportIncident},
		{Method: "GET", Path: "/api/v1/governance/evidence", Permission: PermEvidenceRead, Summary: "List evidence, newest first",
			Paginated: true, Query: EvidenceQuery{}, Response: sdk.Page[EvidenceItem]{}, Handler: p.listEvidence},
		{Method: "GET", Path: "/api/v1/governance/evidence/{item_id}", Permission: PermEvidenceRead, Summary: "An evidence item and its chain of custody",
			Response: EvidenceDetail{}, Handler: p.getEvidence},
		{Method: "POST", Path: "/api/v1/governance/evidence/{item_id}/seal", Permission: PermEvidenceManage,
			Summary: "Seal an uploaded item: its SHA-256 and size must be the declared ones", Response: EvidenceItem{}, Handler: p.sealEvidence},
		{Method: "GET", Path: "/api/v1/governance/evidence/{item_id}/content", Permission: PermEvidenceRead,
			Summary: "Download an item, its SHA-256 verified as it streams (recorded as viewed)", ContentType: "application/octet-stream", Stream: p.downloadEvidence},
		{Method: "POST", Path: "/api/v1/governance/evidence/{item_id}/verify", Permission: PermEvidenceRead,
			Summary: "Read an item's content and compare its SHA-256 with the recorded one", Response: VerifyResult{}, Handler: p.verifyEvidence},
	}
}

const incidentColumns = `id, title, description, status, created_by, created_at, closed_at, closed_by`

func scanIncident(row pgx.Row) (Incident, error) {
	var i Incident
	err := row.Scan(&i.ID, &i.Title, &i.Description, &i.Status, &i.CreatedBy, &i.CreatedAt, &i.ClosedAt, &i.ClosedBy)
	return i, err
}

const itemColumns = `id, incident_id, kind, title, content_type, state, declared_sha256, declared_size, sha256, size, added_by, created_at, stored_at`

func scanItem(row pgx.Row) (EvidenceItem, error) {
	var e EvidenceItem
	err := row.Scan(&e.ID, &e.IncidentID, &e.Kind, &e.Title, &e.ContentType, &e.State, &e.DeclaredSHA256, &e.DeclaredSize, &e.SHA256, &e.Size, &e.AddedBy, &e.CreatedAt, &e.StoredAt)
	return e, err
}

func objectKey(itemID string) string { return "evidence/" + itemID }

func (p *Plugin) createIncident(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in NewIncident
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := trimmed(&bad, "title", in.Title, true)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var inc Incident
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		inc, err = scanIncident(tx.QueryRow(ctx, `INSERT INTO incidents (title, description, created_by) VALUES ($1, $2, $3) RETURNING `+incidentColumns,
			title, strings.TrimSpace(in.Description), actor(req.Principal)))
		return err
	})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.incident.open", "governance_incident", inc.ID, map[string]any{"title": inc.Title})
	return sdk.JSON(http.StatusCreated, inc)
}

func (p *Plugin) closeIncident(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("incident_id")
	if err != nil {
		return nil, err
	}
	var inc Incident
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if inc, err = scanIncident(tx.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1 FOR UPDATE`, id)); err != nil {
			return err
		}
		if inc.Status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "incident %s is closed already", id).WithCode("incident-closed")
		}
		inc, err = scanIncident(tx.QueryRow(ctx, `UPDATE incidents SET status = 'closed', closed_at = now(), closed_by = $2 WHERE id = $1 RETURNING `+incidentColumns,
			id, actor(req.Principal)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no incident %s in this institution", id)
	}
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.incident.close", "governance_incident", id, nil)
	return sdk.JSON(http.StatusOK, inc)
}

func (p *Plugin) listIncidents(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return newestFirst(ctx, req, `SELECT `+incidentColumns+` FROM incidents WHERE true`, "created_at", "id", nil,
		scanIncident, func(i Incident) (time.Time, string) { return i.CreatedAt, i.ID })
}

func (p *Plugin) getIncident(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("incident_id")
	if err != nil {
		return nil, err
	}
	var out IncidentDetail
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		if out.Incident, err = scanIncident(tx.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id)); err != nil {
			return err
		}
		out.Evidence, err = incidentItems(ctx, tx, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no incident %s in this institution", id)
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func incidentItems(ctx context.Context, tx pgx.Tx, incidentID string) ([]EvidenceItem, error) {
	rows, err := tx.Query(ctx, `SELECT `+itemColumns+` FROM evidence_items WHERE incident_id = $1 ORDER BY created_at, id`, incidentID)
	if err != nil {
		return nil, err
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EvidenceItem, error) { return scanItem(r) })
	if items == nil {
		items = []EvidenceItem{}
	}
	return items, err
}

func (p *Plugin) declareEvidence(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	incidentID, err := req.UUIDParam("incident_id")
	if err != nil {
		return nil, err
	}
	var in NewEvidence
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := trimmed(&bad, "title", in.Title, true)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	itemID := uuid.NewString()
	var item EvidenceItem
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var status string
		// FOR SHARE: a close waits for this declaration, or this sees it.
		if err := tx.QueryRow(ctx, `SELECT status FROM incidents WHERE id = $1 FOR SHARE`, incidentID).Scan(&status); err != nil {
			return err
		}
		if status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "incident %s is closed: it takes no more evidence", incidentID).WithCode("incident-closed")
		}
		item, err = scanItem(tx.QueryRow(ctx, `INSERT INTO evidence_items (id, incident_id, kind, title, object_key, content_type, declared_sha256, declared_size, added_by)
			VALUES ($1, $2, 'upload', $3, $4, $5, $6, $7, $8) RETURNING `+itemColumns,
			itemID, incidentID, title, objectKey(itemID), in.ContentType, in.SHA256, in.Size, actor(req.Principal)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no incident %s in this institution", incidentID)
	}
	if err != nil {
		return nil, err
	}
	expiry := time.Duration(cfg.UploadURLSeconds) * time.Second
	expires := p.now().Add(expiry).UTC()
	url, err := sdk.Storage(req).SignedURL(ctx, objectKey(itemID), http.MethodPut, expiry,
		sdk.SignedURLOptions{ContentType: in.ContentType, IfNotExists: true})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.evidence.declare", "governance_evidence", itemID,
		map[string]any{"incident_id": incidentID, "title": title, "sha256": in.SHA256, "size": in.Size})
	return sdk.JSON(http.StatusCreated, UploadTicket{Item: item, UploadURL: url, ExpiresAt: expires})
}

// loadItem reads an item of the request's institution.
func loadItem(ctx context.Context, s sdk.Scope, id string) (EvidenceItem, error) {
	var item EvidenceItem
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		item, err = scanItem(tx.QueryRow(ctx, `SELECT `+itemColumns+` FROM evidence_items WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return item, sdk.Errorf(sdk.ErrNotFound, "no evidence item %s in this institution", id)
	}
	return item, err
}

func (p *Plugin) sealEvidence(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("item_id")
	if err != nil {
		return nil, err
	}
	item, err := loadItem(ctx, req, id)
	if err != nil {
		return nil, err
	}
	if item.State == "stored" {
		return nil, sdk.Errorf(sdk.ErrConflict, "evidence item %s is sealed already: evidence is written once", id).WithCode("evidence-sealed")
	}
	obj, err := sdk.Storage(req).Stat(ctx, objectKey(id))
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, sdk.Errorf(sdk.ErrConflict, "evidence item %s has not been uploaded yet: PUT it to its upload URL first", id).WithCode("evidence-not-uploaded")
	}
	if err != nil {
		return nil, err
	}
	if obj.SHA256 != deref(item.DeclaredSHA256) || item.DeclaredSize == nil || obj.Size != *item.DeclaredSize {
		// Not the declared file: it is not evidence. Removed, so that the
		// right one can be uploaded while the URL lasts.
		if derr := sdk.Storage(req).Delete(ctx, objectKey(id)); derr != nil && !errors.Is(derr, sdk.ErrNotFound) {
			return nil, derr
		}
		p.audit(ctx, req, req.Principal, req.RequestID, "governance.evidence.refuse", "governance_evidence", id,
			map[string]any{"declared_sha256": deref(item.DeclaredSHA256), "uploaded_sha256": obj.SHA256, "uploaded_size": obj.Size})
		return nil, (&sdk.Error{Kind: sdk.ErrInvalid, Code: "evidence-hash-mismatch",
			Detail: fmt.Sprintf("the uploaded file's SHA-256 is %s (%d bytes), not the declared %s: it was removed; upload the declared file", obj.SHA256, obj.Size, deref(item.DeclaredSHA256))})
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		// A closed incident takes no more evidence, an item declared
		// before the close included: it stays unsealed (listed as such in
		// the incident's export).
		if item.IncidentID != nil {
			var status string
			if err := tx.QueryRow(ctx, `SELECT status FROM incidents WHERE id = $1 FOR SHARE`, *item.IncidentID).Scan(&status); err != nil {
				return err
			}
			if status != "open" {
				return sdk.Errorf(sdk.ErrConflict, "incident %s is closed: it takes no more evidence, so item %s stays unsealed", *item.IncidentID, id).WithCode("incident-closed")
			}
		}
		var err error
		item, err = scanItem(tx.QueryRow(ctx, `UPDATE evidence_items SET state = 'stored', sha256 = $2, size = $3, stored_at = now()
			WHERE id = $1 AND state = 'pending' RETURNING `+itemColumns, id, obj.SHA256, obj.Size))
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrConflict, "evidence item %s is sealed already: evidence is written once", id).WithCode("evidence-sealed")
		}
		if err != nil {
			return err
		}
		return custody(ctx, tx, id, "added", actor(req.Principal), req.RequestID, obj.SHA256)
	})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.evidence.add", "governance_evidence", id,
		map[string]any{"sha256": obj.SHA256, "size": obj.Size, "incident_id": item.IncidentID})
	return sdk.JSON(http.StatusOK, item)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// custody appends a link to an item's chain of custody.
func custody(ctx context.Context, tx pgx.Tx, itemID, action, who, requestID, sum string) error {
	var s *string
	if sum != "" {
		s = &sum
	}
	if len(requestID) > 100 {
		requestID = requestID[:100]
	}
	_, err := tx.Exec(ctx, `INSERT INTO custody_events (item_id, action, actor, request_id, sha256) VALUES ($1, $2, $3, $4, $5)`,
		itemID, action, who, requestID, s)
	return err
}

func (p *Plugin) recordCustody(ctx context.Context, req *sdk.Request, itemID, action, sum string) error {
	return req.Tx(context.WithoutCancel(ctx), func(tx pgx.Tx) error {
		return custody(ctx, tx, itemID, action, actor(req.Principal), req.RequestID, sum)
	})
}

func (p *Plugin) listEvidence(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[EvidenceQuery](req)
	if err != nil {
		return nil, err
	}
	return newestFirst(ctx, req, `SELECT `+itemColumns+` FROM evidence_items WHERE ($1 = '' OR kind = $1)`, "created_at", "id", []any{q.Kind},
		scanItem, func(i EvidenceItem) (time.Time, string) { return i.CreatedAt, i.ID })
}

func (p *Plugin) getEvidence(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("item_id")
	if err != nil {
		return nil, err
	}
	var out EvidenceDetail
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		if out.EvidenceItem, err = scanItem(tx.QueryRow(ctx, `SELECT `+itemColumns+` FROM evidence_items WHERE id = $1`, id)); err != nil {
			return err
		}
		out.Custody, err = custodyOf(ctx, tx, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no evidence item %s in this institution", id)
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func custodyOf(ctx context.Context, tx pgx.Tx, itemID string) ([]CustodyEvent, error) {
	rows, err := tx.Query(ctx, `SELECT action, actor, at, request_id, sha256 FROM custody_events WHERE item_id = $1 ORDER BY at, id`, itemID)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CustodyEvent, error) {
		var c CustodyEvent
		err := r.Scan(&c.Action, &c.Actor, &c.At, &c.RequestID, &c.SHA256)
		return c, err
	})
	if out == nil {
		out = []CustodyEvent{}
	}
	return out, err
}

// storedItem reads a sealed item, or answers why it cannot be read.
func storedItem(ctx context.Context, req *sdk.Request) (EvidenceItem, error) {
	id, err := req.UUIDParam("item_id")
	if err != nil {
		return EvidenceItem{}, err
	}
	item, err := loadItem(ctx, req, id)
	if err != nil {
		return item, err
	}
	if item.State != "stored" {
		return item, sdk.Errorf(sdk.ErrConflict, "evidence item %s is not sealed yet: it has no content to read", id).WithCode("evidence-not-sealed")
	}
	return item, nil
}

// errIntegrity is the answer when stored content is not what was recorded.
func errIntegrity(itemID, recorded, found string) error {
	return (&sdk.Error{Kind: sdk.ErrConflict, Code: "evidence-integrity-failed",
		Detail: fmt.Sprintf("evidence item %s: the stored content's SHA-256 is %s, not the recorded %s; the failure is in its chain of custody and the audit log", itemID, found, recorded)})
}

// openVerified opens an item's object and checks the kernel's record of
// it against the item's; the reader's hash is the content's as read.
func (p *Plugin) openVerified(ctx context.Context, req *sdk.Request, item EvidenceItem) (io.ReadCloser, hash.Hash, error) {
	rd, obj, err := sdk.Storage(req).Get(ctx, objectKey(item.ID))
	if errors.Is(err, sdk.ErrNotFound) {
		p.integrityFailed(ctx, req, item, "missing")
		return nil, nil, (&sdk.Error{Kind: sdk.ErrConflict, Code: "evidence-integrity-failed",
			Detail: fmt.Sprintf("evidence item %s: its content is missing from storage; the failure is in its chain of custody and the audit log", item.ID)})
	}
	if err != nil {
		return nil, nil, err
	}
	if obj.SHA256 != deref(item.SHA256) {
		rd.Close()
		p.integrityFailed(ctx, req, item, obj.SHA256)
		return nil, nil, errIntegrity(item.ID, deref(item.SHA256), obj.SHA256)
	}
	return rd, sha256.New(), nil
}

func (p *Plugin) integrityFailed(ctx context.Context, req *sdk.Request, item EvidenceItem, found string) {
	sum := found
	if len(sum) != 64 {
		sum = ""
	}
	if err := p.recordCustody(ctx, req, item.ID, "integrity_failed", sum); err != nil && p.env != nil {
		p.env.Logger.Error("recording an integrity failure", "item", item.ID, "error", err)
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.evidence.integrity_failed", "governance_evidence", item.ID,
		map[string]any{"recorded_sha256": deref(item.SHA256), "found": found})
}

func (p *Plugin) downloadEvidence(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
	item, err := storedItem(ctx, req)
	if err != nil {
		return err
	}
	rd, h, err := p.openVerified(ctx, req, item)
	if err != nil {
		return err
	}
	defer rd.Close()
	if err := p.recordCustody(ctx, req, item.ID, "viewed", ""); err != nil {
		return err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.evidence.view", "governance_evidence", item.ID, nil)
	// Served as application/octet-stream whatever it is (the item's
	// content_type says what it is): evidence is downloaded, never
	// rendered by the API's origin.
	w.SetHeader("Content-Disposition", `attachment; filename="evidence-`+item.ID+`"`)
	w.SetHeader("ETag", `"`+deref(item.SHA256)+`"`)
	if _, err := io.Copy(io.MultiWriter(w, h), rd); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != deref(item.SHA256) {
		// The bytes read are not the recorded ones: the answer is cut
		// short (no final chunk), so no client takes it for the evidence.
		p.integrityFailed(ctx, req, item, got)
		return errIntegrity(item.ID, deref(item.SHA256), got)
	}
	return nil
}

func (p *Plugin) verifyEvidence(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	item, err := storedItem(ctx, req)
	if err != nil {
		return nil, err
	}
	out := VerifyResult{ItemID: item.ID, RecordedSHA256: deref(item.SHA256)}
	rd, obj, err := sdk.Storage(req).Get(ctx, objectKey(item.ID))
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		p.integrityFailed(ctx, req, item, "missing")
		return sdk.JSON(http.StatusOK, out)
	case err != nil:
		return nil, err
	}
	defer rd.Close()
	h := sha256.New()
	n, err := io.Copy(h, rd)
	if err != nil {
		return nil, err
	}
	out.ComputedSHA256, out.Size = hex.EncodeToString(h.Sum(nil)), n
	out.OK = out.ComputedSHA256 == out.RecordedSHA256 && obj.SHA256 == out.RecordedSHA256
	if !out.OK {
		p.integrityFailed(ctx, req, item, out.ComputedSHA256)
		return sdk.JSON(http.StatusOK, out)
	}
	if err := p.recordCustody(ctx, req, item.ID, "verified", out.ComputedSHA256); err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// storeEvidence files a document the plugin made (an execution record, a
// campaign report, a receipt) as a sealed item, written once.
func (p *Plugin) storeEvidence(ctx context.Context, s sdk.Scope, kind, title, contentType string, body []byte, by string, requestID string) (string, error) {
	return p.storeEvidenceAs(ctx, s, uuid.NewString(), kind, title, contentType, body, by, requestID)
}

// storeEvidenceAs is storeEvidence under a given item ID: done again with
// the same ID and content (a redelivered event), it stores nothing twice.
func (p *Plugin) storeEvidenceAs(ctx context.Context, s sdk.Scope, id, kind, title, contentType string, body []byte, by string, requestID string) (string, error) {
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		return fileEvidence(ctx, tx, s, id, kind, title, contentType, body, by, requestID)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// fileEvidence stores body as the sealed item id, in tx: the object
// (written once), the row and its "added" custody link. Done again with
// the same ID and content (a redelivered event), it stores nothing twice.
func fileEvidence(ctx context.Context, tx pgx.Tx, s sdk.Scope, id, kind, title, contentType string, body []byte, by string, requestID string) error {
	obj, err := sdk.Storage(s).Put(ctx, objectKey(id), strings.NewReader(string(body)), sdk.PutOptions{ContentType: contentType, IfNotExists: true})
	if errors.Is(err, sdk.ErrConflict) {
		// Written by an earlier attempt, and written once: the row
		// describes the object as it was stored then.
		obj, err = sdk.Storage(s).Stat(ctx, objectKey(id))
	}
	if err != nil {
		return fmt.Errorf("storing %s evidence: %w", kind, err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO evidence_items (id, kind, title, object_key, content_type, sha256, size, state, added_by, stored_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'stored', $8, now()) ON CONFLICT (id) DO NOTHING`, id, kind, title, objectKey(id), contentType, obj.SHA256, obj.Size, by)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	return custody(ctx, tx, id, "added", by, requestID, obj.SHA256)
}
