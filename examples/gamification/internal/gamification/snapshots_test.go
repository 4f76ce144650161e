package gamification_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/examples/gamification/internal/gamification"
)

const latestPath = "/api/v1/leaderboard/snapshots/latest"

func latest(t *testing.T, h *plugintest.Harness, tenant string) gamification.Snapshot {
	t.Helper()
	res := h.Do(plugintest.User(tenant, "learner"), "GET", latestPath, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var s gamification.Snapshot
	res.JSON(t, &s)
	return s
}

func countSnapshots(t *testing.T, h *plugintest.Harness, tenant string) int {
	t.Helper()
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT count(*) FROM plugin_gamification.snapshots WHERE tenant_id = $1", tenant).Scan(&n))
	return n
}

// The nightly run copies the top of the leaderboard; the route reads it.
func TestSnapshotJobWritesTheSnapshot(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant, other := plugintest.NewTenant(), plugintest.NewTenant()
	h.SetTenantConfig(tenant, json.RawMessage(`{"label":"XP"}`))
	teacher := plugintest.User(tenant, "instructor")
	users := make([]string, 12)
	for i := range users {
		users[i] = member(tenant)
		award(t, h, teacher, users[i], 10*(i+1)) // users[11] leads
	}
	elsewhere := member(other)
	award(t, h, plugintest.User(other, "instructor"), elsewhere, 999)

	res := h.Do(plugintest.User(tenant, "learner"), "GET", latestPath, nil)
	require.Equal(t, http.StatusNotFound, res.Status, "no snapshot before the first run: %s", res)

	out, err := h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "snapshot of the top 10: 10 members", out)

	s := latest(t, h, tenant)
	require.Equal(t, 10, s.Size)
	require.Equal(t, "XP", s.Label)
	require.WithinDuration(t, time.Now(), s.TakenAt, time.Minute)
	require.Len(t, s.Items, 10)
	require.Equal(t, gamification.Entry{UserID: users[11], Points: 120, Rank: 1}, s.Items[0])
	require.Equal(t, gamification.Entry{UserID: users[2], Points: 30, Rank: 10}, s.Items[9])

	// The snapshot stays as it was while the leaderboard moves on.
	award(t, h, teacher, users[0], 500)
	require.Equal(t, users[11], latest(t, h, tenant).Items[0].UserID)

	// Another institution's snapshot is its own.
	res = h.Do(plugintest.User(other, "learner"), "GET", latestPath, nil)
	require.Equal(t, http.StatusNotFound, res.Status, res)
	_, err = h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: other, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, []gamification.Entry{{UserID: elsewhere, Points: 999, Rank: 1}}, latest(t, h, other).Items)
	require.Equal(t, users[11], latest(t, h, tenant).Items[0].UserID)
}

// A manual run may ask for another size; the latest snapshot is the one
// the route shows.
func TestSnapshotJobManualRun(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")
	award(t, h, teacher, member(tenant), 5)
	award(t, h, teacher, member(tenant), 7)
	award(t, h, teacher, member(tenant), 9)

	_, err := h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	out, err := h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: tenant, Args: map[string]any{"size": 2}})
	require.NoError(t, err)
	require.Equal(t, "snapshot of the top 2: 2 members", out)
	s := latest(t, h, tenant)
	require.Equal(t, 2, s.Size)
	require.Len(t, s.Items, 2)
	require.EqualValues(t, 9, s.Items[0].Points)

	// An empty leaderboard is an empty snapshot, not an error.
	empty := plugintest.NewTenant()
	out, err = h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: empty, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "snapshot of the top 10: 0 members", out)
	require.Equal(t, []gamification.Entry{}, latest(t, h, empty).Items)

	for _, args := range []any{`{"size":0}`, `{"size":101}`, `{"limit":5}`, `{"size":"5"}`} {
		_, err := h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: tenant, Args: args})
		require.ErrorIs(t, err, sdk.ErrInvalid, "%s", args)
	}
	require.Equal(t, 2, countSnapshots(t, h, tenant), "a refused run writes nothing")
}

// The kernel retries an attempt whose outcome it did not hear: the retry
// (same run ID) replaces its own snapshot.
func TestSnapshotJobRetryReplacesItsSnapshot(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	award(t, h, plugintest.User(tenant, "admin"), member(tenant), 5)
	run := plugintest.JobRun{TenantID: tenant, Trigger: "schedule", RunID: plugintest.NewID()}
	_, err := h.RunJob(t, gamification.SnapshotJob, run)
	require.NoError(t, err)
	run.Attempt = 2
	_, err = h.RunJob(t, gamification.SnapshotJob, run)
	require.NoError(t, err)
	require.Equal(t, 1, countSnapshots(t, h, tenant))
}

// Snapshots older than 90 days are dropped by the next run.
func TestSnapshotJobDropsOldSnapshots(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	_, err := h.DB().Exec(t.Context(), `
		INSERT INTO plugin_gamification.snapshots (tenant_id, run_id, taken_at, size, entries)
		VALUES ($1, 'old', now() - interval '91 days', 10, '[]'), ($1, 'recent', now() - interval '89 days', 10, '[]')`, tenant)
	require.NoError(t, err)
	_, err = h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	var runs []string
	rows, _ := h.DB().Query(t.Context(), "SELECT run_id FROM plugin_gamification.snapshots WHERE tenant_id = $1 AND run_id IN ('old', 'recent')", tenant)
	for rows.Next() {
		var r string
		require.NoError(t, rows.Scan(&r))
		runs = append(runs, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"recent"}, runs)
	require.Equal(t, 2, countSnapshots(t, h, tenant))
}

func TestSnapshotRouteNeedsThePermission(t *testing.T) {
	t.Parallel()
	h := setup(t)
	res := h.Do(plugintest.APIKey(plugintest.NewTenant()), "GET", latestPath, nil)
	require.Equal(t, http.StatusForbidden, res.Status, res)
	res = h.Do(plugintest.Anonymous(), "GET", latestPath, nil)
	require.Equal(t, http.StatusUnauthorized, res.Status, res)
}
