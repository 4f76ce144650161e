package bench

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"time"
)

// memRows reads the resident memory of the kernel and of one plugin, idle.
func (e *env) memRows() ([]Row, error) {
	time.Sleep(2 * time.Second) // let start-up work settle
	k, err := rssMB(e.kernel.pid())
	if err != nil {
		return nil, err
	}
	pid, err := e.pluginPID("probe")
	if err != nil {
		return nil, err
	}
	p, err := rssMB(pid)
	if err != nil {
		return nil, err
	}
	echo, err := e.echo()
	if err != nil {
		return nil, err
	}
	const base = "resident memory of the in-process Echo baseline, idle (MB)"
	return []Row{
		row("mem.kernel_idle", k, "MB", base, echo.rssMB, ratioAtMost(targetKernelMem)),
		row("mem.plugin_idle", p, "MB", base, echo.rssMB, ratioAtMost(targetPluginMem)),
	}, nil
}

// awaitRoute polls a plugin route every millisecond until it answers 204.
func (e *env) awaitRoute(path string, limit time.Duration) error {
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["learner"])
	client := &http.Client{Timeout: limit}
	for deadline := time.Now().Add(limit); ; {
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s did not answer 204 within %s", path, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// lifecycleRows measures a plugin's cold start (the reload that adds it →
// its first request served) and its crash recovery (SIGKILL → first request
// served again).
func (e *env) lifecycleRows(ctx context.Context) ([]Row, error) {
	base := e.basePlugins()
	cold := pluginEntry{name: "cold", bin: e.plugins["scale"]}
	// A first load provisions its schema and role; the measured starts find
	// them in place, as every start but a plugin's very first does.
	if err := e.reload(append(base, cold)...); err != nil {
		return nil, err
	}
	if err := e.awaitRoute("/api/v1/cold/noop", 30*time.Second); err != nil {
		return nil, err
	}
	n := 5
	if e.opts.Smoke {
		n = 2
	}
	var starts []float64
	for range n {
		if err := e.reload(base...); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := e.reload(append(base, cold)...); err != nil {
			return nil, err
		}
		if err := e.awaitRoute("/api/v1/cold/noop", 30*time.Second); err != nil {
			return nil, err
		}
		starts = append(starts, ms(time.Since(t0)))
	}
	if err := e.reload(base...); err != nil {
		return nil, err
	}
	e.printf("  plugins.cold_start: %v ms", starts)

	// Three kills, a few seconds apart: below the quarantine threshold (5
	// crashes in 2 minutes), each meeting the restart backoff as it stands.
	var recoveries []float64
	for range 3 {
		var pid int
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; {
			if pid, err = e.pluginPID("spare"); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return nil, err
		}
		if err := e.awaitRoute("/api/v1/spare/noop", 30*time.Second); err != nil {
			return nil, err
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := e.awaitRoute("/api/v1/spare/noop", 30*time.Second); err != nil {
			return nil, err
		}
		recoveries = append(recoveries, ms(time.Since(t0)))
		time.Sleep(time.Second)
	}
	e.printf("  plugins.crash_recovery: %v ms", recoveries)
	echo, err := e.echo()
	if err != nil {
		return nil, err
	}
	const start = "start of the in-process Echo baseline's process, exec to first answer (ms)"
	return []Row{
		row("plugins.cold_start", median(starts), "ms", start, echo.startMs, ratioAtMost(targetColdStart)),
		row("plugins.crash_recovery", median(recoveries), "ms", start, echo.startMs, ratioAtMost(targetCrashStart)),
	}, nil
}
