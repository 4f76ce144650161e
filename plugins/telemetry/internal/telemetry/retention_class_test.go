package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// An institution's retention (ApplyRetention, class statements) drops the
// day partitions that hold only its expired, unheld statements, deletes its
// other expired statements row by row, never touches another institution's
// statements (even in a shared partition), keeps what a hold covers, and
// counts in its dry run what it then removes.
func TestRetentionClassStatements(t *testing.T) {
	h := setup(t)
	ctx := context.Background()
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	alice, bob, carol := plugintest.NewID(), plugintest.NewID(), plugintest.NewID()
	heldCourse := plugintest.NewID()
	now := time.Now().UTC()
	day := func(ago int) time.Time { return now.AddDate(0, 0, -ago).Truncate(24 * time.Hour).Add(12 * time.Hour) }
	for _, ago := range []int{40, 41, 42, 43} {
		_, err := h.DB().Exec(ctx, `SELECT plugin_telemetry.ensure_statement_partitions($1::date, 1)`, day(ago).Format(time.DateOnly))
		require.NoError(t, err)
	}
	seed := func(tenant, user string, course *string, at time.Time, n int) {
		t.Helper()
		_, err := h.DB().Exec(ctx, `INSERT INTO plugin_telemetry.statements
			(tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, course_id, purpose, policy_version, source, raw)
			SELECT $1, $2, gen_random_uuid(), $3, $2, 'http://adlnet.gov/expapi/verbs/experienced', 'lesson', $4, 'analytics', 1, 'test', '{}'
			FROM generate_series(1, $5)`, tenant, at, user, course, n)
		require.NoError(t, err)
	}
	seed(a, alice, nil, day(43), 30)        // only a's: dropped whole
	seed(a, alice, nil, day(42), 10)        // shared with b: rows deleted
	seed(b, carol, nil, day(42), 8)         //
	seed(a, bob, nil, day(41), 5)           // bob is held: his day stays
	seed(a, alice, nil, day(41), 6)         //   and alice's rows of it go row by row
	seed(a, alice, &heldCourse, day(40), 4) // a held course
	seed(a, alice, nil, now, 3)             // recent
	partition := func(ago int) string { return "plugin_telemetry.statements_" + day(ago).Format("20060102") }
	exists := func(name string) bool {
		var found bool
		require.NoError(t, h.DB().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&found))
		return found
	}
	cutoff := now.AddDate(0, 0, -30)
	req := sdk.RetentionRequest{TenantID: a, Class: "statements", Cutoff: cutoff, Action: sdk.RetainDelete, DryRun: true, SampleLimit: 2,
		Holds: []sdk.RetentionHold{{Kind: sdk.HoldPerson, ID: bob}, {Kind: "course", ID: heldCourse}}}
	dry, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, int64(30+10+6), dry.Matched)
	require.Len(t, dry.SampleIDs, 2)
	require.True(t, exists(partition(43)), "a dry run drops nothing")

	req.DryRun = false
	run, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, dry.Matched, run.Matched, "the execution removes what the dry run counted")
	require.Equal(t, dry.Matched, run.Affected)
	require.False(t, exists(partition(43)), "a day of the institution's statements only is dropped whole")
	require.True(t, exists(partition(42)), "a day shared with another institution stays")
	require.True(t, exists(partition(41)), "a day with held statements stays")
	require.Equal(t, 8, countIn(t, h, b, `SELECT count(*) FROM statements`), "another institution's statements are untouched")
	require.Equal(t, 5+4+3, countIn(t, h, a, `SELECT count(*) FROM statements`), "held and recent statements stay")
	var force bool
	require.NoError(t, h.DB().QueryRow(ctx, `SELECT relforcerowsecurity FROM pg_class WHERE oid = $1::regclass`, partition(42)).Scan(&force))
	require.True(t, force, "a kept partition keeps FORCE ROW LEVEL SECURITY")

	again, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Zero(t, again.Affected)

	// b's own retention now drops the shared day, which holds only b's rows.
	res, err := h.ApplyRetention(sdk.RetentionRequest{TenantID: b, Class: "statements", Cutoff: cutoff, Action: sdk.RetainDelete})
	require.NoError(t, err)
	require.Equal(t, int64(8), res.Affected)
	require.False(t, exists(partition(42)))
}
