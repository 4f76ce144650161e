package telemetry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

func TestPoliciesAreVersioned(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	require.Equal(t, 1, in.analyticsPolicy)
	require.Equal(t, 2, publishPolicy(t, h, in.admin, "analytics"))
	require.Equal(t, 1, publishPolicy(t, h, in.admin, "research"))
	// Learners read them, and cannot publish.
	res := h.Do(in.learner, "GET", "/api/v1/telemetry/policies", nil)
	require.Equal(t, 200, res.Status, res)
	var list telemetry.PolicyList
	res.JSON(t, &list)
	require.Len(t, list.Items, 3)
	require.Equal(t, 403, h.Do(in.learner, "POST", "/api/v1/telemetry/policies", map[string]any{"purpose": "x", "summary": "y"}).Status)
	// Another institution has none of them.
	other := plugintest.NewTenant()
	res = h.Do(plugintest.User(other, "learner"), "GET", "/api/v1/telemetry/policies", nil)
	res.JSON(t, &list)
	require.Empty(t, list.Items)
}

func TestConsentDecisions(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	// A grant names the current version; a withdrawal may name any.
	v2 := publishPolicy(t, h, in.admin, "analytics")
	res := h.Do(in.learner, "POST", "/api/v1/telemetry/consents", map[string]any{"purpose": "analytics", "policy_version": 1, "granted": true})
	require.Equal(t, 409, res.Status, res)
	require.Equal(t, "stale_policy_version", res.Problem().Code)
	res = h.Do(in.learner, "POST", "/api/v1/telemetry/consents", map[string]any{"purpose": "marketing", "policy_version": 1, "granted": true})
	require.Equal(t, 422, res.Status, res)
	require.Equal(t, []string{"purpose"}, res.Problem().FieldNames())
	g := decide(t, h, in.learner, "analytics", v2, true)
	require.Equal(t, "self", g.Source)
	w := decide(t, h, in.learner, "analytics", 1, false)
	require.True(t, w.DecidedAt.After(g.DecidedAt))

	// The current state and the history.
	res = h.Do(in.learner, "GET", "/api/v1/telemetry/consents", nil)
	require.Equal(t, 200, res.Status, res)
	var st telemetry.ConsentStates
	res.JSON(t, &st)
	require.Equal(t, []telemetry.ConsentState{{Purpose: "analytics", Granted: false, Basis: "decision", PolicyVersion: 1, CurrentPolicyVersion: 2, DecidedAt: &w.DecidedAt}}, st.Purposes)
	res = h.Do(in.learner, "GET", "/api/v1/telemetry/consents/history?limit=1", nil)
	require.Equal(t, 200, res.Status, res)
	var page struct {
		Items      []telemetry.Decision `json:"items"`
		NextCursor string               `json:"next_cursor"`
	}
	res.JSON(t, &page)
	require.Equal(t, []telemetry.Decision{w}, page.Items)
	res = h.Do(in.learner, "GET", "/api/v1/telemetry/consents/history?cursor="+page.NextCursor, nil)
	res.JSON(t, &page)
	require.Equal(t, []telemetry.Decision{g}, page.Items)

	// Someone else's: only with telemetry.consent.manage, for members.
	require.Equal(t, 403, h.Do(in.other, "GET", "/api/v1/telemetry/consents?user_id="+in.learner.UserID, nil).Status)
	res = h.Do(in.admin, "GET", "/api/v1/telemetry/consents?user_id="+in.learner.UserID, nil)
	require.Equal(t, 200, res.Status, res)
	res = h.Do(in.admin, "POST", "/api/v1/telemetry/consents", map[string]any{"purpose": "analytics", "policy_version": 2, "granted": true, "user_id": in.other.UserID})
	require.Equal(t, 201, res.Status, res)
	var onBehalf telemetry.Decision
	res.JSON(t, &onBehalf)
	require.Equal(t, "admin", onBehalf.Source)
	res = h.Do(in.admin, "GET", "/api/v1/telemetry/consents?user_id="+plugintest.NewID(), nil)
	require.Equal(t, 422, res.Status, res)
	require.Equal(t, "not_a_member", res.Problem().Code)

	// Decisions are append-only, even behind the plugin's back.
	err := h.InTenant(in.id, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE consent_decisions SET granted = true WHERE id = $1`, w.ID)
		return err
	})
	require.ErrorContains(t, err, "append-only")
}

// The default of an institution: opt-out purposes count as consented
// until the person decides.
func TestConsentDefault(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	now := time.Now()
	r := ingest(t, h, in.learner, stmt(in.learner.UserID, now))
	require.Equal(t, []string{"refused:no_consent"}, statuses(r))

	h.SetTenantConfig(in.id, []byte(`{"default_granted": ["analytics"]}`))
	r = ingest(t, h, in.learner, stmt(in.learner.UserID, now))
	require.Equal(t, []string{"stored"}, statuses(r))
	require.Zero(t, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE consent_id IS NOT NULL`), "admitted by the default")
	var st telemetry.ConsentStates
	h.Do(in.learner, "GET", "/api/v1/telemetry/consents", nil).JSON(t, &st)
	require.Equal(t, "default", st.Purposes[0].Basis)
	require.True(t, st.Purposes[0].Granted)

	// The person's refusal wins over the default.
	decide(t, h, in.learner, "analytics", in.analyticsPolicy, false)
	r = ingest(t, h, in.learner, stmt(in.learner.UserID, time.Now()))
	require.Equal(t, []string{"refused:consent_withdrawn"}, statuses(r))

	// A purpose without a policy has no consent to give.
	r = ingestBody(t, h, in.learner, map[string]any{"purpose": "research", "statements": []any{stmt(in.learner.UserID, now)}})
	require.Equal(t, []string{"refused:no_policy"}, statuses(r))
}

// No consent, then a grant, a withdrawal and a grant again: statements are
// judged at their timestamp and on arrival, and the gap stays excluded.
func TestConsentOverTime(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	u := in.learner.UserID
	before := time.Now().Add(-time.Minute)

	r := ingest(t, h, in.learner, stmt(u, before))
	require.Equal(t, []string{"refused:no_consent"}, statuses(r))
	require.Contains(t, r.Results[0].Detail, "analytics")

	granted := decide(t, h, in.learner, "analytics", 1, true)
	r = ingest(t, h, in.learner, stmt(u, before), stmt(u, granted.DecidedAt.Add(time.Millisecond)))
	require.Equal(t, []string{"refused:not_consented_at_time", "stored"}, statuses(r), "before the grant: not consented then")

	withdrawn := decide(t, h, in.learner, "analytics", 1, false)
	inGap := withdrawn.DecidedAt.Add(time.Millisecond)
	r = ingest(t, h, in.learner, stmt(u, granted.DecidedAt.Add(2*time.Millisecond)), stmt(u, inGap))
	require.Equal(t, []string{"refused:consent_withdrawn", "refused:consent_withdrawn"}, statuses(r), "from the withdrawal on, nothing gets in")

	regranted := decide(t, h, in.learner, "analytics", 1, true)
	r = ingest(t, h, in.learner,
		stmt(u, granted.DecidedAt.Add(3*time.Millisecond)), // consented then and now
		stmt(u, inGap), // the gap stays excluded
		stmt(u, regranted.DecidedAt.Add(time.Millisecond)))
	require.Equal(t, []string{"stored", "refused:not_consented_at_time", "stored"}, statuses(r))
	require.Equal(t, 3, countIn(t, h, in.id, `SELECT count(*) FROM statements`))
	// Each stored statement names the decision it was admitted under.
	require.Equal(t, 2, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE consent_id = $1`, granted.ID))
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE consent_id = $1`, regranted.ID))
}

// A consent change racing an ingestion. The decision holds its person's
// lock exclusively; an ingestion waits for it and then reads it. Here the
// test holds the lock as a decision in progress would, starts an
// ingestion, sees it wait for the lock (pg_locks), writes the withdrawal
// and commits: the ingestion refuses the statement.
func TestConsentRaceWithdrawalWins(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	u := in.learner.UserID
	g := decide(t, h, in.learner, "analytics", 1, true)
	ctx := t.Context()

	tx, err := h.DB().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock(plugin_telemetry.consent_lock_key($1, $2))`, in.id, u)
	require.NoError(t, err)

	done := make(chan telemetry.IngestResult)
	ts := g.DecidedAt.Add(time.Millisecond)
	go func() { done <- ingest(t, h, in.learner, stmt(u, ts)) }()
	waitForLockWaiter(t, h)

	_, err = tx.Exec(ctx, `INSERT INTO plugin_telemetry.consent_decisions (tenant_id, user_id, purpose, policy_version, granted, source, recorded_by, decided_at)
		VALUES ($1, $2::uuid, 'analytics', 1, false, 'self', 'user:' || $2::text, clock_timestamp())`, in.id, u)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	r := <-done
	require.Equal(t, []string{"refused:consent_withdrawn"}, statuses(r))
	require.Zero(t, countIn(t, h, in.id, `SELECT count(*) FROM statements`))
}

// The other order: an ingestion holding the lock (shared) makes a
// withdrawal wait until it has committed, and the withdrawal's time is
// after the statement was stored.
func TestConsentRaceIngestionFirst(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	u := in.learner.UserID
	decide(t, h, in.learner, "analytics", 1, true)
	ctx := t.Context()

	tx, err := h.DB().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(plugin_telemetry.consent_lock_key($1, $2))`, in.id, u)
	require.NoError(t, err)
	var held time.Time
	require.NoError(t, tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&held))

	done := make(chan telemetry.Decision)
	go func() { done <- decide(t, h, in.learner, "analytics", 1, false) }()
	waitForLockWaiter(t, h)
	require.NoError(t, tx.Commit(ctx))
	w := <-done
	require.True(t, w.DecidedAt.After(held), "the withdrawal is timed after the ingestion that held the lock")
}

// Many withdrawals and grants racing many ingestions: whatever the
// interleaving, every stored statement arrived while its person's latest
// decision granted consent, and its timestamp was consented too.
func TestConsentRaceInvariant(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	u := in.learner.UserID
	decide(t, h, in.learner, "analytics", 1, true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			decide(t, h, in.learner, "analytics", 1, i%2 == 1)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 40; i++ {
			ingest(t, h, in.learner, stmt(u, time.Now().Add(-time.Millisecond)))
		}
	}()
	wg.Wait()
	// For each stored statement: the latest decision before it was stored,
	// and the latest before its timestamp, both grant.
	bad := countIn(t, h, in.id, `
		SELECT count(*) FROM statements s
		WHERE NOT coalesce((SELECT granted FROM consent_decisions d WHERE d.user_id = s.user_id AND d.decided_at <= s.stored_at ORDER BY decided_at DESC LIMIT 1), false)
		   OR NOT coalesce((SELECT granted FROM consent_decisions d WHERE d.user_id = s.user_id AND d.decided_at <= s.occurred_at ORDER BY decided_at DESC LIMIT 1), false)`)
	require.Zero(t, bad)
}

// waitForLockWaiter waits until a session of the test's database is
// waiting for an advisory lock: the request started and reached the lock.
// It waits on a state, not a duration.
func waitForLockWaiter(t *testing.T, h *plugintest.Harness) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := h.DB().QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
		return err == nil && n > 0
	}, 30*time.Second, 5*time.Millisecond)
}
