package gamification_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
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
	require.Equal(t, "0.4.0", m.Version)
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

// The kernel checks the operator's config block in plugins.hcl against the
// schema of Config, with the limits of its tags, and refuses the plugin
// with the words of the check (and the file and line of the setting).
func TestBadOperatorConfigIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ config, want string }{
		{`{"label":"a label far longer than twenty"}`, "config.label: must be at most 20 characters"},
		{`{"points_per_lesson":-1}`, "config.points_per_lesson: must be at least 0"},
		{`{"lable":"XP"}`, "config.lable: is not a known field"},
	} {
		msg := refusal(t, func(tb testing.TB) {
			plugintest.New(tb, gamification.New(), plugintest.WithOperatorConfig(json.RawMessage(tc.config)))
		})
		require.Contains(t, msg, "plugins.hcl", tc.config)
		require.Contains(t, msg, tc.want, tc.config)
	}
}

// refusal runs fn with a testing.TB that records, rather than reports, the
// failure fn ends with, and returns its message ("" when fn did not fail).
func refusal(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	tb := &failure{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

type failure struct {
	testing.TB
	msg string
}

func (f *failure) Helper() {}

func (f *failure) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// member is a new user who is a member of institution tenant (as a
// learner): someone points may be awarded to.
func member(tenant string) string { return plugintest.User(tenant, "learner").UserID }

// memberOfBoth is a Harness whose host makes person a member of
// institutions a and b, as the kernel allows and plugintest.User cannot.
// Its host records no audit entries, and every institution's own
// configuration is empty.
func memberOfBoth(t *testing.T, person, a, b string) *plugintest.Harness {
	t.Helper()
	return plugintest.New(t, gamification.New(), plugintest.WithHost(plugintest.HostFuncs{
		MembershipFunc: func(_ context.Context, tenant, user string) (sdk.Membership, error) {
			return sdk.Membership{Member: user == person && (tenant == a || tenant == b)}, nil
		},
		AuditFunc: func(context.Context, sdk.AuditEntry) error { return nil },
		TenantConfigFunc: func(context.Context, string) (json.RawMessage, bool, error) {
			return json.RawMessage("{}"), true, nil
		},
	}))
}
