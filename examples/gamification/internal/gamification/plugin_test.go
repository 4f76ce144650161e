package gamification_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/examples/gamification/internal/gamification"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

// setup provisions the plugin in a fresh database, as the kernel would.
func setup(t *testing.T) *plugintest.Harness {
	t.Helper()
	return plugintest.New(t, gamification.New())
}

func TestManifest(t *testing.T) {
	t.Parallel()
	m := gamification.New().Manifest()
	err := plugintest.Check(gamification.New())
	require.NoError(t, err)
	require.Equal(t, "gamification", m.Name)
	require.Equal(t, "0.2.0", m.Version)
	require.Len(t, m.Subscribes, 1)
	require.Equal(t, "courses.lesson.completed.v1", m.Subscribes[0].Type)
	require.NotNil(t, m.Subscribes[0].Handler)
	require.Equal(t, "gamification.points.awarded.v1", m.Publishes[0].Type)
	require.Len(t, m.Jobs, 1)
	job := m.Jobs[0]
	require.Equal(t, "leaderboard-snapshot", job.Name)
	require.Equal(t, "0 2 * * *", job.Schedule)
	require.True(t, job.PerTenant)
	require.NotNil(t, job.Handler)
	var keys []string
	for _, r := range m.Routes {
		keys = append(keys, r.Key()+" "+r.Permission)
	}
	require.Equal(t, []string{
		"GET /api/v1/leaderboard gamification.leaderboard.read",
		"POST /api/v1/leaderboard/points gamification.points.award",
		"GET /api/v1/leaderboard/users/{user_id} gamification.leaderboard.read",
		"GET /api/v1/leaderboard/snapshots/latest gamification.leaderboard.read",
	}, keys)
}

// The kernel turns on row-level security for every table with a tenant_id,
// the outbox it creates for the plugin's events included.
func TestTablesAreTenantScoped(t *testing.T) {
	t.Parallel()
	h := setup(t)
	rows, _ := h.DB().Query(t.Context(), `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'plugin_gamification' AND c.relrowsecurity AND c.relforcerowsecurity
		ORDER BY 1`)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"awards", "edulure_outbox", "snapshots", "totals"}, tables)
}

func TestBadOperatorConfigIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ config, want string }{
		{`{"label":"a label far longer than twenty"}`, "label: must be at most 20 characters"},
		{`{"points_per_lesson":-1}`, "points_per_lesson: must be between 0 and 1000"},
		{`{"lable":"XP"}`, `unknown field "lable"`},
	} {
		env := &sdk.Env{DB: &sdk.DB{}, OperatorConfig: json.RawMessage(tc.config)}
		err := gamification.New().Provision(t.Context(), env)
		require.ErrorContains(t, err, tc.want, tc.config)
		require.ErrorContains(t, err, "plugins.hcl")
	}
}
