package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// echoFigures are the in-process Echo baseline server's costs, measured
// once per run: the same-run baselines of the rows that are absolute
// times or sizes, which move with the machine (another machine of the
// same kind gave the Echo baseline half the throughput and the OPA
// decision 2.3 times the time). Each such row keeps its absolute figure
// and is judged by its ratio to one of these.
type echoFigures struct {
	srv     *baselineServer
	startMs float64 // exec to the first answer (median of 5): a Go process with an HTTP server starting
	rssMB   float64 // resident memory, idle after its start
	cpuUs   float64 // CPU per request under 64 connections: what serving one request costs a plain Echo handler
}

// echo starts the baseline server (once per run) and measures it.
func (e *env) echo() (*echoFigures, error) {
	if e.echoFig != nil {
		return e.echoFig, nil
	}
	perms, err := e.fetch("/api/v1/tenant/permissions", e.tokens["admin"], 200)
	if err != nil {
		return nil, err
	}
	f := &echoFigures{}
	var starts []float64
	for i := range 5 {
		t0 := time.Now()
		srv, err := e.startBaseline(perms)
		if err != nil {
			return nil, err
		}
		starts = append(starts, ms(time.Since(t0)))
		if i < 4 {
			srv.p.stop()
			continue
		}
		f.srv = srv
		e.closers = append(e.closers, srv.p.stop)
	}
	f.startMs = median(starts)
	time.Sleep(time.Second) // let start-up work settle
	if f.rssMB, err = rssMB(f.srv.p.pid()); err != nil {
		return nil, err
	}
	l := load{name: "baseline cpu", conns: 64, dur: max(e.opts.Duration/2, 300*time.Millisecond), status: 200,
		targets: target(get(f.srv.url+"/api/v1/tenant/permissions", ""))}
	if _, err := l.attack(min(time.Second, l.dur)); err != nil { // warm up
		return nil, err
	}
	before, err := cpuSeconds(f.srv.p.pid())
	if err != nil {
		return nil, err
	}
	res, err := l.attack(l.dur)
	if err != nil {
		return nil, err
	}
	after, err := cpuSeconds(f.srv.p.pid())
	if err != nil {
		return nil, err
	}
	f.cpuUs = (after - before) / float64(res.Requests) * 1e6
	e.printf("  same-run baseline, in-process Echo server: starts in %.1f ms (%v), %.1f MB idle, %.1f µs of CPU per request (%s)",
		f.startMs, starts, f.rssMB, f.cpuUs, res)
	e.echoFig = f
	return f, nil
}

// cpuSeconds is the CPU time a process has used.
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // clock ticks
}
