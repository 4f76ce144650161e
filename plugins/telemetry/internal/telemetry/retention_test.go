package telemetry_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

// Retention drops whole partitions: a day stored longer ago than the
// operator's retention_days goes with its partition (no row is deleted
// one by one), the statement IDs of that age are forgotten, the coming
// days' partitions are made, and newer statements stay.
func TestRetentionDropsPartitions(t *testing.T) {
	t.Parallel()
	h := setup(t, plugintest.WithOperatorConfig(json.RawMessage(`{"retention_days": 5}`)))
	in := newInst(t, h)
	h.SetTenantConfig(in.id, []byte(`{"default_granted": ["analytics"]}`))
	now := time.Now().UTC()
	old, kept := stmt(in.learner.UserID, now), stmt(in.learner.UserID, now)
	require.Equal(t, 2, ingest(t, h, in.learner, old, kept).Stored)

	// One statement as if stored ten days ago, in that day's partition.
	ctx := context.Background()
	day := now.AddDate(0, 0, -10)
	_, err := h.DB().Exec(ctx, `SELECT plugin_telemetry.ensure_statement_partitions($1::date, 1)`, day.Format(time.DateOnly))
	require.NoError(t, err)
	for _, table := range []string{"statements", "statement_ids"} {
		_, err = h.DB().Exec(ctx, `UPDATE plugin_telemetry.`+table+` SET stored_at = stored_at - interval '10 days' WHERE id = $1`, old["id"])
		require.NoError(t, err)
	}
	partition := "plugin_telemetry.statements_" + day.Format("20060102")
	exists := func(name string) bool {
		var found bool
		require.NoError(t, h.DB().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&found))
		return found
	}
	require.True(t, exists(partition))

	out, err := h.RunJob(t, telemetry.JobMaintain, plugintest.JobRun{TenantID: in.id, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "1 partitions dropped, 1 expired statement IDs forgotten", out)
	require.False(t, exists(partition), "the expired day's partition is dropped")
	require.True(t, exists("plugin_telemetry.statements_"+now.AddDate(0, 0, 3).Format("20060102")), "the coming days' partitions are made")
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statements`))
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE id = $1`, kept["id"]))
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statement_ids`))

	// Again: nothing more to drop.
	out, err = h.RunJob(t, telemetry.JobMaintain, plugintest.JobRun{TenantID: in.id, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "0 partitions dropped, 0 expired statement IDs forgotten", out)
}
