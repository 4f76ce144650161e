package governance_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

func openIncident(t *testing.T, h *plugintest.Harness, who sdk.Principal, title string) governance.Incident {
	t.Helper()
	var inc governance.Incident
	ok(t, h.Do(who, "POST", "/api/v1/governance/incidents", map[string]any{"title": title, "description": "Suspicious grade changes."}), 201).JSON(t, &inc)
	return inc
}

// upload declares, uploads and seals a file.
func upload(t *testing.T, h *plugintest.Harness, who sdk.Principal, incidentID, title string, content []byte) governance.EvidenceItem {
	t.Helper()
	var ticket governance.UploadTicket
	ok(t, h.Do(who, "POST", "/api/v1/governance/incidents/"+incidentID+"/evidence",
		map[string]any{"title": title, "content_type": "text/plain", "sha256": sum(content), "size": len(content)}), 201).JSON(t, &ticket)
	require.Equal(t, "pending", ticket.Item.State)
	ok(t, h.DoSigned("PUT", ticket.UploadURL, "text/plain", bytes.NewReader(content)), 201)
	var item governance.EvidenceItem
	ok(t, h.Do(who, "POST", "/api/v1/governance/evidence/"+ticket.Item.ID+"/seal", nil), 200).JSON(t, &item)
	return item
}

func custodyActions(t *testing.T, h *plugintest.Harness, who sdk.Principal, itemID string) []string {
	t.Helper()
	var d governance.EvidenceDetail
	ok(t, h.Do(who, "GET", "/api/v1/governance/evidence/"+itemID, nil), 200).JSON(t, &d)
	var out []string
	for _, c := range d.Custody {
		out = append(out, c.Action+" by "+c.Actor)
	}
	return out
}

func TestEvidenceWriteOnceWithCustody(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newInst(t)
	inc := openIncident(t, h, a.officer, "Grade tampering, term 2")
	content := []byte("gradebook export 2026-11-30\n")

	var ticket governance.UploadTicket
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/incidents/"+inc.ID+"/evidence",
		map[string]any{"title": "Gradebook export", "content_type": "text/plain", "sha256": sum(content), "size": len(content)}), 201).JSON(t, &ticket)
	// Sealing before the upload is out of order.
	problem(t, h.Do(a.officer, "POST", "/api/v1/governance/evidence/"+ticket.Item.ID+"/seal", nil), 409, "evidence-not-uploaded")
	ok(t, h.DoSigned("PUT", ticket.UploadURL, "text/plain", bytes.NewReader(content)), 201)
	// A second write of the same item is refused, by the store itself.
	problem(t, h.DoSigned("PUT", ticket.UploadURL, "text/plain", strings.NewReader("something else")), 409, "")
	var item governance.EvidenceItem
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/evidence/"+ticket.Item.ID+"/seal", nil), 200).JSON(t, &item)
	require.Equal(t, "stored", item.State)
	require.Equal(t, sum(content), *item.SHA256)
	require.EqualValues(t, len(content), *item.Size)
	problem(t, h.Do(a.officer, "POST", "/api/v1/governance/evidence/"+item.ID+"/seal", nil), 409, "evidence-sealed")
	// Even the plugin's own database role cannot rewrite a sealed item.
	err := h.InTenant(a.id, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx(), `UPDATE evidence_items SET sha256 = repeat('0', 64) WHERE id = $1`, item.ID)
		return err
	})
	require.ErrorContains(t, err, "written once")

	// The auditor reads it (viewed), verifies it, exports the incident.
	s := h.Stream(a.auditor, "GET", "/api/v1/governance/evidence/"+item.ID+"/content")
	require.Equal(t, 200, s.Status, s)
	var got []byte
	got, err = io.ReadAll(s)
	require.NoError(t, err)
	require.Equal(t, content, got)
	require.Equal(t, `"`+sum(content)+`"`, s.Header.Get("ETag"))
	var v governance.VerifyResult
	ok(t, h.Do(a.auditor, "POST", "/api/v1/governance/evidence/"+item.ID+"/verify", nil), 200).JSON(t, &v)
	require.True(t, v.OK, v)

	second := upload(t, h, a.officer, inc.ID, "Screenshot", []byte("PNG?"))
	res := h.Do(a.auditor, "GET", "/api/v1/governance/incidents/"+inc.ID+"/export", nil)
	require.Equal(t, 200, res.Status, res)
	require.Equal(t, "application/zip", res.Header.Get("Content-Type"))
	zr, err := zip.NewReader(bytes.NewReader(res.Body), int64(len(res.Body)))
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		files[f.Name], err = io.ReadAll(rc)
		require.NoError(t, err)
		rc.Close()
	}
	require.Equal(t, content, files["evidence/"+item.ID])
	require.Equal(t, []byte("PNG?"), files["evidence/"+second.ID])
	var m governance.BundleManifest
	require.NoError(t, json.Unmarshal(files["manifest.json"], &m))
	require.Equal(t, inc.ID, m.Incident.ID)
	require.Len(t, m.Items, 2)
	for _, it := range m.Items {
		require.Equal(t, sum(files[it.File]), *it.SHA256, "the manifest's hash is the file's")
		require.Equal(t, "exported", it.Custody[len(it.Custody)-1].Action)
	}

	officer, auditor := a.officer.Actor(), a.auditor.Actor()
	require.Equal(t, []string{"added by " + officer, "viewed by " + auditor, "verified by " + auditor, "exported by " + auditor},
		custodyActions(t, h, a.auditor, item.ID), "the chain of custody is complete")

	// The audit log has each step.
	var actions []string
	for _, e := range h.AuditEntries() {
		if e.TenantID == a.id {
			actions = append(actions, e.Action)
		}
	}
	require.Subset(t, actions, []string{"governance.incident.open", "governance.evidence.declare", "governance.evidence.add", "governance.evidence.view", "governance.incident.export"})
}

func TestEvidenceHashes(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newInst(t)
	inc := openIncident(t, h, a.admin, "Leak")

	// An upload that is not the declared file is refused at sealing and
	// removed, and the declared one can then be uploaded.
	content := []byte("the real log")
	var ticket governance.UploadTicket
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/incidents/"+inc.ID+"/evidence",
		map[string]any{"title": "Access log", "content_type": "text/plain", "sha256": sum(content), "size": len(content)}), 201).JSON(t, &ticket)
	ok(t, h.DoSigned("PUT", ticket.UploadURL, "text/plain", strings.NewReader("a forged log")), 201)
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/evidence/"+ticket.Item.ID+"/seal", nil), 422, "evidence-hash-mismatch")
	ok(t, h.DoSigned("PUT", ticket.UploadURL, "text/plain", bytes.NewReader(content)), 201)
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/evidence/"+ticket.Item.ID+"/seal", nil), 200)

	// Content replaced in storage behind the plugin's back: downloads,
	// verification and export refuse it, and the custody log says so.
	_, err := h.Storage(a.id).Put(context.Background(), "evidence/"+ticket.Item.ID, strings.NewReader("tampered"), sdk.PutOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	s := h.Stream(a.admin, "GET", "/api/v1/governance/evidence/"+ticket.Item.ID+"/content")
	require.Equal(t, 409, s.Status)
	require.Equal(t, "evidence-integrity-failed", s.Problem().Code)
	var v governance.VerifyResult
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/evidence/"+ticket.Item.ID+"/verify", nil), 200).JSON(t, &v)
	require.False(t, v.OK)
	require.Equal(t, sum([]byte("tampered")), v.ComputedSHA256)
	problem(t, h.Do(a.admin, "GET", "/api/v1/governance/incidents/"+inc.ID+"/export", nil), 409, "evidence-integrity-failed")
	chain := custodyActions(t, h, a.admin, ticket.Item.ID)
	require.Contains(t, chain, "integrity_failed by "+a.admin.Actor())
	require.NotContains(t, chain, "exported by "+a.admin.Actor(), "a refused export is not recorded as one")
}

func TestEvidenceRefusals(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := newInst(t), newInst(t)
	inc := openIncident(t, h, a.admin, "A's matter")
	item := upload(t, h, a.admin, inc.ID, "Memo", []byte("memo"))

	// Permissions: the auditor reads but adds nothing; a learner reads nothing.
	problem(t, h.Do(a.auditor, "POST", "/api/v1/governance/incidents", map[string]any{"title": "x"}), 403, "permission-denied")
	problem(t, h.Do(a.auditor, "POST", "/api/v1/governance/incidents/"+inc.ID+"/evidence",
		map[string]any{"title": "x", "content_type": "text/plain", "sha256": sum(nil), "size": 0}), 403, "permission-denied")
	problem(t, h.Do(a.learner, "GET", "/api/v1/governance/incidents/"+inc.ID, nil), 403, "permission-denied")
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/incidents/"+inc.ID, nil), 200)

	// Another institution sees none of it.
	problem(t, h.Do(b.admin, "GET", "/api/v1/governance/incidents/"+inc.ID, nil), 404, "")
	problem(t, h.Do(b.admin, "GET", "/api/v1/governance/evidence/"+item.ID, nil), 404, "")
	problem(t, h.Do(b.admin, "POST", "/api/v1/governance/evidence/"+item.ID+"/verify", nil), 404, "")
	problem(t, h.Do(b.admin, "GET", "/api/v1/governance/incidents/"+inc.ID+"/export", nil), 404, "")
	problem(t, h.Do(b.admin, "POST", "/api/v1/governance/incidents/"+inc.ID+"/evidence",
		map[string]any{"title": "x", "content_type": "text/plain", "sha256": sum(nil), "size": 0}), 404, "")
	var list sdk.Page[governance.Incident]
	ok(t, h.Do(b.admin, "GET", "/api/v1/governance/incidents", nil), 200).JSON(t, &list)
	require.Empty(t, list.Items)

	// Malformed input: 4xx naming the field.
	for _, body := range []map[string]any{
		{"title": "x", "content_type": "text/plain", "sha256": "ABC", "size": 1},
		{"title": "x", "content_type": "not a type", "sha256": sum(nil), "size": 1},
		{"title": "x\u0000", "content_type": "text/plain", "sha256": sum(nil), "size": 1},
		{"title": "  ", "content_type": "text/plain", "sha256": sum(nil), "size": 1},
		{"title": "x", "content_type": "text/plain", "sha256": sum(nil), "size": -1},
	} {
		res := h.Do(a.admin, "POST", "/api/v1/governance/incidents/"+inc.ID+"/evidence", body)
		require.Equal(t, 422, res.Status, "%v: %s", body, res)
	}
	problem(t, h.Do(a.admin, "GET", "/api/v1/governance/incidents/not-a-uuid", nil), 404, "")
	problem(t, h.Do(a.admin, "GET", "/api/v1/governance/incidents?cursor=zzz", nil), 422, "")
	// A closed incident takes no more evidence; what it holds stays.
	other := openIncident(t, h, a.admin, "Closed matter")
	// An item declared and uploaded before the close is not sealed after
	// it: it stays pending.
	late := []byte("uploaded before the close\n")
	var lateTicket governance.UploadTicket
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/incidents/"+other.ID+"/evidence",
		map[string]any{"title": "Late", "content_type": "text/plain", "sha256": sum(late), "size": len(late)}), 201).JSON(t, &lateTicket)
	ok(t, h.DoSigned("PUT", lateTicket.UploadURL, "text/plain", bytes.NewReader(late)), 201)
	problem(t, h.Do(a.auditor, "POST", "/api/v1/governance/incidents/"+other.ID+"/close", nil), 403, "permission-denied")
	problem(t, h.Do(b.admin, "POST", "/api/v1/governance/incidents/"+other.ID+"/close", nil), 404, "")
	var closed governance.Incident
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/incidents/"+other.ID+"/close", nil), 200).JSON(t, &closed)
	require.Equal(t, "closed", closed.Status)
	require.NotNil(t, closed.ClosedAt)
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/incidents/"+other.ID+"/close", nil), 409, "incident-closed")
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/incidents/"+other.ID+"/evidence",
		map[string]any{"title": "late", "content_type": "text/plain", "sha256": sum(nil), "size": 0}), 409, "incident-closed")
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/evidence/"+lateTicket.Item.ID+"/seal", nil), 409, "incident-closed")
	var lateItem governance.EvidenceDetail
	ok(t, h.Do(a.admin, "GET", "/api/v1/governance/evidence/"+lateTicket.Item.ID, nil), 200).JSON(t, &lateItem)
	require.Equal(t, "pending", lateItem.State)
	require.Empty(t, lateItem.Custody)

	pending := func() string {
		var ticket governance.UploadTicket
		ok(t, h.Do(a.admin, "POST", "/api/v1/governance/incidents/"+inc.ID+"/evidence",
			map[string]any{"title": "later", "content_type": "text/plain", "sha256": sum(nil), "size": 0}), 201).JSON(t, &ticket)
		return ticket.Item.ID
	}()
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/evidence/"+pending+"/verify", nil), 409, "evidence-not-sealed")
}
