package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// httpSeries lists the kernel's HTTP metric series in a /metrics scrape.
func (b *testBundle) httpSeries() []string {
	b.t.Helper()
	r := b.do("GET", "/metrics", "", nil)
	require.Equal(b.t, 200, r.Status)
	var out []string
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if strings.HasPrefix(line, "edulure_http_") {
			series, _, _ := strings.Cut(line, "} ")
			out = append(out, series+"}")
		}
	}
	return out
}

// TestMetricsCardinalityIsBounded: made-up methods and paths are labelled
// with one bounded value each (method "OTHER", route "unmatched"), so junk
// traffic cannot grow /metrics without bound.
func TestMetricsCardinalityIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	junk := func(i int) {
		method := fmt.Sprintf("ZZSEC%d", i)
		for _, path := range []string{"/healthz", fmt.Sprintf("/junk/%d", i), fmt.Sprintf("/api/v1/junk%d", i), fmt.Sprintf("/api/v1/tenant/members/%d", i)} {
			r := b.do(method, path, "", nil)
			require.GreaterOrEqual(t, r.Status, 400, "%s %s: %s", method, path, r.Raw)
			require.Less(t, r.Status, 500, "%s %s: %s", method, path, r.Raw)
		}
		r := b.do("GET", fmt.Sprintf("/no/such/route/%d", i), "", nil)
		require.Equal(t, 404, r.Status)
	}
	junk(0) // the bounded series exist from the first junk request on
	b.httpSeries()
	before := b.httpSeries()
	for i := 1; i <= 1000; i += 5 {
		junk(i) // 5 requests each: 1,000 in all
	}
	after := b.httpSeries()
	require.ElementsMatch(t, before, after, "junk requests added series")
	all := strings.Join(after, "\n")
	require.NotContains(t, all, "ZZSEC")
	require.NotContains(t, all, "junk")
	require.Contains(t, all, `method="OTHER"`)
	require.Contains(t, all, `route="unmatched"`)
}

// scrape reads /metrics and returns its series lines ("name{labels} value").
func (b *testBundle) scrape(headers ...string) []string {
	b.t.Helper()
	r := b.do("GET", "/metrics", "", nil, headers...)
	require.Equal(b.t, 200, r.Status, "%s", r.Raw)
	var out []string
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func hasSeries(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// A plugin's own collectors appear on the kernel's /metrics labelled with
// the plugin, beside the kernel's per-plugin series; the families a plugin
// may not publish (the kernel's, the Go collector's, another plugin's) are
// left out and counted, and a plugin's own "plugin" label cannot pass for
// another plugin.
func TestPluginMetricsOnKernelMetrics(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe, config: `{ hostile_metrics = true }`}, pluginBlock{variant: sink})
	a := b.institution("alpha")
	r := b.do("POST", "/api/v1/probe/items", a.admin, map[string]any{"name": "counted"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/probe/invalid", a.learner, nil), 422, "invalid-request")

	var lines []string
	require.Eventually(t, func() bool { // the event's delivery and the job it triggers come after the request
		lines = b.scrape()
		return hasSeries(lines, `edulure_event_deliveries_total{outcome="delivered",subscriber="sink"}`) &&
			hasSeries(lines, `edulure_job_attempts_total{job="on-created",outcome="succeeded",plugin="probe"} 1`)
	}, 60*time.Second, 100*time.Millisecond)
	all := strings.Join(lines, "\n")

	// The plugin's own series, labelled with it.
	require.Contains(t, lines, `probe_items_created_total{plugin="probe"} 1`)
	require.Contains(t, lines, `probe_labelled{exported_plugin="forged",plugin="probe"} 1e+09`)
	// None of the families it may not publish.
	require.NotContains(t, all, "forged\",route", "a plugin cannot add to the kernel's HTTP series")
	require.NotContains(t, all, `method="forged"`)
	require.NotContains(t, all, "go_goroutines 1e+09")
	require.NotContains(t, all, "other_items_created_total")
	require.True(t, hasSeries(lines, `edulure_plugin_metrics_errors_total{plugin="probe",reason="name"}`))
	require.True(t, hasSeries(lines, "go_goroutines "), "the kernel's own Go series stay")

	// The kernel's per-plugin series.
	require.Contains(t, lines, `edulure_plugin_requests_total{code="201",plugin="probe",route="POST /api/v1/probe/items"} 1`)
	require.Contains(t, lines, `edulure_plugin_requests_total{code="422",plugin="probe",route="GET /api/v1/probe/invalid"} 1`)
	require.Contains(t, lines, `edulure_plugin_request_duration_seconds_count{plugin="probe",route="POST /api/v1/probe/items"} 1`)
	require.Contains(t, lines, `edulure_plugin_state{plugin="probe",state="running"} 1`)
	require.Contains(t, lines, `edulure_plugin_state{plugin="probe",state="quarantined"} 0`)
	require.Contains(t, lines, `edulure_plugin_restarts_total{plugin="probe"} 0`)
	require.True(t, hasSeries(lines, `edulure_event_delivery_lag_seconds_count{subscriber="sink"}`))
	require.True(t, hasSeries(lines, `edulure_job_attempt_duration_seconds_count{job="on-created",plugin="probe"} 1`))
	for _, l := range lines { // no IDs in labels
		require.NotContains(t, l, a.id)
		require.NotContains(t, l, a.adminID)
	}
}

// A plugin whose collector never returns costs /metrics its own series
// only, after the kernel's short wait: the scrape still answers.
func TestHungPluginMetricsDoNotHangMetrics(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe, config: `{ hang_metrics = true }`}, pluginBlock{variant: sink})
	lines := b.scrape()
	require.True(t, hasSeries(lines, "edulure_plugin_state{"), "the kernel's series are there")
	require.False(t, hasSeries(lines, "probe_"), "the hung plugin's are not")
	require.True(t, hasSeries(lines, `edulure_plugin_metrics_errors_total{plugin="probe",reason="timeout"} 1`))
	require.False(t, hasSeries(lines, `edulure_plugin_metrics_errors_total{plugin="sink"`), "the other plugin answered")
}

// /metrics can ask for a bearer token or basic credentials, and be limited
// to some addresses; wrong or missing credentials get a 401 problem.
func TestMetricsProtection(t *testing.T) {
	t.Parallel()
	const token, basic = "metrics-token-0123456789", "prometheus:scrape-password-1"
	b := setup(t, "EDULURE_METRICS_TOKEN", token, "EDULURE_METRICS_BASIC_AUTH", basic)
	r := b.do("GET", "/metrics", "", nil)
	requireProblem(t, r, 401, "metrics-credentials")
	require.ElementsMatch(t, []string{`Bearer realm="edulure-metrics"`, `Basic realm="edulure-metrics"`}, r.Header.Values("WWW-Authenticate"))
	require.NotContains(t, string(r.Raw), token)
	requireProblem(t, b.do("GET", "/metrics", token+"x", nil), 401, "metrics-credentials")
	requireProblem(t, b.do("GET", "/metrics", "", nil, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("prometheus:wrong"))), 401, "metrics-credentials")
	require.Equal(t, 200, b.do("GET", "/metrics", token, nil).Status)
	require.Equal(t, 200, b.do("GET", "/metrics", "", nil, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic))).Status)

	// An allow-list that leaves the client out refuses even good credentials.
	far := setup(t, "EDULURE_METRICS_ALLOW", "10.0.0.0/8", "EDULURE_METRICS_TOKEN", token)
	requireProblem(t, far.do("GET", "/metrics", token, nil), 403, "metrics-forbidden")
	near := setup(t, "EDULURE_METRICS_ALLOW", "10.0.0.0/8, 127.0.0.1, ::1")
	require.Equal(t, 200, near.do("GET", "/metrics", "", nil).Status, "open to the listed addresses")
}
