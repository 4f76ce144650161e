package governance_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

// peer is another plugin with data that expires: records of a person in a
// course. failFirst makes its retention call fail that many times first.
type peer struct {
	name string

	mu        sync.Mutex
	failFirst int
	calls     int
}

func (p *peer) Manifest() sdk.Manifest {
	rc := sdk.RetentionClass{
		Name: "records", Description: "Records, by when they were made.", Table: "records", TimeColumn: "created_at",
		Subject: "user_id", HoldColumns: map[string]string{"course": "course_id"},
		Actions:   []sdk.RetentionAction{sdk.RetainDelete, sdk.RetainAnonymise},
		Anonymise: []sdk.PersonalColumn{{Name: "note", Kind: sdk.FreeText}},
	}
	if p.failFirst > 0 {
		rc.Apply = func(ctx context.Context, run *sdk.RetentionRun) (sdk.RetentionResult, error) {
			p.mu.Lock()
			p.calls++
			fail := p.calls <= p.failFirst
			p.mu.Unlock()
			if fail {
				return sdk.RetentionResult{}, errors.New("the records store is unavailable")
			}
			return run.Default(ctx)
		}
	}
	return sdk.Manifest{
		Name: p.name, Version: "0.1.0",
		Migrations: fstest.MapFS{"0001_records.up.sql": {Data: []byte(`CREATE TABLE records (
			tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
			id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id uuid, course_id uuid, note text, created_at timestamptz NOT NULL)`)}},
		PersonalData: []sdk.DataClass{{Name: "records", Table: "records", Subject: "user_id", OnErase: sdk.Delete,
			Columns: []sdk.PersonalColumn{{Name: "note", Kind: sdk.FreeText}}}},
		Retention: []sdk.RetentionClass{rc},
	}
}

func addRecords(t *testing.T, h *plugintest.Harness, tenant string, n int, user, course string, age time.Duration) {
	t.Helper()
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx(), `INSERT INTO records (user_id, course_id, note, created_at)
			SELECT NULLIF($1, '')::uuid, NULLIF($2, '')::uuid, 'note', now() - $3::interval FROM generate_series(1, $4)`,
			user, course, age.String(), n)
		return err
	}))
}

func countRecords(t *testing.T, h *plugintest.Harness, tenant string) int {
	t.Helper()
	var n int
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error { return tx.QueryRow(ctx(), `SELECT count(*) FROM records`).Scan(&n) }))
	return n
}

func dryRun(t *testing.T, h *plugintest.Harness, who sdk.Principal) governance.Report {
	t.Helper()
	var rep governance.Report
	ok(t, h.Do(who, "POST", "/api/v1/governance/retention/dry-run", nil), 200).JSON(t, &rep)
	return rep
}

func TestRetentionDryRunExecutionHoldsAndSignature(t *testing.T) {
	t.Parallel()
	records := plugintest.New(t, &peer{name: "records"})
	h := setup(t)
	h.AddRetentionPeer(records)
	a, b := newInst(t), newInst(t)
	u1, u2, u3 := plugintest.NewID(), plugintest.NewID(), plugintest.NewID()
	c1, c2 := plugintest.NewID(), plugintest.NewID()
	old := 60 * 24 * time.Hour
	addRecords(t, records, a.id, 3, u1, c1, old) // held: person u1
	addRecords(t, records, a.id, 3, u2, c2, old) // held: course c2
	addRecords(t, records, a.id, 4, u3, c1, old) // expired, not held
	addRecords(t, records, a.id, 5, u3, c1, time.Hour)
	addRecords(t, records, b.id, 5, u3, c1, old) // another institution's

	// Classes and policies.
	var classes []governance.RetentionClass
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/retention/classes", nil), 200).JSON(t, &classes)
	require.Len(t, classes, 1)
	require.Equal(t, "records", classes[0].Plugin)
	require.Equal(t, []string{"tenant", "person", "course"}, classes[0].HoldKinds)
	problem(t, h.Do(a.auditor, "PUT", "/api/v1/governance/retention/policies/records/records", map[string]any{"period_days": 30, "action": "delete"}), 403, "permission-denied")
	problem(t, h.Do(a.officer, "PUT", "/api/v1/governance/retention/policies/records/nothing", map[string]any{"period_days": 30, "action": "delete"}), 404, "retention-class-unknown")
	problem(t, h.Do(a.officer, "PUT", "/api/v1/governance/retention/policies/records/records", map[string]any{"period_days": 30, "action": "archive"}), 422, "")
	problem(t, h.Do(a.officer, "PUT", "/api/v1/governance/retention/policies/records/records", map[string]any{"period_days": 0, "action": "delete"}), 422, "")
	ok(t, h.Do(a.officer, "PUT", "/api/v1/governance/retention/policies/records/records", map[string]any{"period_days": 30, "action": "delete"}), 200)

	// Holds.
	problem(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds", map[string]any{"kind": "person", "subject_id": "bob", "reason": "x"}), 422, "")
	problem(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds", map[string]any{"kind": "tenant", "subject_id": u1, "reason": "x"}), 422, "")
	problem(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds", map[string]any{"kind": "cohort", "subject_id": u1, "reason": "x"}), 422, "")
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds", map[string]any{"kind": "person", "subject_id": strings.ToUpper(u1), "reason": "Appeal pending"}), 201)
	var courseHold governance.Hold
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds", map[string]any{"kind": "course", "subject_id": c2, "reason": "Litigation about course 2"}), 201).JSON(t, &courseHold)

	// The dry run counts exactly what the holds leave, and changes nothing.
	rep := dryRun(t, h, a.auditor)
	require.Len(t, rep.Results, 1)
	require.EqualValues(t, 4, rep.Results[0].Matched, rep)
	require.EqualValues(t, 0, rep.Results[0].Affected)
	require.Len(t, rep.Results[0].SampleIDs, 4)
	require.Equal(t, 2, rep.Results[0].Holds)
	require.Len(t, rep.PolicyHash, 64)
	require.Equal(t, 15, countRecords(t, records, a.id))
	require.Equal(t, rep.PolicyHash, dryRun(t, h, a.auditor).PolicyHash, "the same policy set hashes the same")

	// The execution on unchanged data does what the dry run counted.
	var ex governance.Execution
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/executions", map[string]any{}), 201).JSON(t, &ex)
	require.Equal(t, "succeeded", ex.Status, ex.Payload)
	require.EqualValues(t, 4, ex.Matched)
	require.EqualValues(t, 4, ex.Affected)
	require.Equal(t, rep.PolicyHash, ex.PolicyHash)
	require.Equal(t, 11, countRecords(t, records, a.id), "exactly the held and recent rows are left")
	require.Equal(t, 5, countRecords(t, records, b.id), "another institution's rows are untouched")
	var held int
	require.NoError(t, records.InTenant(a.id, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx(), `SELECT count(*) FROM records WHERE user_id = $1 OR course_id = $2`, u1, c2).Scan(&held)
	}))
	require.Equal(t, 6, held)

	// The record is signed: it verifies against the key set, and fails
	// once tampered with.
	require.NotNil(t, ex.Signature)
	claims, err := sdk.VerifySignature(h.JWKS(), *ex.Signature, []byte(ex.Payload))
	require.NoError(t, err)
	require.Equal(t, governance.SignPurposeExecution, claims.Purpose)
	var doc governance.Report
	require.NoError(t, json.Unmarshal([]byte(ex.Payload), &doc))
	require.Equal(t, ex.ID, doc.ExecutionID)
	require.Equal(t, a.id, doc.TenantID)
	require.NotContains(t, ex.Payload, a.officer.UserID, "the signed record names no one")
	tampered := strings.Replace(ex.Payload, `"affected":4`, `"affected":3`, 1)
	require.NotEqual(t, ex.Payload, tampered)
	_, err = sdk.VerifySignature(h.JWKS(), *ex.Signature, []byte(tampered))
	require.ErrorIs(t, err, sdk.ErrSignature)

	// As recorded: the same document; filed as evidence; audited; announced.
	var got governance.Execution
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/retention/executions/"+ex.ID, nil), 200).JSON(t, &got)
	require.Equal(t, ex.Payload, got.Payload)
	require.Equal(t, ex.Signature, got.Signature)
	require.NotNil(t, got.EvidenceID)
	var ev governance.EvidenceItem
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/evidence/"+*got.EvidenceID, nil), 200).JSON(t, &ev)
	require.Equal(t, "retention_execution", ev.Kind)
	problem(t, h.Do(b.admin, "GET", "/api/v1/governance/retention/executions/"+ex.ID, nil), 404, "")
	var list sdk.Page[governance.ExecutionSummary]
	ok(t, h.Do(b.admin, "GET", "/api/v1/governance/retention/executions", nil), 200).JSON(t, &list)
	require.Empty(t, list.Items)
	var audited bool
	for _, e := range h.AuditEntries() {
		audited = audited || (e.Action == "governance.retention.execute" && e.TargetID == ex.ID && e.TenantID == a.id)
	}
	require.True(t, audited)
	pub := h.Published(t, a.id)
	require.NotEmpty(t, pub)
	require.Equal(t, governance.EventRetentionExecuted, pub[len(pub)-1].Type)

	// A tenant hold suspends everything; releasing holds frees their rows.
	var tenantHold governance.Hold
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds", map[string]any{"kind": "tenant", "reason": "Regulator's inquiry"}), 201).JSON(t, &tenantHold)
	require.EqualValues(t, 0, dryRun(t, h, a.admin).Matched)
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds/"+tenantHold.ID+"/release", nil), 200)
	problem(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds/"+tenantHold.ID+"/release", nil), 409, "hold-released")
	problem(t, h.Do(b.admin, "POST", "/api/v1/governance/retention/holds/"+courseHold.ID+"/release", nil), 404, "")
	// The list pages newest first; active=true leaves the released ones out.
	var first, second sdk.Page[governance.Hold]
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/retention/holds?limit=2", nil), 200).JSON(t, &first)
	require.Len(t, first.Items, 2)
	require.Equal(t, tenantHold.ID, first.Items[0].ID)
	require.NotEmpty(t, first.NextCursor)
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/retention/holds?limit=2&cursor="+first.NextCursor, nil), 200).JSON(t, &second)
	require.Len(t, second.Items, 1)
	require.Empty(t, second.NextCursor)
	var active sdk.Page[governance.Hold]
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/retention/holds?active=true", nil), 200).JSON(t, &active)
	require.Len(t, active.Items, 2)
	for _, x := range active.Items {
		require.Nil(t, x.ReleasedAt)
	}
	var others sdk.Page[governance.Hold]
	ok(t, h.Do(b.admin, "GET", "/api/v1/governance/retention/holds", nil), 200).JSON(t, &others)
	require.Empty(t, others.Items, "another institution's holds")
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/retention/holds/"+courseHold.ID+"/release", nil), 200)
	after := dryRun(t, h, a.admin)
	require.EqualValues(t, 3, after.Matched, "the course's rows are no longer held")
	require.NotEqual(t, rep.PolicyHash, after.PolicyHash)
}

func TestRetentionFailingPluginRetriedAndReported(t *testing.T) {
	t.Parallel()
	flaky := &peer{name: "flaky", failFirst: 2}
	broken := &peer{name: "broken", failFirst: 1 << 30}
	records := plugintest.New(t, &peer{name: "records"})
	fh, bh := plugintest.New(t, flaky), plugintest.New(t, broken)
	var mu sync.Mutex
	var waits []time.Duration
	h := plugintest.New(t, governance.NewWith(governance.WithSleep(func(_ context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return nil
	})))
	for _, p := range []*plugintest.Harness{records, fh, bh} {
		h.AddRetentionPeer(p)
	}
	a := newInst(t)
	h.SetTenantConfig(a.id, json.RawMessage(`{"retention_max_failures": 3, "retention_failure_backoff_ms": 100}`))
	for _, p := range []*plugintest.Harness{records, fh, bh} {
		addRecords(t, p, a.id, 2, plugintest.NewID(), "", 90*24*time.Hour)
	}
	for _, name := range []string{"records", "flaky", "broken"} {
		ok(t, h.Do(a.admin, "PUT", "/api/v1/governance/retention/policies/"+name+"/records", map[string]any{"period_days": 30, "action": "anonymise"}), 200)
	}

	var ex governance.Execution
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/retention/executions", map[string]any{}), 201).JSON(t, &ex)
	require.Equal(t, "failed", ex.Status)
	require.Equal(t, 1, ex.Failures)
	require.EqualValues(t, 4, ex.Affected, "records and flaky (after two retries) are done")
	var doc governance.Report
	require.NoError(t, json.Unmarshal([]byte(ex.Payload), &doc))
	byPlugin := map[string]governance.ClassResult{}
	for _, r := range doc.Results {
		byPlugin[r.Plugin] = r
	}
	require.Equal(t, 1, byPlugin["records"].Attempts)
	require.Equal(t, 3, byPlugin["flaky"].Attempts)
	require.Empty(t, byPlugin["flaky"].Error)
	require.EqualValues(t, 2, byPlugin["flaky"].Affected)
	require.Equal(t, 3, byPlugin["broken"].Attempts, "retried up to retention_max_failures")
	require.Contains(t, byPlugin["broken"].Error, "the records store is unavailable")
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}, waits, "backoff doubles per attempt")
	_, err := sdk.VerifySignature(h.JWKS(), *ex.Signature, []byte(ex.Payload))
	require.NoError(t, err, "a failed execution is signed too")

	var types []string
	for _, e := range h.Published(t, a.id) {
		types = append(types, e.Type)
	}
	require.Contains(t, types, governance.EventRetentionFailed)
	require.Equal(t, 2, countRecords(t, bh, a.id))
}

func TestRetentionJobSchedule(t *testing.T) {
	t.Parallel()
	records := plugintest.New(t, &peer{name: "records"})
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 1, 50, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	h := plugintest.New(t, governance.NewWith(governance.WithClock(clock)))
	h.AddRetentionPeer(records)
	a := newInst(t)
	// 02:00 in Sydney (UTC+11 in December) is 15:00 UTC the day before.
	h.SetTenantConfig(a.id, json.RawMessage(`{"retention_schedule": "0 2 * * *", "retention_time_zone": "Australia/Sydney"}`))
	addRecords(t, records, a.id, 3, plugintest.NewID(), "", 400*24*time.Hour)
	out, err := h.RunJob(t, governance.JobRetention, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerSchedule})
	require.NoError(t, err)
	require.Contains(t, out, "no retention policy")
	ok(t, h.Do(a.admin, "PUT", "/api/v1/governance/retention/policies/records/records", map[string]any{"period_days": 30, "action": "delete"}), 200)

	out, err = h.RunJob(t, governance.JobRetention, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerSchedule})
	require.NoError(t, err)
	require.Contains(t, out, "succeeded")
	require.Equal(t, 0, countRecords(t, records, a.id))
	var list sdk.Page[governance.ExecutionSummary]
	ok(t, h.Do(a.admin, "GET", "/api/v1/governance/retention/executions", nil), 200).JSON(t, &list)
	require.Len(t, list.Items, 1)
	require.Equal(t, "schedule", list.Items[0].Trigger)
	require.Equal(t, time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC), list.Items[0].ScheduledFor.UTC())

	// The slot is taken: the next tick does nothing until the next slot.
	set(now.Add(15 * time.Minute))
	out, err = h.RunJob(t, governance.JobRetention, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerSchedule})
	require.NoError(t, err)
	require.Contains(t, out, "has run")
	set(time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC))
	out, err = h.RunJob(t, governance.JobRetention, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerSchedule})
	require.NoError(t, err)
	require.Contains(t, out, "succeeded")

	// A manual dry run through the job; a disabled schedule does nothing.
	out, err = h.RunJob(t, governance.JobRetention, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerManual, Args: map[string]any{"dry_run": true}})
	require.NoError(t, err)
	require.Contains(t, out, "dry run true")
	h.SetTenantConfig(a.id, json.RawMessage(`{"retention_enabled": false}`))
	out, err = h.RunJob(t, governance.JobRetention, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerSchedule})
	require.NoError(t, err)
	require.Contains(t, out, "disabled")
}

// A hold is never placed while an execution runs (the execution read the
// holds when it started and would delete what the hold covers): 409
// retention-running, and placed once the execution has ended.
func TestHoldWaitsForNoExecution(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newInst(t)
	hold := map[string]any{"kind": "tenant", "reason": "Litigation"}
	// An execution of the institution running: it holds the lock.
	err := h.InTenant(a.id, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx(), `SELECT pg_advisory_xact_lock(hashtextextended('governance.retention:' || current_setting('edulure.tenant_id'), 0))`); err != nil {
			return err
		}
		problem(t, h.Do(a.admin, "POST", "/api/v1/governance/retention/holds", hold), 409, "retention-running")
		// Another institution's holds are not held up.
		b := newInst(t)
		ok(t, h.Do(b.admin, "POST", "/api/v1/governance/retention/holds", hold), 201)
		return nil
	})
	require.NoError(t, err)
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/retention/holds", hold), 201)
	// Executions and dry runs still run.
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/retention/executions", map[string]any{}), 201)
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/retention/dry-run", nil), 200)
}
