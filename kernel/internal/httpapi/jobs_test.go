package httpapi_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ticker is the test plugin with its "tick" (platform) and "sweep"
// (per-institution) jobs scheduled every second.
var ticker = variant{name: "ticker", version: "1.0.0", tick: "@every 1s"}

// Two replicas share the database: every scheduled tick runs exactly once,
// per institution that has the plugin enabled for the per-tenant job.
func TestJobsScheduledOncePerTickAcrossReplicas(t *testing.T) {
	t.Parallel()
	b, file := withPluginsEnv(t, fastEvents, pluginBlock{variant: ticker})
	replica := b.replica(file)
	a, c := b.institution("alpha"), b.institution("beta")
	require.Equal(t, 200, b.do("PUT", "/api/v1/tenant/plugins/ticker", c.admin, map[string]any{"enabled": false}).Status)
	since := time.Now()

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.GreaterOrEqual(ct, b.count("SELECT count(DISTINCT scheduled_at) FROM plugin_ticker.job_log WHERE job = 'tick'"), 3)
		assert.GreaterOrEqual(ct, b.count("SELECT count(DISTINCT scheduled_at) FROM plugin_ticker.job_log WHERE job = 'sweep' AND tenant = $1 AND scheduled_at > $2", a.id, since), 3)
	}, eventually, 50*time.Millisecond)
	// Each tick ran once (first attempts: one per tick), never twice.
	require.Equal(t, b.count("SELECT count(DISTINCT scheduled_at) FROM plugin_ticker.job_log WHERE job = 'tick'"),
		b.count("SELECT count(*) FROM plugin_ticker.job_log WHERE job = 'tick' AND attempt = 1"))
	require.Equal(t, b.count("SELECT count(DISTINCT (tenant, scheduled_at)) FROM plugin_ticker.job_log WHERE job = 'sweep'"),
		b.count("SELECT count(*) FROM plugin_ticker.job_log WHERE job = 'sweep' AND attempt = 1"))
	// Beta disabled the plugin: none of its ticks ran after that.
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_ticker.job_log WHERE job = 'sweep' AND tenant = $1 AND scheduled_at > $2", c.id, since.Add(time.Second)))

	op := b.operator()
	r := replica.do("GET", "/api/v1/jobs", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	var tick map[string]any
	for _, j := range r.items() {
		if j["name"] == "tick" {
			tick = j
		}
	}
	require.NotNil(t, tick, "%s", r.Raw)
	require.Equal(t, "@every 1s", tick["schedule"])
	require.NotNil(t, tick["last_run"])
	require.NotEmpty(t, tick["next_run"])
	r = b.do("GET", "/api/v1/jobs/ticker/sweep/runs?limit=2", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 2)
	require.Equal(t, a.id, r.str("items", "0", "tenant_id"))
	require.Equal(t, "schedule", r.str("items", "0", "trigger"))
	requireProblem(t, b.do("GET", "/api/v1/jobs/ticker/nosuch/runs", a.admin, nil), 404, "job-not-found")
}

// A manual run retries with backoff until it succeeds, and its history shows
// each attempt; a run that outlives its timeout is cut off; an event starts
// the job that listens for it.
func TestJobsManualRetriesTimeoutsAndEvents(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe})
	a := b.institution("alpha")

	requireProblem(t, b.do("POST", "/api/v1/jobs/probe/flaky/runs", a.learner, nil), 403, "permission-denied")
	requireProblem(t, b.do("POST", "/api/v1/jobs/probe/flaky/runs", a.admin, map[string]any{"args": "yes"}), 422, "invalid-request")
	requireProblem(t, b.do("POST", "/api/v1/jobs/probe/tick/runs", a.admin, nil), 403, "operator-required")
	requireProblem(t, b.do("POST", "/api/v1/jobs/probe/nosuch/runs", a.admin, nil), 404, "job-not-found")

	r := b.do("POST", "/api/v1/jobs/probe/flaky/runs", a.admin, map[string]any{"args": map[string]any{"succeed_on": 2}})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	runURL := fmt.Sprintf("/api/v1/jobs/probe/flaky/runs/%s", r.str("id"))
	require.Equal(t, runURL, r.Header.Get("Location"))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := b.do("GET", runURL, a.admin, nil)
		assert.Equal(c, "succeeded", r.str("status"), "%s", r.Raw)
		assert.Len(c, r.get("attempt_history"), 2)
	}, eventually, 50*time.Millisecond)
	r = b.do("GET", runURL, a.admin, nil)
	require.Equal(t, "failed", r.str("attempt_history", "0", "outcome"))
	require.Contains(t, r.str("attempt_history", "0", "error"), "failing attempt 1")
	require.Equal(t, "succeeded", r.str("attempt_history", "1", "outcome"))
	require.Equal(t, "manual", r.str("trigger"))
	require.Equal(t, "user:"+a.adminID, r.str("requested_by"))

	// Fails every attempt: given up after the job's 3.
	r = b.do("POST", "/api/v1/jobs/probe/flaky/runs", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	failURL := fmt.Sprintf("/api/v1/jobs/probe/flaky/runs/%s", r.str("id"))
	// Sleeps past its 1 s timeout: cut off, twice.
	r = b.do("POST", "/api/v1/jobs/probe/slow/runs", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	slowURL := fmt.Sprintf("/api/v1/jobs/probe/slow/runs/%s", r.str("id"))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := b.do("GET", failURL, a.admin, nil)
		assert.Equal(c, "failed", r.str("status"), "%s", r.Raw)
		assert.EqualValues(c, 3, r.get("attempts"))
		r = b.do("GET", slowURL, a.admin, nil)
		assert.Equal(c, "failed", r.str("status"), "%s", r.Raw)
		assert.Equal(c, "timed_out", r.str("attempt_history", "1", "outcome"), "%s", r.Raw)
	}, 30*time.Second, 100*time.Millisecond)

	// An event starts the job that listens for it, once.
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/items", a.instructor, map[string]any{"name": "lamp"}).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count("SELECT count(*) FROM plugin_probe.job_log WHERE job = 'on-created' AND trigger = 'event' AND tenant = $1", a.id))
	}, eventually, 50*time.Millisecond)

	// Another institution sees none of alpha's runs.
	other := b.institution("beta")
	requireProblem(t, b.do("GET", runURL, other.admin, nil), 404, "not-found")
	r = b.do("GET", "/api/v1/jobs/probe/flaky/runs", other.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Empty(t, r.items())
}
