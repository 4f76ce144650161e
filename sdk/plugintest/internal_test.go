package plugintest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
)

type tiny struct {
	name       string
	version    string
	migrations fstest.MapFS
	config     any
	routes     []sdk.Route
	perms      []sdk.Permission
	events     []sdk.EventType
	jobs       []sdk.Job
	subs       []sdk.Subscription
	personal   []sdk.DataClass
	cleanedUp  atomic.Bool
}

func (p *tiny) Manifest() sdk.Manifest {
	m := sdk.Manifest{
		Name: p.name, Version: "0.0.1", Routes: p.routes, Permissions: p.perms, Publishes: p.events, Jobs: p.jobs, Subscribes: p.subs,
		Migrations: fstest.MapFS{"0001_t.up.sql": {Data: []byte("CREATE TABLE t (tenant_id uuid NOT NULL)")}},
		Config:     p.config, PersonalData: p.personal,
	}
	if p.version != "" {
		m.Version = p.version
	}
	if p.migrations != nil {
		m.Migrations = p.migrations
	}
	return m
}
func (p *tiny) Provision(context.Context, *sdk.Env) error { return nil }
func (p *tiny) Cleanup(context.Context) error             { p.cleanedUp.Store(true); return nil }

// After the test, the plugin was cleaned up and its database and roles,
// and those of a plugin sharing the database, are gone.
func TestCleanupDropsDatabaseAndRoles(t *testing.T) {
	t.Parallel()
	first, second := &tiny{name: "first"}, &tiny{name: "second"}
	var h *Harness
	t.Run("use", func(t *testing.T) {
		h = New(t, first)
		New(t, second, WithDatabaseOf(h))
		var roles int
		require.NoError(t, h.DB().QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)", h.rolePrefix).Scan(&roles))
		require.Equal(t, 4, roles, "an owner and a login role per plugin")
	})
	require.True(t, first.cleanedUp.Load())
	require.True(t, second.cleanedUp.Load())

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, h.adminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var dbs, roles int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", strings.TrimPrefix(mustURL(h.dbURL).Path, "/")).Scan(&dbs))
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)", h.rolePrefix).Scan(&roles))
	require.Zero(t, dbs)
	require.Zero(t, roles)
}

// fakeTB records a failure and ends the goroutine, like t.Fatal.
type fakeTB struct {
	testing.TB
	failure  string
	cleanups []func()
}

func (f *fakeTB) Helper()             {}
func (f *fakeTB) Log(...any)          {}
func (f *fakeTB) Logf(string, ...any) {}
func (f *fakeTB) Cleanup(fn func())   { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func newFails(p sdk.Plugin) string {
	return fails(func(tb testing.TB) { New(tb, p) })
}

// fails runs f with a fakeTB and returns the failure it reported.
func fails(f func(testing.TB)) string {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	return tb.failure
}

func noJob(context.Context, *sdk.JobRun) error  { return nil }
func noEvent(context.Context, *sdk.Event) error { return nil }

func TestNewRefusesWhatTheKernelRefuses(t *testing.T) {
	t.Parallel()
	ok := sdk.HandlerFunc(func(context.Context, *sdk.Request) (*sdk.Response, error) { return sdk.NoContent() })
	perm := []sdk.Permission{{Name: "bad.thing.read"}}
	for _, tc := range []struct {
		name string
		p    *tiny
		want string
	}{
		{"bad name", &tiny{name: "Bad-Name"}, "must be 2-31 lowercase"},
		{"no handler", &tiny{name: "bad", routes: []sdk.Route{{Method: "GET", Path: "/api/v1/things", Public: true}}}, "has no handler"},
		{"bad path", &tiny{name: "bad", routes: []sdk.Route{{Method: "GET", Path: "/things", Public: true, Handler: ok}}}, "must start with /api/v1/"},
		{"bad method", &tiny{name: "bad", routes: []sdk.Route{{Method: "HEAD", Path: "/api/v1/things", Public: true, Handler: ok}}}, "method must be"},
		{"undeclared permission", &tiny{name: "bad", perms: perm, routes: []sdk.Route{{Method: "GET", Path: "/api/v1/things", Permission: "bad.thing.write", Handler: ok}}}, `unknown permission "bad.thing.write"`},
		{"no permission", &tiny{name: "bad", routes: []sdk.Route{{Method: "GET", Path: "/api/v1/things", Handler: ok}}}, "a route that is not public must name a permission"},
		{"foreign permission", &tiny{name: "bad", perms: []sdk.Permission{{Name: "courses.course.read"}}}, `must start with "bad."`},
		{"unknown default role", &tiny{name: "bad", perms: []sdk.Permission{{Name: "bad.thing.read", DefaultRoles: []string{"teacher"}}}}, `default role "teacher" is not a built-in role`},
		{"reserved resource", &tiny{name: "bad", routes: []sdk.Route{{Method: "GET", Path: "/api/v1/tenant/things", Public: true, Handler: ok}}}, "reserved for the kernel"},
		{"overlapping routes", &tiny{name: "bad", routes: []sdk.Route{
			{Method: "GET", Path: "/api/v1/things/{id}", Public: true, Handler: ok},
			{Method: "GET", Path: "/api/v1/things/new", Public: true, Handler: ok},
		}}, "overlaps the plugin's own route GET /api/v1/things/{id}"},
		{"foreign event", &tiny{name: "bad", events: []sdk.EventType{{Type: "courses.course.created.v1", Schema: []byte(`{}`)}}}, "publishes only events named bad."},
		{"event without schema", &tiny{name: "bad", events: []sdk.EventType{{Type: "bad.thing.made.v1"}}}, "needs a JSON Schema"},
		{"event schema does not compile", &tiny{name: "bad", events: []sdk.EventType{{Type: "bad.thing.made.v1", Schema: []byte(`{"type": 5}`)}}}, "schema does not compile"},
		{"job without handler", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", Schedule: "@daily"}}}, "job sweep has no handler"},
		{"schedule not cron", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", Schedule: "hourly", Handler: noJob}}}, "five fields"},
		{"six cron fields", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", Schedule: "0 0 2 * * *", Handler: noJob}}}, "five fields"},
		{"unknown descriptor", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", Schedule: "@fortnightly", Handler: noJob}}}, "unrecognized descriptor"},
		{"every without duration", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", Schedule: "@every day", Handler: noJob}}}, "failed to parse duration"},
		{"unknown time zone", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", Schedule: "CRON_TZ=Nowhere/Land 0 2 * * *", Handler: noJob}}}, `bad location Nowhere/Land`},
		{"version not semver", &tiny{name: "bad", version: "banana"}, `version "banana": must be a semantic version`},
		{"migrations not at the root", &tiny{name: "bad", migrations: fstest.MapFS{"sql/0001_x.up.sql": {Data: []byte("SELECT 1")}}}, "holds no NNNN_name.up.sql file at its root (it holds sql/)"},
		{"query of a bad type", &tiny{name: "bad", routes: []sdk.Route{{Method: "GET", Path: "/api/v1/things", Public: true, Handler: ok, Query: struct {
			Filter map[string]string `query:"filter"`
		}{}}}}, `query parameter "filter"`},
		{"config not a struct", &tiny{name: "bad", config: 5}, "the configuration must be a struct"},
		{"job on a bad event", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", OnEvent: "lesson-done", Handler: noJob}}}, "is not an event type"},
		{"job with a foreign permission", &tiny{name: "bad", jobs: []sdk.Job{{Name: "sweep", Permission: "courses.course.read", Handler: noJob}}}, "is not one the plugin declares"},
		{"subscription without handler", &tiny{name: "bad", subs: []sdk.Subscription{{Type: "courses.course.created.v1"}}}, "has no handler"},
		{"subscription to a non-event", &tiny{name: "bad", subs: []sdk.Subscription{{Type: "courses.created", Handler: noEvent}}}, "not an event type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, newFails(tc.p), tc.want)
		})
	}
}

// Schedules the kernel's cron parser takes, and jobs that run on demand
// only, are accepted.
func TestNewAcceptsSchedulesAndOnDemandJobs(t *testing.T) {
	t.Parallel()
	var jobs []sdk.Job
	for i, schedule := range []string{"", "0 2 * * *", "*/15 * * * 1-5", "@every 1s", "@every 1h30m", "@hourly", "@daily", "@midnight", "CRON_TZ=UTC 0 2 * * *", "TZ=UTC @daily"} {
		jobs = append(jobs, sdk.Job{Name: fmt.Sprintf("job-%d", i), Schedule: schedule, PerTenant: i%2 == 0, Handler: noJob})
	}
	require.Empty(t, newFails(&tiny{name: "good", jobs: jobs}))
}

// What the kernel never does fails the test rather than returning an error
// the test might take for the plugin's.
func TestDeliverAndRunJobRefuseWhatTheKernelNeverDoes(t *testing.T) {
	t.Parallel()
	h := New(t, &tiny{
		name: "good",
		subs: []sdk.Subscription{{Type: "courses.course.created.v1", Handler: noEvent}},
		jobs: []sdk.Job{{Name: "tenant-job", PerTenant: true, Handler: noJob}, {Name: "platform-job", Handler: noJob}},
	})
	tenant := NewTenant()
	ev := Event{Type: "courses.course.created.v1", TenantID: tenant}
	require.NoError(t, h.Deliver(t, ev))
	for _, tc := range []struct {
		name string
		f    func(tb testing.TB)
		want string
	}{
		{"unsubscribed type", func(tb testing.TB) { h.Deliver(tb, Event{Type: "courses.course.deleted.v1"}) }, `does not subscribe to "courses.course.deleted.v1"`},
		{"event ID not a UUID", func(tb testing.TB) { ev := ev; ev.ID = "42"; h.Deliver(tb, ev) }, `event ID "42" is not a UUID`},
		{"tenant not a UUID", func(tb testing.TB) { ev := ev; ev.TenantID = "acme"; h.Deliver(tb, ev) }, `tenant ID "acme" is not a UUID`},
		{"data not an object", func(tb testing.TB) { ev := ev; ev.Data = []int{1}; h.Deliver(tb, ev) }, "must be a JSON object"},
		{"data not JSON", func(tb testing.TB) { ev := ev; ev.Data = "{"; h.Deliver(tb, ev) }, "must be a JSON object"},
		{"undeclared job", func(tb testing.TB) { h.RunJob(tb, "nope", JobRun{}) }, `has no job "nope"`},
		{"per-tenant job without tenant", func(tb testing.TB) { h.RunJob(tb, "tenant-job", JobRun{}) }, "is PerTenant"},
		{"platform job with tenant", func(tb testing.TB) { h.RunJob(tb, "platform-job", JobRun{TenantID: tenant}) }, "is a platform job"},
		{"bad trigger", func(tb testing.TB) { h.RunJob(tb, "platform-job", JobRun{Trigger: "cron"}) }, `trigger "cron"`},
		{"event trigger without event", func(tb testing.TB) { h.RunJob(tb, "platform-job", JobRun{Trigger: "event"}) }, "needs its Event"},
		{"args not an object", func(tb testing.TB) { h.RunJob(tb, "platform-job", JobRun{Args: "[]"}) }, "job arguments must be a JSON object"},
		{"published for a bad tenant", func(tb testing.TB) { h.Published(tb, "acme") }, `tenant ID "acme" is not a UUID`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, fails(tc.f), tc.want)
		})
	}
}

// Without Main, the watchdog stops and removes the throwaway cluster once
// the test binary has exited. The test runs this binary again, without
// TEST_DATABASE_URL and without Main.
func TestWatchdogRemovesClusterWithoutMain(t *testing.T) {
	if os.Getenv("PLUGINTEST_HELPER") == "watchdog" {
		New(t, &tiny{name: "helper"})
		fmt.Println("CLUSTER_DIR=" + server.dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogRemovesClusterWithoutMain$", "-test.count=1")
	cmd.Env = append(withoutEnv(os.Environ(), EnvURL), "PLUGINTEST_HELPER=watchdog")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	_, rest, ok := strings.Cut(string(out), "CLUSTER_DIR=")
	require.True(t, ok, "%s", out)
	dir := strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0])
	require.True(t, filepath.IsAbs(dir), dir)
	require.Eventually(t, func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	}, 30*time.Second, 100*time.Millisecond, "the watchdog removes %s", dir)
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
