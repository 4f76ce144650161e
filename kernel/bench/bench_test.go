package bench

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary serve as the baseline server, which the
// harness starts by re-executing itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve-baseline" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestSmoke runs a few of make bench's measurements with tiny loads: the
// harness starts Postgres, builds and starts the kernel and its plugins,
// measures, and stops everything. The figures mean nothing; that every
// row comes back does. (make bench runs them all, for real.)
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kernel and plugins")
	}
	root, err := findRoot()
	require.NoError(t, err)
	var log io.Writer = io.Discard
	if testing.Verbose() {
		log = os.Stderr
	}
	// The harness builds the kernel and plugins first, which on a cold build
	// cache and a loaded machine took most of a fixed 5 minutes: the budget
	// is the test binary's (-timeout), less a minute to stop and report.
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-time.Minute))
		defer cancel()
	}
	rows, err := Run(ctx, Options{
		Root: root, Smoke: true, Duration: 200 * time.Millisecond, Rounds: 1, LogLevel: "warn", Log: log,
		Only: []string{"mem", "streams", "http", "rpc", "events", "blob", "privacy", "telemetry", "messaging", "retention", "governance", "tracing"},
	})
	require.NoError(t, err)
	want := []string{
		"http.kernel_route", "http.kernel_route_c1_p99", "http.kernel_route_c16_p99", "http.kernel_route_c64_p99", "http.kernel_route_open50_p99",
		"http.plugin_noop", "http.plugin_noop_c1_p99", "http.plugin_noop_c16_p99", "http.plugin_noop_c64_p99", "http.plugin_noop_open50_p99",
		"trace.off.plugin_noop", "trace.on.plugin_noop", "trace.sampled.plugin_noop", "trace.off.plugin_sql", "trace.on.plugin_sql",
		"rpc.crossing",
		"events.latency_p50", "events.latency_p99", "events.throughput", "events.throughput_one", "events.catch_up", "events.rows_written",
		"mem.kernel_idle", "mem.plugin_idle", "mem.sse_streams_per_mb",
		"blob.put_throughput", "blob.get_throughput", "privacy.erase_one_of_10000", "privacy.offboard_1000",
		"telemetry.ingest", "telemetry.aggregate_courses", "telemetry.rollup_backlog",
		"messaging.fanout_emails_per_s", "messaging.fanout_send_emails_per_s", "messaging.sse_latency_p50", "messaging.sse_latency_p99",
		"retention.telemetry_partitions", "retention.messaging_posts", "governance.retention_execution"}
	var got []string
	for _, r := range rows {
		got = append(got, r.Name)
		require.Positive(t, r.Value, r.Name)
		if r.Baseline != nil {
			require.Positive(t, *r.BaselineValue, r.Name)
			require.NotNil(t, r.Ratio, r.Name)
		}
	}
	require.Equal(t, want, got)
}
