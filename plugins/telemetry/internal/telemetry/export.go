package telemetry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/gzip"

	"github.com/edulure/edulure/sdk"
)

// Exports (docs/telemetry.md, "Exports"), the seed's TelemetryWarehouseJob:
// each hour of an institution's statements, by the time they were stored,
// as JSON lines compressed with gzip, under
//
//	<tenant>/dt=YYYY-MM-DD/hour=HH/part-NNNNN.jsonl.gz
//	<tenant>/dt=YYYY-MM-DD/hour=HH/manifest.json
//
// in the institution's object storage. An hour is exported once it is
// complete: the export first takes the institution's ingest lock
// exclusively (a barrier: every ingestion holding it shared has committed,
// and every later one stores at a later time), so no statement can still
// arrive in an hour that ended before the barrier. Its content is then
// fixed, the encoding deterministic (rows by stored time and ID, JSON with
// fixed field order, gzip without a time or name), and so is every byte:
// a re-run finds the objects there with the same SHA-256 and writes
// nothing. Objects are written once (IfNotExists); only an erasure's
// rewrite replaces them, recording a tombstone in the manifest.

// exportFormat names the lines' format in the manifest.
const exportFormat = "edulure.telemetry.statements.v1+jsonl.gz"

// partRows is the most statements one part holds.
const partRows = 50000

// maxCatchUp is the most hours one job run exports.
const maxCatchUp = 168

// ExportRequest is the body of POST /api/v1/telemetry/exports.
type ExportRequest struct {
	Hour *time.Time `json:"hour,omitempty" doc:"One complete hour (UTC, on the hour) of stored statements to export again; absent: every complete hour not exported yet (as the hourly job does)."`
}

// ExportPart is one object of an export.
type ExportPart struct {
	Key    string `json:"key"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// PolicyCount is a consent policy version the statements of an export were
// admitted under, and how many.
type PolicyCount struct {
	Purpose    string `json:"purpose"`
	Version    int    `json:"version"`
	Statements int64  `json:"statements"`
}

// Tombstone records a rewrite of an export: the parts as they were and how
// many statements left (never whose).
type Tombstone struct {
	RewrittenAt time.Time    `json:"rewritten_at"`
	Reason      string       `json:"reason" enum:"erasure"`
	Removed     int64        `json:"removed"`
	Previous    []ExportPart `json:"previous"`
}

// ExportManifest is an hour's manifest.json.
type ExportManifest struct {
	Format          string        `json:"format"`
	TenantID        string        `json:"tenant_id"`
	Hour            time.Time     `json:"hour"`
	Statements      int64         `json:"statements"`
	Bytes           int64         `json:"bytes"`
	SHA256          string        `json:"sha256" doc:"Of the parts' bytes one after the other (cat part-* | sha256sum)."`
	Parts           []ExportPart  `json:"parts"`
	ConsentPolicies []PolicyCount `json:"consent_policies"`
	Tombstones      []Tombstone   `json:"tombstones,omitempty"`
}

// ExportSummary is what an export run did to one hour.
type ExportSummary struct {
	Hour           time.Time `json:"hour"`
	Outcome        string    `json:"outcome" enum:"written,unchanged,rewritten" doc:"written: new objects; unchanged: the objects were there, byte for byte; rewritten: an erasure's rewrite."`
	Statements     int64     `json:"statements"`
	Bytes          int64     `json:"bytes"`
	Parts          int       `json:"parts"`
	ManifestKey    string    `json:"manifest_key"`
	ManifestSHA256 string    `json:"manifest_sha256"`
}

// ExportRun answers POST /api/v1/telemetry/exports.
type ExportRun struct {
	Exports []ExportSummary `json:"exports"`
}

// ExportRecord is an exported hour, as listed.
type ExportRecord struct {
	Hour           time.Time `json:"hour"`
	Statements     int64     `json:"statements"`
	Bytes          int64     `json:"bytes"`
	Parts          int       `json:"parts"`
	ManifestKey    string    `json:"manifest_key"`
	ManifestSHA256 string    `json:"manifest_sha256"`
	ExportedAt     time.Time `json:"exported_at"`
}

func (p *Plugin) exportRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/telemetry/exports", Permission: PermExportRun,
			Summary: "Export complete hours of statements to the institution's object storage now (the hourly job's work)",
			Request: ExportRequest{}, Response: ExportRun{}, Handler: p.runExport},
		{Method: "GET", Path: "/api/v1/telemetry/exports", Permission: PermExportRun, Paginated: true,
			Summary: "The exported hours, newest first", Response: sdk.Page[ExportRecord]{}, Handler: p.listExports},
	}
}

// exporter is an institution's export: its transactions and its storage.
type exporter struct {
	p      *Plugin
	tenant string
	tx     func(context.Context, func(pgx.Tx) error) error
	bucket *sdk.Bucket
}

func (p *Plugin) exporterOf(s sdk.Scope) *exporter {
	return &exporter{p: p, tenant: s.Tenant(), tx: s.Tx, bucket: sdk.Storage(s)}
}

func (p *Plugin) runExport(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in ExportRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	x := p.exporterOf(req)
	var out ExportRun
	var err error
	if in.Hour == nil {
		out.Exports, err = x.catchUp(ctx)
	} else {
		hour := in.Hour.UTC()
		if !hour.Equal(hour.Truncate(time.Hour)) {
			return nil, sdk.Invalid(sdk.FieldError{Field: "hour", Message: "must be on the hour (2026-01-31T09:00:00Z)"})
		}
		var barrier time.Time
		if barrier, err = x.barrier(ctx); err != nil {
			return nil, err
		}
		if hour.Add(time.Hour).After(barrier) {
			return nil, sdk.Errorf(sdk.ErrConflict, "the hour %s has not ended: statements may still arrive in it", hour.Format(time.RFC3339)).WithCode("hour_not_complete")
		}
		var s ExportSummary
		s, err = x.exportHour(ctx, hour, nil)
		out.Exports = []ExportSummary{s}
	}
	if err != nil {
		return nil, err
	}
	if out.Exports == nil {
		out.Exports = []ExportSummary{}
	}
	return sdk.JSON(http.StatusOK, out)
}

// warehouseExport is the hourly TelemetryWarehouseJob: every complete hour
// not exported yet, oldest first, up to a week per run. It fails (and the
// kernel retries it) at the first hour that cannot be exported, such as
// one whose consent records are missing.
func (p *Plugin) warehouseExport(ctx context.Context, run *sdk.JobRun) error {
	done, err := p.exporterOf(run).catchUp(ctx)
	written := 0
	for _, s := range done {
		if s.Outcome != "unchanged" {
			written++
		}
	}
	run.SetOutput(fmt.Sprintf("%d hours exported (%d written)", len(done), written))
	return err
}

// barrier waits for every ingestion in flight and returns the time after
// which every later one stores.
func (x *exporter) barrier(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := x.tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT pg_advisory_xact_lock(ingest_lock_key($1))::text, clock_timestamp()`, x.tenant).Scan(new(string), &t)
	})
	return t.UTC(), err
}

// catchUp exports the complete hours after the last one exported (from the
// first statement's hour when none was).
func (x *exporter) catchUp(ctx context.Context) ([]ExportSummary, error) {
	barrier, err := x.barrier(ctx)
	if err != nil {
		return nil, err
	}
	var next *time.Time
	err = x.tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(
				(SELECT max(hour) + interval '1 hour' FROM exports WHERE tenant_id = $1),
				(SELECT date_trunc('hour', min(stored_at), 'UTC') FROM statements WHERE tenant_id = $1))`, x.tenant).Scan(&next)
	})
	if err != nil || next == nil {
		return nil, err
	}
	var out []ExportSummary
	for h := next.UTC(); !h.Add(time.Hour).After(barrier) && len(out) < maxCatchUp; h = h.Add(time.Hour) {
		s, err := x.exportHour(ctx, h, nil)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// exportLine is one line of a part: the statement as stored, with the
// columns a warehouse loads without parsing it.
type exportLine struct {
	ID            string          `json:"id"`
	Stored        string          `json:"stored"`
	Timestamp     string          `json:"timestamp"`
	UserID        string          `json:"user_id"`
	Verb          string          `json:"verb"`
	ObjectID      string          `json:"object_id"`
	ObjectType    string          `json:"object_type,omitempty"`
	CourseID      string          `json:"course_id,omitempty"`
	CohortID      string          `json:"cohort_id,omitempty"`
	Purpose       string          `json:"purpose"`
	PolicyVersion int             `json:"policy_version"`
	ConsentID     string          `json:"consent_id,omitempty"`
	Source        string          `json:"source"`
	Statement     json.RawMessage `json:"statement"`
}

// ErrConsentMissing is the error of an export whose statements' consent
// records are missing.
var ErrConsentMissing = errors.New("consent records missing")

// rewrite is the erasure's part in an export: a tombstone to record.
type rewrite struct{ reason string }

// hourPrefix is the storage prefix of an hour's export.
func (x *exporter) hourPrefix(hour time.Time) string {
	return fmt.Sprintf("%s/dt=%s/hour=%02d/", x.tenant, hour.Format(time.DateOnly), hour.Hour())
}

// exportHour writes (or checks) one hour's export. With rw, it rewrites the
// hour after an erasure, with a tombstone.
func (x *exporter) exportHour(ctx context.Context, hour time.Time, rw *rewrite) (ExportSummary, error) {
	hour = hour.UTC()
	prefix := x.hourPrefix(hour)
	sum := ExportSummary{Hour: hour, ManifestKey: prefix + "manifest.json", Outcome: "unchanged"}
	err := x.tx(ctx, func(tx pgx.Tx) error {
		// One export of an hour at a time (the job, the route, an erasure).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('telemetry.export:' || $1::text || ':' || $2::text, 0))`, x.tenant, hour.Format(time.RFC3339)); err != nil {
			return err
		}
		if err := x.checkConsent(ctx, tx, hour); err != nil {
			return err
		}
		var (
			previous     []ExportPart
			previousRows int64
			exported     bool
		)
		err := tx.QueryRow(ctx, `SELECT parts, statements FROM exports WHERE tenant_id = $1 AND hour = $2`, x.tenant, hour).Scan(&previous, &previousRows)
		switch {
		case err == nil:
			exported = true
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		m, subjects, payload, err := x.build(ctx, tx, hour)
		if err != nil {
			return err
		}
		if rw != nil && exported {
			_, err := tx.Exec(ctx, `
				INSERT INTO export_tombstones (tenant_id, hour, seq, rewritten_at, reason, removed, previous)
				SELECT $1, $2, coalesce(max(seq), 0) + 1, date_trunc('milliseconds', now()), $3, $4, $5 FROM export_tombstones WHERE tenant_id = $1 AND hour = $2`,
				x.tenant, hour, rw.reason, previousRows-m.Statements, previous)
			if err != nil {
				return err
			}
		}
		if m.Tombstones, err = tombstones(ctx, tx, x.tenant, hour); err != nil {
			return err
		}
		// Objects: a part there with other bytes is replaced only by a
		// rewrite (an erasure took statements out, now or before).
		replace := len(m.Tombstones) > 0
		for i, part := range m.Parts {
			outcome, err := x.put(ctx, part, payload[i], "application/gzip", replace)
			if err != nil {
				return err
			}
			sum.Outcome = worse(sum.Outcome, outcome)
		}
		for _, old := range previous {
			if !hasKey(m.Parts, old.Key) {
				if err := x.bucket.Delete(ctx, old.Key); err != nil && !errors.Is(err, sdk.ErrNotFound) {
					return err
				}
				sum.Outcome = worse(sum.Outcome, "rewritten")
			}
		}
		manifest, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		manifest = append(manifest, '\n')
		msum := sha256.Sum256(manifest)
		mpart := ExportPart{Key: sum.ManifestKey, Bytes: int64(len(manifest)), SHA256: hex.EncodeToString(msum[:])}
		outcome, err := x.put(ctx, mpart, manifest, "application/json", replace)
		if err != nil {
			return err
		}
		sum.Outcome = worse(sum.Outcome, outcome)
		sum.Statements, sum.Bytes, sum.Parts, sum.ManifestSHA256 = m.Statements, m.Bytes, len(m.Parts), mpart.SHA256
		if _, err := tx.Exec(ctx, `
			INSERT INTO exports (tenant_id, hour, statements, bytes, parts, manifest_sha, exported_at)
			VALUES ($1, $2, $3, $4, $5, $6, now())
			ON CONFLICT (tenant_id, hour) DO UPDATE SET statements = EXCLUDED.statements, bytes = EXCLUDED.bytes,
				parts = EXCLUDED.parts, manifest_sha = EXCLUDED.manifest_sha,
				exported_at = CASE WHEN exports.manifest_sha = EXCLUDED.manifest_sha THEN exports.exported_at ELSE EXCLUDED.exported_at END`,
			x.tenant, hour, m.Statements, m.Bytes, m.Parts, mpart.SHA256); err != nil {
			return err
		}
		// Who is in it: an erasure rewrites the hours its person is in.
		_, err = tx.Exec(ctx, `
			WITH gone AS (DELETE FROM export_subjects WHERE tenant_id = $1 AND hour = $2 AND NOT (user_id = ANY($3::uuid[])))
			INSERT INTO export_subjects (tenant_id, hour, user_id) SELECT $1, $2, u FROM unnest($3::uuid[]) u ON CONFLICT DO NOTHING`,
			x.tenant, hour, subjects)
		return err
	})
	if err != nil {
		x.p.metrics.exports.WithLabelValues("failed").Inc()
		return sum, fmt.Errorf("exporting the hour %s: %w", hour.Format(time.RFC3339), err)
	}
	x.p.metrics.exports.WithLabelValues(sum.Outcome).Inc()
	if sum.Outcome == "written" {
		end := hour.Add(time.Hour)
		x.p.metrics.exportLag.Observe(time.Since(end).Seconds())
		x.p.metrics.lastExported.Set(float64(end.Unix()))
	}
	return sum, nil
}

// worse is the outcome of an export of several objects.
func worse(a, b string) string {
	rank := map[string]int{"unchanged": 0, "written": 1, "rewritten": 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func hasKey(parts []ExportPart, key string) bool {
	for _, p := range parts {
		if p.Key == key {
			return true
		}
	}
	return false
}

// checkConsent fails the export when a statement of the hour was admitted
// under a consent record that is not there: a decision (consent_id) that
// is gone, or a default under a policy version that is.
func (x *exporter) checkConsent(ctx context.Context, tx pgx.Tx, hour time.Time) error {
	var missing int64
	var first *string
	err := tx.QueryRow(ctx, `
		SELECT count(*), min(s.id::text) FROM statements s
		WHERE s.tenant_id = $1 AND s.stored_at >= $2 AND s.stored_at < $2 + interval '1 hour'
		  AND CASE WHEN s.consent_id IS NOT NULL
		      THEN NOT EXISTS (SELECT 1 FROM consent_decisions d WHERE d.id = s.consent_id AND d.granted)
		      ELSE NOT EXISTS (SELECT 1 FROM consent_policies p WHERE p.purpose = s.purpose AND p.version = s.policy_version)
		      END`, x.tenant, hour).Scan(&missing, &first)
	if err != nil {
		return err
	}
	if missing > 0 {
		return sdk.Errorf(sdk.ErrConflict, "%v: %d statements of the hour %s were admitted under consent records that are not there (first: statement %s); nothing was exported",
			ErrConsentMissing, missing, hour.Format(time.RFC3339), *first).WithCode("consent_records_missing")
	}
	return nil
}

// build reads the hour's statements and encodes the parts: the manifest
// (without tombstones), the people in it and each part's bytes.
func (x *exporter) build(ctx context.Context, tx pgx.Tx, hour time.Time) (ExportManifest, []string, [][]byte, error) {
	m := ExportManifest{Format: exportFormat, TenantID: x.tenant, Hour: hour, Parts: []ExportPart{}, ConsentPolicies: []PolicyCount{}}
	rows, err := tx.Query(ctx, `
		SELECT id::text, stored_at, occurred_at, user_id::text, verb, object_id, coalesce(object_type, ''), coalesce(course_id::text, ''),
			coalesce(cohort_id::text, ''), purpose, policy_version, coalesce(consent_id::text, ''), source, raw::text
		FROM statements WHERE tenant_id = $1 AND stored_at >= $2 AND stored_at < $2 + interval '1 hour'
		ORDER BY stored_at, id`, x.tenant, hour)
	if err != nil {
		return m, nil, nil, err
	}
	var (
		payload  [][]byte
		part     bytes.Buffer
		zw       *gzip.Writer
		inPart   int64
		all      = sha256.New()
		people   = map[string]bool{}
		policies = map[[2]any]int64{}
	)
	flush := func() error {
		if zw == nil {
			return nil
		}
		if err := zw.Close(); err != nil {
			return err
		}
		b := bytes.Clone(part.Bytes())
		s := sha256.Sum256(b)
		all.Write(b)
		m.Parts = append(m.Parts, ExportPart{
			Key: fmt.Sprintf("%spart-%05d.jsonl.gz", x.hourPrefix(hour), len(m.Parts)), Rows: inPart, Bytes: int64(len(b)), SHA256: hex.EncodeToString(s[:]),
		})
		m.Bytes += int64(len(b))
		payload = append(payload, b)
		part.Reset()
		zw, inPart = nil, 0
		return nil
	}
	err = forEachRow(rows, func(r pgx.Rows) error {
		var l exportLine
		var stored, occurred time.Time
		var raw string
		if err := r.Scan(&l.ID, &stored, &occurred, &l.UserID, &l.Verb, &l.ObjectID, &l.ObjectType, &l.CourseID, &l.CohortID,
			&l.Purpose, &l.PolicyVersion, &l.ConsentID, &l.Source, &raw); err != nil {
			return err
		}
		l.Stored, l.Timestamp, l.Statement = stored.UTC().Format(time.RFC3339Nano), occurred.UTC().Format(time.RFC3339Nano), json.RawMessage(raw)
		if zw == nil {
			var err error
			if zw, err = gzip.NewWriterLevel(&part, gzip.DefaultCompression); err != nil {
				return err
			}
		}
		line, err := json.Marshal(l)
		if err != nil {
			return err
		}
		if _, err := zw.Write(append(line, '\n')); err != nil {
			return err
		}
		inPart++
		m.Statements++
		people[l.UserID] = true
		policies[[2]any{l.Purpose, l.PolicyVersion}]++
		if inPart == partRows {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return m, nil, nil, err
	}
	m.SHA256 = hex.EncodeToString(all.Sum(nil))
	for k, n := range policies {
		m.ConsentPolicies = append(m.ConsentPolicies, PolicyCount{Purpose: k[0].(string), Version: k[1].(int), Statements: n})
	}
	sortPolicies(m.ConsentPolicies)
	subjects := make([]string, 0, len(people))
	for u := range people {
		subjects = append(subjects, u)
	}
	return m, subjects, payload, nil
}

// put writes one object once: absent, it is stored (IfNotExists); there
// with the same SHA-256, nothing is written; there with other bytes, it is
// replaced only when replace says so (an erasure rewrote the hour), else
// the export fails.
func (x *exporter) put(ctx context.Context, part ExportPart, b []byte, contentType string, replace bool) (string, error) {
	obj, err := x.bucket.Stat(ctx, part.Key)
	switch {
	case err == nil && obj.SHA256 == part.SHA256:
		return "unchanged", nil
	case err == nil && !replace:
		return "", sdk.Errorf(sdk.ErrConflict, "%s is in storage with other content (SHA-256 %s, now %s) and exports are written once", part.Key, obj.SHA256, part.SHA256).WithCode("export_differs")
	case err == nil:
		if _, err := x.bucket.Put(ctx, part.Key, bytes.NewReader(b), sdk.PutOptions{ContentType: contentType}); err != nil {
			return "", err
		}
		return "rewritten", nil
	case !errors.Is(err, sdk.ErrNotFound):
		return "", err
	}
	if _, err := x.bucket.Put(ctx, part.Key, bytes.NewReader(b), sdk.PutOptions{ContentType: contentType, IfNotExists: true}); err != nil {
		return "", err
	}
	return "written", nil
}

func tombstones(ctx context.Context, tx pgx.Tx, tenant string, hour time.Time) ([]Tombstone, error) {
	rows, _ := tx.Query(ctx, `SELECT rewritten_at, reason, removed, previous FROM export_tombstones WHERE tenant_id = $1 AND hour = $2 ORDER BY seq`, tenant, hour)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tombstone, error) {
		var t Tombstone
		err := r.Scan(&t.RewrittenAt, &t.Reason, &t.Removed, &t.Previous)
		t.RewrittenAt = t.RewrittenAt.UTC()
		return t, err
	})
}

func (p *Plugin) listExports(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, _, more, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	x := p.exporterOf(req)
	var items []ExportRecord
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT hour, statements, bytes, jsonb_array_length(parts), manifest_sha, exported_at FROM exports
			WHERE tenant_id = $1 AND (NOT $2 OR hour < $3) ORDER BY hour DESC LIMIT $4`, req.Tenant(), more, at, page.Limit+1)
		var err error
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportRecord, error) {
			var e ExportRecord
			err := r.Scan(&e.Hour, &e.Statements, &e.Bytes, &e.Parts, &e.ManifestSHA256, &e.ExportedAt)
			e.Hour, e.ExportedAt = e.Hour.UTC(), e.ExportedAt.UTC()
			e.ManifestKey = x.hourPrefix(e.Hour) + "manifest.json"
			return e, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(e ExportRecord) []string { return sdk.TimeKey(e.Hour, "") }))
}

func sortPolicies(ps []PolicyCount) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Purpose != ps[j].Purpose {
			return ps[i].Purpose < ps[j].Purpose
		}
		return ps[i].Version < ps[j].Version
	})
}
