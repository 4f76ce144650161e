package governance

import (
	"archive/zip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// BundleManifest is manifest.json of an incident's export bundle.
type BundleManifest struct {
	Incident    Incident       `json:"incident"`
	ExportedAt  time.Time      `json:"exported_at"`
	ExportedBy  string         `json:"exported_by"`
	RequestID   string         `json:"request_id"`
	Items       []BundleItem   `json:"items"`
	NotIncluded []EvidenceItem `json:"not_included" doc:"items declared but not sealed: they have no content yet"`
	Algorithm   string         `json:"algorithm"`
}

// BundleItem is one file of a bundle.
type BundleItem struct {
	EvidenceItem
	File    string         `json:"file"`
	Custody []CustodyEvent `json:"custody" doc:"the chain of custody up to this export, which it ends"`
}

func (p *Plugin) exportIncident(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
	incidentID, err := req.UUIDParam("incident_id")
	if err != nil {
		return err
	}
	m := BundleManifest{ExportedAt: utc(p.now()), ExportedBy: actor(req.Principal), RequestID: req.RequestID, Algorithm: "sha256", Items: []BundleItem{}, NotIncluded: []EvidenceItem{}}
	var items []EvidenceItem
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		if m.Incident, err = scanIncident(tx.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, incidentID)); err != nil {
			return err
		}
		items, err = incidentItems(ctx, tx, incidentID)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return sdk.Errorf(sdk.ErrNotFound, "no incident %s in this institution", incidentID)
	}
	if err != nil {
		return err
	}
	// Every object's record is checked before anything is sent or
	// recorded as exported.
	var stored []EvidenceItem
	for _, it := range items {
		if it.State != "stored" {
			m.NotIncluded = append(m.NotIncluded, it)
			continue
		}
		obj, err := sdk.Storage(req).Stat(ctx, objectKey(it.ID))
		if errors.Is(err, sdk.ErrNotFound) || (err == nil && obj.SHA256 != deref(it.SHA256)) {
			p.integrityFailed(ctx, req, it, obj.SHA256)
			return errIntegrity(it.ID, deref(it.SHA256), obj.SHA256)
		}
		if err != nil {
			return err
		}
		stored = append(stored, it)
	}
	// The export is a link of each item's chain, in the same transaction
	// as the chain the manifest shows.
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		for _, it := range stored {
			if err := custody(ctx, tx, it.ID, "exported", actor(req.Principal), req.RequestID, deref(it.SHA256)); err != nil {
				return err
			}
			c, err := custodyOf(ctx, tx, it.ID)
			if err != nil {
				return err
			}
			m.Items = append(m.Items, BundleItem{EvidenceItem: it, File: "evidence/" + it.ID, Custody: c})
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.incident.export", "governance_incident", incidentID, map[string]any{"items": len(m.Items)})
	w.SetHeader("Content-Disposition", `attachment; filename="incident-`+incidentID+`.zip"`)
	zw := zip.NewWriter(w)
	for _, it := range m.Items {
		if err := p.bundleFile(ctx, req, zw, it); err != nil {
			return err
		}
	}
	mw, err := zw.Create("manifest.json")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(mw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	return zw.Close()
}

// bundleFile writes one item into the bundle, its SHA-256 checked as it
// streams: a mismatch cuts the download short.
func (p *Plugin) bundleFile(ctx context.Context, req *sdk.Request, zw *zip.Writer, it BundleItem) error {
	rd, h, err := p.openVerified(ctx, req, it.EvidenceItem)
	if err != nil {
		return err
	}
	defer rd.Close()
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: it.File, Method: zip.Deflate, Modified: *it.StoredAt})
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.MultiWriter(fw, h), rd); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != deref(it.SHA256) {
		p.integrityFailed(ctx, req, it.EvidenceItem, got)
		return errIntegrity(it.ID, deref(it.SHA256), got)
	}
	return nil
}
