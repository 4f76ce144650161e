package telemetry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

// consenting is an institution whose learner and other learner consent to
// analytics, and the time after their grants.
func consenting(t *testing.T, h *plugintest.Harness) (inst, time.Time) {
	t.Helper()
	in := newInst(t, h)
	decide(t, h, in.learner, "analytics", in.analyticsPolicy, true)
	d := decide(t, h, in.other, "analytics", in.analyticsPolicy, true)
	return in, d.DecidedAt.Add(time.Millisecond)
}

func TestDeduplication(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in, now := consenting(t, h)
	u := in.learner.UserID
	a, b := stmt(u, now), stmt(u, now.Add(time.Millisecond))
	r := ingest(t, h, in.learner, a, b)
	require.Equal(t, []string{"stored", "stored"}, statuses(r))
	require.Equal(t, 2, r.Stored)
	before := rawOf(t, h, in.id, a["id"].(string))

	// The same batch again: nothing changes, each answered duplicate.
	r = ingest(t, h, in.learner, a, b)
	require.Equal(t, []string{"duplicate", "duplicate"}, statuses(r))
	require.Equal(t, 2, r.Duplicates)
	require.Equal(t, 2, countIn(t, h, in.id, `SELECT count(*) FROM statements`))

	// The same id with other content (another verb; another timestamp,
	// which would land in another partition): a conflict, the row stays.
	changed := stmt(u, now, map[string]any{"id": a["id"], "verb": map[string]any{"id": telemetry.VerbAttempted}})
	later := stmt(u, now.Add(2*time.Minute), map[string]any{"id": b["id"]})
	r = ingest(t, h, in.learner, changed, later)
	require.Equal(t, []string{"conflict:id_conflict", "conflict:id_conflict"}, statuses(r))
	require.Equal(t, 2, r.Conflicts)
	require.Equal(t, before, rawOf(t, h, in.id, a["id"].(string)))
	require.Equal(t, 2, countIn(t, h, in.id, `SELECT count(*) FROM statements`))

	// Key order and case of the id do not make it different.
	reordered := map[string]any{"timestamp": a["timestamp"], "object": a["object"], "verb": a["verb"], "actor": a["actor"], "id": upper(a["id"].(string))}
	r = ingest(t, h, in.learner, reordered)
	require.Equal(t, []string{"duplicate"}, statuses(r))

	// Duplicates inside one batch: none of them is stored; the others are.
	c, d := stmt(u, now), stmt(u, now)
	r = ingest(t, h, in.learner, c, d, c, stmt(u, now, map[string]any{"id": c["id"], "verb": map[string]any{"id": telemetry.VerbPassed}}))
	require.Equal(t, []string{"refused:duplicate_in_batch", "stored", "refused:duplicate_in_batch", "refused:duplicate_in_batch"}, statuses(r))
	require.Zero(t, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE id = $1`, c["id"]))
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// One batch, partly accepted: each statement answered on its own.
func TestPartialAcceptance(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in, now := consenting(t, h)
	u := in.learner.UserID
	stranger := plugintest.NewTenant() // never decided anything
	bad := stmt(u, now, map[string]any{"actor": map[string]any{"mbox": "mailto:ada@example.edu"}})
	r := ingest(t, h, in.learner,
		stmt(u, now),
		bad,
		stmt(in.other.UserID, now),         // someone else, from the client
		stmt(u, now.Add(-31*24*time.Hour)), // too old
		stmt(u, now.Add(10*time.Minute)),   // too far ahead
		stmt(stranger, now),                // not the caller either
		map[string]any{"id": "not-a-uuid"}, // hardly a statement
	)
	require.Equal(t, []string{"stored", "refused:invalid_statement", "refused:actor_not_caller", "refused:timestamp_too_old",
		"refused:timestamp_in_future", "refused:actor_not_caller", "refused:invalid_statement"}, statuses(r))
	require.Equal(t, telemetry.IngestResult{Stored: 1, Refused: 6}, telemetry.IngestResult{Stored: r.Stored, Refused: r.Refused})
	require.Equal(t, bad["id"], r.Results[1].ID)
	fields := map[string]bool{}
	for _, e := range r.Results[1].Errors {
		fields[e.Field] = true
	}
	require.True(t, fields["actor.mbox"] && fields["actor.account"], "%v", r.Results[1].Errors)

	// The bounds follow the institution's settings.
	h.SetTenantConfig(in.id, []byte(`{"max_past_days": 60, "max_future_seconds": 900}`))
	r = ingest(t, h, in.learner, stmt(u, now.Add(-31*24*time.Hour)), stmt(u, now.Add(10*time.Minute)))
	require.Equal(t, []string{"refused:not_consented_at_time", "stored"}, statuses(r), "old enough, but before the person consented")

	// A body the contract refuses is refused whole.
	res := h.Do(in.learner, "POST", "/api/v1/telemetry/events", map[string]any{"statements": []any{}})
	require.Equal(t, 422, res.Status, res)
	res = h.Do(in.learner, "POST", "/api/v1/telemetry/events", map[string]any{"statements": []any{"x"}})
	require.Equal(t, 422, res.Status, res)
}

// Server-side sources send for any member, when the institution allows
// the source.
func TestSources(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in, now := consenting(t, h)
	key := plugintest.APIKey(in.id, telemetry.PermEventSelf, telemetry.PermEventIngest)
	body := map[string]any{"source": "lms-sync", "statements": []any{stmt(in.learner.UserID, now), stmt(in.other.UserID, now), stmt(plugintest.NewID(), now)}}

	res := h.Do(key, "POST", "/api/v1/telemetry/events", body)
	require.Equal(t, 403, res.Status, res)
	require.Equal(t, "source_not_allowed", res.Problem().Code)
	h.SetTenantConfig(in.id, []byte(`{"allowed_sources": ["lms-sync"]}`))
	r := ingestBody(t, h, key, body)
	require.Equal(t, []string{"stored", "stored", "refused:not_a_member"}, statuses(r))
	require.Equal(t, 2, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE source = 'lms-sync'`))

	// A learner may not claim a source, nor may a key send without one.
	res = h.Do(in.learner, "POST", "/api/v1/telemetry/events", body)
	require.Equal(t, 403, res.Status, res)
	res = h.Do(key, "POST", "/api/v1/telemetry/events", map[string]any{"statements": []any{stmt(in.learner.UserID, now)}})
	require.Equal(t, 422, res.Status, res)

	// Ingestion turned off.
	h.SetTenantConfig(in.id, []byte(`{"ingestion_enabled": false}`))
	res = h.Do(in.learner, "POST", "/api/v1/telemetry/events", map[string]any{"statements": []any{stmt(in.learner.UserID, now)}})
	require.Equal(t, 409, res.Status, res)
	require.Equal(t, "ingestion_disabled", res.Problem().Code)
}

// Learners read their own statements; nobody reads another institution's.
func TestStatementsIsolated(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, _ := consenting(t, h)
	b, now := consenting(t, h)
	s := stmt(a.learner.UserID, now)
	require.Equal(t, []string{"stored"}, statuses(ingest(t, h, a.learner, s)))
	// The same id in another institution is another statement.
	s2 := stmt(b.learner.UserID, now, map[string]any{"id": s["id"]})
	require.Equal(t, []string{"stored"}, statuses(ingest(t, h, b.learner, s2)))

	var page struct {
		Items []telemetry.Statement `json:"items"`
	}
	res := h.Do(a.learner, "GET", "/api/v1/telemetry/events", nil)
	require.Equal(t, 200, res.Status, res)
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, s["id"], page.Items[0].ID)
	require.Contains(t, string(page.Items[0].Statement), a.learner.UserID)

	h.Do(a.other, "GET", "/api/v1/telemetry/events", nil).JSON(t, &page)
	require.Empty(t, page.Items)
	require.Equal(t, 403, h.Do(a.other, "GET", "/api/v1/telemetry/events?user_id="+a.learner.UserID, nil).Status)
	// b's admin cannot name a's learner: not a member of b.
	res = h.Do(b.admin, "GET", "/api/v1/telemetry/events?user_id="+a.learner.UserID, nil)
	require.Equal(t, 422, res.Status, res)
	require.Equal(t, 1, countIn(t, h, a.id, `SELECT count(*) FROM statements`))
	require.Equal(t, 1, countIn(t, h, b.id, `SELECT count(*) FROM statements`))
}
