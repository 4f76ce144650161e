package bench

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

const baselineName = "in-process Echo handler, same JSON, no auth"

// best runs each load rounds times, interleaved so that a slow patch of the
// shared machine hits all of them alike, and keeps each one's best round.
func (e *env) best(rounds int, loads ...load) ([]loadResult, error) {
	out := make([]loadResult, len(loads))
	for r := range rounds {
		for i, l := range loads {
			cpu := e.cpuTimes()
			res, err := l.run()
			if err != nil {
				return nil, err
			}
			e.printf("  %-28s round %d: %s; %s", l.name, r+1, res, e.cpuSince(cpu))
			if res.RPS > out[i].RPS {
				out[i] = res
			}
		}
	}
	return out, nil
}

// httpRows measures the kernel route and the plugin no-op route against the
// baseline, and the plugin route at 1 to 256 connections.
func (e *env) httpRows() ([]Row, error) {
	perms, err := e.fetch("/api/v1/tenant/permissions", e.tokens["admin"], 200)
	if err != nil {
		return nil, err
	}
	base, err := e.startBaseline(perms)
	if err != nil {
		return nil, err
	}
	defer base.p.stop()
	d := e.opts.Duration
	loads := []load{
		{name: "baseline", conns: 64, dur: d, status: 200, targets: target(get(base.url+"/api/v1/tenant/permissions", ""))},
		{name: "http.kernel_route", conns: 64, dur: d, status: 200, targets: target(get(e.url+"/api/v1/tenant/permissions", e.tokens["admin"]))},
		{name: "http.plugin_noop", conns: 64, dur: d, status: 204, targets: target(get(e.url+"/api/v1/probe/noop", e.tokens["learner"]))},
	}
	if e.opts.Profile != "" {
		// Profile the kernel (and the plugin) under each route's load.
		for i, what := range map[int]string{1: "kernel_route", 2: "plugin_noop"} {
			stop := e.profile(what, d)
			if _, err := loads[i].run(); err != nil {
				return nil, err
			}
			stop()
		}
	}
	res, err := e.best(e.opts.Rounds, loads...)
	if err != nil {
		return nil, err
	}
	b, k, p := res[0], res[1], res[2]
	rows := []Row{
		row("http.kernel_route", k.RPS, "req/s", baselineName+" (64 connections)", b.RPS, ratioAtLeast(0.7)),
		row("http.plugin_noop", p.RPS, "req/s", baselineName+" (64 connections)", b.RPS, ratioAtLeast(0.35)),
		row("http.plugin_noop_p99", ms(p.P99), "ms", "", 0, atMost(5)),
	}
	// With 64 connections each waiting for its answer, the mean latency is
	// 64 / throughput (Little's law): no p99 can be below it.
	mean := 64 / p.RPS * 1000
	rows[2].Note = fmt.Sprintf("64 connections in a closed loop at %.0f req/s wait %.2f ms on average (Little's law: 64 / throughput; p50 %.2f ms)", p.RPS, mean, ms(p.P50))
	if mean < 5 {
		rows[2].Note += fmt.Sprintf(", so a p99 of 5 ms would leave the slowest 1%% of requests less than %.0f%% above the mean", 100*(5/mean-1))
	}
	rows[2].Note += "; the tail is queueing for two cores shared by the load generator, the kernel and the plugin (one connection alone: scale.concurrency.c1_p99)"
	return rows, nil
}

// concurrencyRows measures the plugin no-op route at 1, 16, 64 and 256
// connections (interleaved rounds, the best of each): throughput must not
// fall as connections grow (5% allowed for noise), and p99 must grow no
// faster than the connections.
func (e *env) concurrencyRows() ([]Row, error) {
	levels := []int{1, 16, 64, 256}
	var loads []load
	for _, c := range levels {
		loads = append(loads, load{name: fmt.Sprintf("scale.concurrency.c%d", c), conns: c, dur: e.opts.Duration, status: 204,
			targets: target(get(e.url+"/api/v1/probe/noop", e.tokens["learner"]))})
	}
	res, err := e.best(e.opts.Rounds, loads...)
	if err != nil {
		return nil, err
	}
	var rows []Row
	meets := true
	worst := 0.0
	for i, c := range levels {
		r := res[i]
		name := fmt.Sprintf("scale.concurrency.c%d", c)
		if i == 0 {
			rows = append(rows, row(name, r.RPS, "req/s", "", 0), row(name+"_p99", ms(r.P99), "ms", "", 0))
			continue
		}
		prev, pc := res[i-1], levels[i-1]
		tr := row(name, r.RPS, "req/s", fmt.Sprintf("throughput at %d connections", pc), prev.RPS, ratioAtLeast(0.95))
		pr := row(name+"_p99", ms(r.P99), "ms", fmt.Sprintf("p99 at %d connections", pc), ms(prev.P99), ratioAtMost(float64(c)/float64(pc)))
		rows = append(rows, tr, pr)
		meets = meets && *tr.Meets && *pr.Meets
		if worst == 0 || *tr.Ratio < worst {
			worst = *tr.Ratio
		}
	}
	target, m := "every level meets its targets", meets
	sum := Row{Name: "scale.concurrency", Value: worst, Unit: "lowest throughput ratio between levels", Target: &target, Meets: &m}
	return append(rows, sum), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fetch GETs a kernel path and returns the body.
func (e *env) fetch(path, token string, status int) ([]byte, error) {
	req, err := http.NewRequest("GET", e.url+path, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != status {
		return nil, fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return b, nil
}
