package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edulure/edulure/sdk/pgcluster"
)

// tracingRows measures what tracing costs: the plugin no-op route and a
// plugin route that runs SQL (the probe's item list: a transaction under
// row-level security) on the run's kernel, which traces nothing (no OTEL_*
// settings: no tracing middleware, no-op tracers), and on a second kernel
// process on the same database whose OTEL_* settings trace every request
// (always sampled) and export every span over OTLP/HTTP, the kernel's and
// its plugin's, to a collector in this process that reads and drops them.
// A third kernel traces one request in ten (parentbased_traceidratio 0.1),
// as a busy deployment would. Loads are interleaved with the in-process Echo baseline of http.*, so
// trace.off.plugin_noop's ratio compares with http.plugin_noop's, measured
// before the kernel had any tracing code (bench/results.json history).
func (e *env) tracingRows(ctx context.Context) ([]Row, error) {
	perms, err := e.fetch("/api/v1/tenant/permissions", e.tokens["admin"], 200)
	if err != nil {
		return nil, err
	}
	base, err := e.startBaseline(perms)
	if err != nil {
		return nil, err
	}
	defer base.p.stop()
	var exported, requests atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		exported.Add(n)
		requests.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	traced, err := e.startTracedKernel(ctx, "traced", sink.URL, "parentbased_always_on", "")
	if err != nil {
		return nil, err
	}
	defer traced.p.stop()
	sampled, err := e.startTracedKernel(ctx, "sampled", sink.URL, "parentbased_traceidratio", "0.1")
	if err != nil {
		return nil, err
	}
	defer sampled.p.stop()

	d := e.opts.Duration
	noop, items := "/api/v1/probe/noop", "/api/v1/probe/items"
	learner := e.tokens["learner"]
	loads := []load{
		{name: "baseline", conns: 64, dur: d, status: 200, targets: target(get(base.url+"/api/v1/tenant/permissions", ""))},
		{name: "trace.off.plugin_noop", conns: 64, dur: d, status: 204, targets: target(get(e.url+noop, learner))},
		{name: "trace.on.plugin_noop", conns: 64, dur: d, status: 204, targets: target(get(traced.url+noop, learner))},
		{name: "trace.sampled.plugin_noop", conns: 64, dur: d, status: 204, targets: target(get(sampled.url+noop, learner))},
		{name: "trace.off.plugin_sql", conns: 64, dur: d, status: 200, targets: target(get(e.url+items, learner))},
		{name: "trace.on.plugin_sql", conns: 64, dur: d, status: 200, targets: target(get(traced.url+items, learner))},
	}
	res, err := e.best(e.opts.Rounds, loads...)
	if err != nil {
		return nil, err
	}
	b, offNoop, onNoop, sampledNoop, offSQL, onSQL := res[0], res[1], res[2], res[3], res[4], res[5]
	rows := []Row{
		row("trace.off.plugin_noop", offNoop.RPS, "req/s", baselineName+" (64 connections)", b.RPS),
		row("trace.on.plugin_noop", onNoop.RPS, "req/s", "the same route with tracing off (trace.off.plugin_noop)", offNoop.RPS),
		row("trace.sampled.plugin_noop", sampledNoop.RPS, "req/s", "the same route with tracing off (trace.off.plugin_noop)", offNoop.RPS),
		row("trace.off.plugin_sql", offSQL.RPS, "req/s", baselineName+" (64 connections)", b.RPS),
		row("trace.on.plugin_sql", onSQL.RPS, "req/s", "the same route with tracing off (trace.off.plugin_sql)", offSQL.RPS),
	}
	rows[1].Note = fmt.Sprintf("tracing on: every request sampled; %.1f MB of spans exported in %d OTLP requests over the whole run", float64(exported.Load())/(1<<20), requests.Load())
	return rows, nil
}

// tracedKernel is the second kernel of tracingRows.
type tracedKernel struct {
	url string
	p   *process
}

// startTracedKernel runs bin/edulure serve like startKernel, with the probe
// plugin only and tracing on with sampler (and its argument), exporting to
// collector.
func (e *env) startTracedKernel(ctx context.Context, name, collector, sampler, arg string) (*tracedKernel, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "plugin %q {\n  path = %q\n  version = \"1.0.0\"\n  sha256 = %q\n  enabled_by_default = true\n  limits {\n    max_concurrent_requests = 1024\n  }\n}\n",
		"probe", e.plugins["scale"].path, e.plugins["scale"].sum)
	file := filepath.Join(e.dir, "plugins-"+name+".hcl")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		return nil, err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.CommandContext(ctx, e.kernelBin, "serve")
	cmd.Env = []string{
		"DATABASE_URL=" + e.dbURL,
		"EDULURE_SECRET_KEY=" + e.secret,
		"EDULURE_ADDR=" + addr,
		"EDULURE_PLUGINS_FILE=" + file,
		"EDULURE_DB_ROLE_PREFIX=bench_",
		"EDULURE_LOG_FORMAT=json",
		"EDULURE_LOG_LEVEL=" + e.opts.LogLevel,
		"EDULURE_ACCESS_TOKEN_TTL=2h",
		"EDULURE_AUTH_RATE_PER_IP=1000000",
		"EDULURE_AUTH_RATE_PER_ACCOUNT=1000000",
		"PATH=" + os.Getenv("PATH"),
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector,
		"OTEL_TRACES_SAMPLER=" + sampler,
		"OTEL_TRACES_SAMPLER_ARG=" + arg,
	}
	p, err := startProcess(filepath.Join(e.dir, "kernel-"+name+".log"), cmd)
	if err != nil {
		return nil, err
	}
	e.named[p.pid()] = name + " kernel"
	k := &tracedKernel{url: "http://" + addr, p: p}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if res, err := http.Get(k.url + "/readyz"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && !bytes.Contains(body, []byte(`"starting"`)) {
				return k, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("the %s kernel exited; its log is %s", name, p.logf.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the %s kernel did not get ready in 2 minutes; its log is %s", name, p.logf.Name())
		}
	}
}
