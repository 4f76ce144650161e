package telemetry_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

// past moves an institution's statements back to hour: as if they had
// arrived then (the export takes complete hours only). Behind the plugin's
// back, as the database's admin.
func past(t *testing.T, h *plugintest.Harness, tenant string, hour time.Time) {
	t.Helper()
	_, err := h.DB().Exec(context.Background(), `UPDATE plugin_telemetry.statements SET stored_at = $2::timestamptz + (stored_at - date_trunc('hour', stored_at)) WHERE tenant_id = $1`, tenant, hour)
	require.NoError(t, err)
}

func object(t *testing.T, b *sdk.Bucket, key string) []byte {
	t.Helper()
	rd, _, err := b.Get(context.Background(), key)
	require.NoError(t, err, key)
	defer rd.Close()
	body, err := io.ReadAll(rd)
	require.NoError(t, err)
	return body
}

// exportLines reads a part: its JSON lines.
func exportLines(t *testing.T, part []byte) []map[string]any {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(part))
	require.NoError(t, err)
	var out []map[string]any
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkManifest reads an hour's manifest and checks it against the objects:
// each part's rows, bytes and SHA-256, and the whole's. It returns the
// manifest and every line.
func checkManifest(t *testing.T, b *sdk.Bucket, key string) (telemetry.ExportManifest, []map[string]any) {
	t.Helper()
	var m telemetry.ExportManifest
	require.NoError(t, json.Unmarshal(object(t, b, key), &m))
	all := sha256.New()
	var lines []map[string]any
	var size int64
	for _, p := range m.Parts {
		body := object(t, b, p.Key)
		require.Equal(t, p.SHA256, hexSHA(body), p.Key)
		require.Equal(t, p.Bytes, int64(len(body)))
		got := exportLines(t, body)
		require.Len(t, got, int(p.Rows))
		lines = append(lines, got...)
		all.Write(body)
		size += p.Bytes
	}
	require.Equal(t, hex.EncodeToString(all.Sum(nil)), m.SHA256)
	require.Equal(t, size, m.Bytes)
	require.Equal(t, int(m.Statements), len(lines))
	return m, lines
}

func runExport(t *testing.T, h *plugintest.Harness, admin sdk.Principal, body any) telemetry.ExportRun {
	t.Helper()
	res := h.Do(admin, "POST", "/api/v1/telemetry/exports", body)
	require.Equal(t, 200, res.Status, res)
	var out telemetry.ExportRun
	res.JSON(t, &out)
	return out
}

func TestExports(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := newInst(t, h), newInst(t, h)
	now := time.Now().UTC()
	hour := now.Add(-3 * time.Hour).Truncate(time.Hour)
	for _, in := range []inst{a, b} {
		h.SetTenantConfig(in.id, []byte(`{"default_granted": ["analytics"]}`))
	}
	a1, a2 := stmt(a.learner.UserID, now), stmt(a.learner.UserID, now)
	require.Equal(t, 2, ingest(t, h, a.learner, a1, a2).Stored)
	require.Equal(t, 1, ingest(t, h, a.other, stmt(a.other.UserID, now)).Stored)
	require.Equal(t, 1, ingest(t, h, b.learner, stmt(b.learner.UserID, now)).Stored)
	past(t, h, a.id, hour)
	past(t, h, b.id, hour)

	// The job's work on demand: every complete hour since the first
	// statement's, the empty ones with a manifest too.
	run := runExport(t, h, a.admin, map[string]any{})
	require.Len(t, run.Exports, 3)
	first := run.Exports[0]
	require.Equal(t, hour, first.Hour)
	require.Equal(t, "written", first.Outcome)
	require.Equal(t, int64(3), first.Statements)
	require.Equal(t, 1, first.Parts)
	prefix := a.id + "/dt=" + hour.Format("2006-01-02") + "/hour=" + hour.Format("15") + "/"
	require.Equal(t, prefix+"manifest.json", first.ManifestKey)
	require.Equal(t, int64(0), run.Exports[1].Statements)

	store := h.Storage(a.id)
	m, lines := checkManifest(t, store, first.ManifestKey)
	require.Equal(t, prefix+"part-00000.jsonl.gz", m.Parts[0].Key)
	require.Equal(t, []telemetry.PolicyCount{{Purpose: "analytics", Version: 1, Statements: 3}}, m.ConsentPolicies)
	require.Empty(t, m.Tombstones)
	people := map[string]int{}
	for _, l := range lines {
		people[l["user_id"].(string)]++
		require.Equal(t, l["id"], l["statement"].(map[string]any)["id"])
	}
	require.Equal(t, map[string]int{a.learner.UserID: 2, a.other.UserID: 1}, people)

	// A re-run is byte-identical: found there, nothing written. Even
	// made from scratch (objects and records gone) it is the same bytes.
	before := map[string][]byte{first.ManifestKey: object(t, store, first.ManifestKey), m.Parts[0].Key: object(t, store, m.Parts[0].Key)}
	again := runExport(t, h, a.admin, map[string]any{"hour": hour})
	require.Equal(t, "unchanged", again.Exports[0].Outcome)
	require.Equal(t, first.ManifestSHA256, again.Exports[0].ManifestSHA256)
	out, err := h.RunJob(t, telemetry.JobExport, plugintest.JobRun{TenantID: a.id, Trigger: "schedule"})
	require.NoError(t, err)
	require.Contains(t, out, "0 hours exported", "caught up: nothing new")
	for key := range before {
		require.NoError(t, store.Delete(context.Background(), key))
	}
	_, err = h.DB().Exec(context.Background(), `DELETE FROM plugin_telemetry.exports WHERE tenant_id = $1`, a.id)
	require.NoError(t, err)
	again = runExport(t, h, a.admin, map[string]any{})
	require.Len(t, again.Exports, 3)
	require.Equal(t, "written", again.Exports[0].Outcome)
	require.Equal(t, "unchanged", again.Exports[1].Outcome, "the empty hour's manifest was still there")
	for key, body := range before {
		require.Equal(t, hexSHA(body), hexSHA(object(t, store, key)), key)
	}

	// The hour under way cannot be exported; a time not on the hour is not an hour.
	res := h.Do(a.admin, "POST", "/api/v1/telemetry/exports", map[string]any{"hour": now.Truncate(time.Hour)})
	require.Equal(t, 409, res.Status, res)
	require.Equal(t, "hour_not_complete", res.Problem().Code)
	res = h.Do(a.admin, "POST", "/api/v1/telemetry/exports", map[string]any{"hour": hour.Add(time.Minute)})
	require.Equal(t, 422, res.Status, res)
	require.Equal(t, 403, h.Do(a.learner, "POST", "/api/v1/telemetry/exports", map[string]any{}).Status)

	// Institutions apart: b's export through its job, in b's storage only.
	_, err = h.RunJob(t, telemetry.JobExport, plugintest.JobRun{TenantID: b.id, Trigger: "schedule"})
	require.NoError(t, err)
	bm, blines := checkManifest(t, h.Storage(b.id), b.id+"/dt="+hour.Format("2006-01-02")+"/hour="+hour.Format("15")+"/manifest.json")
	require.Equal(t, int64(1), bm.Statements)
	require.Equal(t, b.learner.UserID, blines[0]["user_id"])
	page, err := h.Storage(a.id).List(context.Background(), "", "", 1000)
	require.NoError(t, err)
	for _, o := range page.Objects {
		require.Regexp(t, "^"+a.id+"/", o.Key)
	}
	var list struct {
		Items []telemetry.ExportRecord `json:"items"`
	}
	h.Do(a.admin, "GET", "/api/v1/telemetry/exports", nil).JSON(t, &list)
	require.Len(t, list.Items, 3)
	require.Equal(t, hour, list.Items[2].Hour)

	// An erased person disappears from the export they were in, which is
	// rewritten with a tombstone; the others stay.
	x := h.ExportPersonalData(t, a.id, a.learner.UserID)
	require.Len(t, x.Rows("statements"), 2)
	counts := h.ErasePersonalData(t, a.id, a.learner.UserID)
	require.Equal(t, int64(1), counts.Of("statements").Objects, "one export rewritten")
	m, lines = checkManifest(t, store, first.ManifestKey)
	require.Equal(t, int64(1), m.Statements)
	require.Len(t, lines, 1)
	require.Equal(t, a.other.UserID, lines[0]["user_id"])
	require.Len(t, m.Tombstones, 1)
	require.Equal(t, "erasure", m.Tombstones[0].Reason)
	require.Equal(t, int64(2), m.Tombstones[0].Removed)
	require.Equal(t, hexSHA(before[prefix+"part-00000.jsonl.gz"]), m.Tombstones[0].Previous[0].SHA256)
	require.NotContains(t, string(object(t, store, first.ManifestKey)), a.learner.UserID)
	h.RequireNoTrace(t, a.learner.UserID)
	// Re-running the rewritten hour is byte-identical too.
	rewritten := object(t, store, first.ManifestKey)
	again = runExport(t, h, a.admin, map[string]any{"hour": hour})
	require.Equal(t, "unchanged", again.Exports[0].Outcome)
	require.Equal(t, rewritten, object(t, store, first.ManifestKey))
}

// The export fails fast, writing nothing, when the consent records its
// statements were admitted under are missing.
func TestExportConsentMissing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	g := decide(t, h, in.learner, "analytics", 1, true)
	require.Equal(t, 1, ingest(t, h, in.learner, stmt(in.learner.UserID, g.DecidedAt.Add(time.Millisecond))).Stored)
	hour := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	past(t, h, in.id, hour)
	_, err := h.DB().Exec(context.Background(), `DELETE FROM plugin_telemetry.consent_decisions WHERE id = $1`, g.ID)
	require.NoError(t, err)

	res := h.Do(in.admin, "POST", "/api/v1/telemetry/exports", map[string]any{})
	require.Equal(t, 409, res.Status, res)
	require.Equal(t, "consent_records_missing", res.Problem().Code)
	require.Contains(t, res.Problem().Detail, "1 statements of the hour "+hour.Format(time.RFC3339))
	_, err = h.RunJob(t, telemetry.JobExport, plugintest.JobRun{TenantID: in.id, Trigger: "schedule"})
	require.ErrorContains(t, err, "consent records missing")
	page, err := h.Storage(in.id).List(context.Background(), "", "", 10)
	require.NoError(t, err)
	require.Empty(t, page.Objects)
}
