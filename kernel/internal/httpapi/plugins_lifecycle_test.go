package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/dbtest"
)

// The lifecycle tests run real plugin processes: they start, crash, time
// out, hit their limits, get upgraded and outlive (or not) the kernel, and
// assert on what operators and clients see over HTTP.

const (
	// eventually is how long asynchronous plugin state may take to settle on
	// a loaded machine.
	eventually = 30 * time.Second
	tick       = 25 * time.Millisecond
)

// fetch sends a request without failing the test, for goroutines and
// EventuallyWithT conditions (which must not call t.FailNow).
func fetch(base, method, path, token string) (response, error) {
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(raw, &out.Body)
	}
	return out, nil
}

// pluginStatus is the operator's view of one plugin (GET /api/v1/plugins),
// nil when it is not listed.
func pluginStatus(r response, name string) map[string]any {
	for _, it := range r.items() {
		if it["name"] == name {
			return it
		}
	}
	return nil
}

// statusOf fetches the operator's view of one plugin without failing the test.
func statusOf(b *testBundle, op, name string) (map[string]any, error) {
	r, err := fetch(b.url, "GET", "/api/v1/plugins", op)
	if err != nil {
		return nil, err
	}
	if r.Status != 200 {
		return nil, fmt.Errorf("GET /api/v1/plugins: %d %s", r.Status, r.Raw)
	}
	st := pluginStatus(r, name)
	if st == nil {
		return nil, fmt.Errorf("plugin %q not listed: %s", name, r.Raw)
	}
	return st, nil
}

// awaitState waits until the operator sees the plugin in state and returns
// that status.
func awaitState(t *testing.T, b *testBundle, op, name, state string) map[string]any {
	t.Helper()
	var last map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := statusOf(b, op, name)
		require.NoError(c, err)
		last = st
		require.Equal(c, state, st["state"], "status: %v", st)
	}, eventually, tick, "plugin %s never reached state %s", name, state)
	return last
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// requireRetryAfter asserts a Retry-After header of whole seconds.
func requireRetryAfter(t *testing.T, r response) {
	t.Helper()
	ra := r.Header.Get("Retry-After")
	n, err := strconv.Atoi(ra)
	require.NoError(t, err, "Retry-After %q, body %s", ra, r.Raw)
	require.Positive(t, n, "Retry-After")
}

// processGone reports whether pid has ended: no /proc entry, or a zombie
// waiting for whoever inherited it to reap it.
func processGone(pid int) bool {
	st, err := readStat(pid)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return st.state == "Z"
}

type procStat struct {
	pid, ppid int
	state     string
}

// readStat parses /proc/<pid>/stat: "pid (comm) state ppid ...", where comm
// may itself hold spaces and parentheses.
func readStat(pid int) (procStat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return procStat{}, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, err
	}
	return procStat{pid: pid, ppid: ppid, state: f[0]}, nil
}

// childrenOf lists the live processes whose parent is ppid.
func childrenOf(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.ppid != ppid || st.state == "Z" {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// A plugin whose binary does not match the sha256 in plugins.hcl is refused
// and the operator is told why; the kernel and the other plugins run.
func TestPluginChecksumMismatchRefused(t *testing.T) {
	t.Parallel()
	other := variant{name: "other", version: "1.0.0"}
	b, _ := withPlugins(t,
		pluginBlock{variant: probe, sha256: strings.Repeat("0", 64)},
		pluginBlock{variant: other},
	)
	op := b.operator()
	a := b.institution("alpha")

	r := b.do("GET", "/api/v1/plugins", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	st := pluginStatus(r, "probe")
	require.NotNil(t, st, "%s", r.Raw)
	require.Equal(t, "failed", st["state"], "%s", r.Raw)
	require.Contains(t, st["last_error"], "sha256", "the operator is told what is wrong")
	require.Contains(t, st["last_error"], "does not match")
	require.Zero(t, num(st["pid"]), "no process runs for a refused plugin")
	require.Empty(t, st["routes"])
	st = pluginStatus(r, "other")
	require.NotNil(t, st, "%s", r.Raw)
	require.Equal(t, "running", st["state"], "%s", r.Raw)

	// A refused plugin stays refused: the monitor does not retry it.
	time.Sleep(time.Second)
	r = b.do("GET", "/api/v1/plugins", op, nil)
	require.Equal(t, "failed", pluginStatus(r, "probe")["state"], "%s", r.Raw)
	require.Zero(t, num(pluginStatus(r, "probe")["restarts"]))

	requireProblem(t, b.do("GET", "/api/v1/probe/noop", a.learner, nil), 404, "not-found")
	requireProblem(t, b.do("GET", "/api/v1/probe/public", "", nil), 404, "not-found")
	r = b.do("GET", "/api/v1/other/noop", a.learner, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)

	// Institutions do not see a plugin refused at load.
	r = b.do("GET", "/api/v1/tenant/plugins", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 1, "%s", r.Raw)
	require.Equal(t, "other", r.str("items", "0", "name"))
	// The kernel reports the refusal to operators without leaving the load
	// balancer.
	r = b.do("GET", "/readyz", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "failed", r.str("checks", "plugin:probe"))
	require.Equal(t, "running", r.str("checks", "plugin:other"))
}

// A plugin whose routes overlap another plugin's is refused, naming the
// route and the plugin it conflicts with; the first plugin keeps serving.
func TestPluginManifestConflictRefused(t *testing.T) {
	t.Parallel()
	clash := variant{name: "clash", version: "1.0.0", prefix: "probe"}
	b, _ := withPlugins(t, pluginBlock{variant: probe}, pluginBlock{variant: clash})
	op := b.operator()
	a := b.institution("alpha")

	r := b.do("GET", "/api/v1/plugins", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	st := pluginStatus(r, "clash")
	require.NotNil(t, st, "%s", r.Raw)
	require.Equal(t, "failed", st["state"], "%s", r.Raw)
	msg, _ := st["last_error"].(string)
	require.Contains(t, msg, `conflicts with route GET /api/v1/probe/noop of plugin "probe"`)
	require.Contains(t, msg, `conflicts with route POST /api/v1/probe/items of plugin "probe"`)
	require.Zero(t, num(st["pid"]), "the refused process is stopped")
	require.Equal(t, "running", pluginStatus(r, "probe")["state"], "%s", r.Raw)

	r = b.do("GET", "/api/v1/probe/echo/7", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "probe", r.str("plugin"), "the route still goes to the first plugin")
	r = b.do("GET", "/api/v1/probe/noop", a.learner, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	// None of clash's permissions were registered.
	doc := b.do("GET", "/api/openapi.json", "", nil)
	require.Equal(t, "probe.item.write", doc.str("paths", "/api/v1/probe/items", "post", "x-permission"))
}

// A plugin that dies mid-request answers 502 plugin-crashed and is
// restarted; one that keeps crashing is quarantined, answers 503 until an
// operator reloads it, and takes nothing else down.
func TestPluginCrashRestartsAndQuarantine(t *testing.T) {
	t.Parallel()

	t.Run("crash mid-request restarts", func(t *testing.T) {
		t.Parallel()
		b, _ := withPlugins(t, pluginBlock{variant: probe})
		op := b.operator()
		a := b.institution("alpha")
		before := awaitState(t, b, op, "probe", "running")

		r := b.do("POST", "/api/v1/probe/crash", a.admin, nil)
		requireProblem(t, r, 502, "plugin-crashed")
		require.Equal(t, "plugin", r.str("source"))

		// The kernel's own routes do not depend on the plugin.
		r = b.do("GET", "/healthz", "", nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		r = b.do("GET", "/api/v1/me", a.admin, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)

		// Until the new process serves, callers get a problem that says so.
		var seen sync.Map
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			r, err := fetch(b.url, "GET", "/api/v1/probe/noop", a.learner)
			require.NoError(c, err)
			seen.Store(fmt.Sprintf("%d %s", r.Status, r.str("code")), string(r.Raw))
			require.Equal(c, 204, r.Status, "%s", r.Raw)
		}, eventually, tick)
		seen.Range(func(k, v any) bool {
			require.Contains(t, []string{"204 ", "503 plugin-unavailable", "502 plugin-crashed"}, k, "answer while restarting: %s", v)
			return true
		})

		st := awaitState(t, b, op, "probe", "running")
		require.GreaterOrEqual(t, num(st["restarts"]), 1, "status: %v", st)
		require.NotEqual(t, num(before["pid"]), num(st["pid"]), "a new process serves")
		require.True(t, processGone(num(before["pid"])), "the crashed process is gone")

		r = b.do("GET", "/api/v1/probe/echo/1", a.learner, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		r = b.do("GET", "/healthz", "", nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
	})

	t.Run("crash on start quarantines until reload", func(t *testing.T) {
		t.Parallel()
		crashy := variant{name: "crashy", version: "1.0.0"}
		b, file := withPlugins(t, pluginBlock{variant: probe}, pluginBlock{variant: crashy, config: `{ crash_on_start = true }`})
		op := b.operator()
		a := b.institution("alpha")

		st := awaitState(t, b, op, "crashy", "quarantined")
		require.Contains(t, st["last_error"], "quarantined", "status: %v", st)
		require.Zero(t, num(st["pid"]))
		r := b.do("GET", "/api/v1/plugins", op, nil)
		require.Equal(t, "running", pluginStatus(r, "probe")["state"], "%s", r.Raw)
		require.Zero(t, num(pluginStatus(r, "probe")["restarts"]), "the other plugin is unaffected")

		// KNOWN GAP: a plugin that never finished starting has no routes in
		// the route table (the supervisor only installs a manifest once
		// Configure succeeds), so its routes answer 404 not-found rather than
		// 503 plugin-quarantined. The subtest below covers the 503 for a
		// plugin that served before it was quarantined. When the supervisor
		// keeps the manifest of a failed start, expect 503 here too.
		r = b.do("GET", "/api/v1/crashy/noop", a.learner, nil)
		requireProblem(t, r, 404, "not-found")
		r = b.do("GET", "/api/v1/probe/noop", a.learner, nil)
		require.Equal(t, 204, r.Status, "%s", r.Raw)

		// It stays quarantined: no more restarts.
		time.Sleep(time.Second)
		r = b.do("GET", "/api/v1/plugins", op, nil)
		require.Equal(t, "quarantined", pluginStatus(r, "crashy")["state"], "%s", r.Raw)

		// The operator fixes plugins.hcl and reloads.
		writePluginsFile(t, file, pluginBlock{variant: probe}, pluginBlock{variant: crashy})
		r = b.do("POST", "/api/v1/plugins/reload", op, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		require.Equal(t, []any{"crashy"}, r.get("restarted"), "%s", r.Raw)
		require.Equal(t, []any{"probe"}, r.get("unchanged"), "%s", r.Raw)
		require.Empty(t, r.get("failed"), "%s", r.Raw)
		st = awaitState(t, b, op, "crashy", "running")
		require.NotZero(t, num(st["pid"]))
		r = b.do("GET", "/api/v1/crashy/noop", a.learner, nil)
		require.Equal(t, 204, r.Status, "%s", r.Raw)
	})

	t.Run("repeated crashes quarantine a serving plugin", func(t *testing.T) {
		t.Parallel()
		b, file := withPlugins(t, pluginBlock{variant: probe})
		op := b.operator()
		a := b.institution("alpha")

		// MaxCrashes is 5 within 2 minutes.
		for i := 1; i <= 5; i++ {
			var pid int
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				st, err := statusOf(b, op, "probe")
				require.NoError(c, err)
				require.Equal(c, "running", st["state"], "status: %v", st)
				pid = num(st["pid"])
			}, eventually, tick, "crash %d", i)
			r := b.do("POST", "/api/v1/probe/crash", a.learner, nil)
			requireProblem(t, r, 502, "plugin-crashed")
			require.Eventually(t, func() bool { return processGone(pid) }, eventually, tick)
			if i < 5 {
				// Wait for the crash to be noticed before the next one.
				require.EventuallyWithT(t, func(c *assert.CollectT) {
					st, err := statusOf(b, op, "probe")
					require.NoError(c, err)
					require.GreaterOrEqual(c, num(st["restarts"]), i, "status: %v", st)
				}, eventually, tick, "restart %d", i)
			}
		}
		st := awaitState(t, b, op, "probe", "quarantined")
		require.Contains(t, st["last_error"], "quarantined after 5 crashes", "status: %v", st)
		r := b.do("GET", "/api/v1/probe/noop", a.learner, nil)
		requireProblem(t, r, 503, "plugin-quarantined")
		requireRetryAfter(t, r)
		r = b.do("GET", "/api/v1/me", a.learner, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)

		// A reload of the unchanged file gives it a fresh start.
		writePluginsFile(t, file, pluginBlock{variant: probe})
		r = b.do("POST", "/api/v1/plugins/reload", op, nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		require.Equal(t, []any{"probe"}, r.get("restarted"), "%s", r.Raw)
		awaitState(t, b, op, "probe", "running")
		r = b.do("GET", "/api/v1/probe/noop", a.learner, nil)
		require.Equal(t, 204, r.Status, "%s", r.Raw)
	})
}

// A request that outlives the plugin's request_timeout answers 504; it
// blocks neither the kernel nor other requests to the plugin.
func TestPluginTimeout(t *testing.T) {
	t.Parallel()
	// The timeout leaves a quick request ample time on a loaded machine
	// (at 300 ms a no-op once ran out).
	b, _ := withPlugins(t, pluginBlock{variant: probe, requestTimeout: "2s"})
	op := b.operator()
	a := b.institution("alpha")

	r := b.do("GET", "/api/v1/probe/sleep?ms=60000", a.learner, nil)
	requireProblem(t, r, 504, "plugin-timeout")
	require.Equal(t, "plugin", r.str("source"))
	require.Contains(t, r.str("detail"), "2s")

	// Keep slow requests in flight while other requests are served.
	stop := make(chan struct{})
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		slow []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := fetch(b.url, "GET", "/api/v1/probe/sleep?ms=60000", a.learner)
			mu.Lock()
			if err != nil {
				slow = append(slow, err.Error())
			} else {
				slow = append(slow, fmt.Sprintf("%d %s", r.Status, r.str("code")))
			}
			mu.Unlock()
		}
	}()
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := statusOf(b, op, "probe")
		require.NoError(c, err)
		require.Equal(c, 1, num(st["in_flight"]), "status: %v", st)
	}, eventually, 5*time.Millisecond, "a slow request is in flight")
	for range 5 {
		r = b.do("GET", "/healthz", "", nil)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		r = b.do("GET", "/api/v1/probe/noop", a.learner, nil)
		require.Equal(t, 204, r.Status, "%s", r.Raw)
	}
	stopLoad()

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, slow)
	for _, s := range slow {
		require.Equal(t, "504 plugin-timeout", s)
	}
	// Timeouts are not crashes.
	st := awaitState(t, b, op, "probe", "running")
	require.Zero(t, num(st["restarts"]), "status: %v", st)
	require.Zero(t, num(st["in_flight"]), "status: %v", st)
}

// A plugin at its max_concurrent_requests answers 503 plugin-busy with a
// Retry-After, and serves again once a slot frees up.
func TestPluginConcurrencyLimit(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe, maxConcurrent: 1, requestTimeout: "60s"})
	op := b.operator()
	a := b.institution("alpha")

	// The slow request is held until the test removes the hold file: it is
	// in flight for as long as the test needs, however slow the machine.
	hold := filepath.Join(t.TempDir(), "hold")
	require.NoError(t, os.WriteFile(hold, nil, 0o600))
	type result struct {
		r   response
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := fetch(b.url, "GET", "/api/v1/probe/sleep?hold="+url.QueryEscape(hold), a.learner)
		done <- result{r, err}
	}()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := statusOf(b, op, "probe")
		require.NoError(c, err)
		require.Equal(c, 1, num(st["in_flight"]), "status: %v", st)
	}, eventually, 5*time.Millisecond, "the slow request is in flight")

	r := b.do("GET", "/api/v1/probe/noop", a.learner, nil)
	requireProblem(t, r, 503, "plugin-busy")
	require.Equal(t, "plugin", r.str("source"))
	requireRetryAfter(t, r)
	require.Contains(t, r.str("detail"), "limit of 1 concurrent")

	require.NoError(t, os.Remove(hold))
	var res result
	select {
	case res = <-done:
	case <-time.After(eventually):
		t.Fatal("the slow request never finished")
	}
	require.NoError(t, res.err)
	require.Equal(t, 200, res.r.Status, "%s", res.r.Raw)
	require.Equal(t, true, res.r.get("held"))

	r = b.do("GET", "/api/v1/probe/noop", a.learner, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	st := awaitState(t, b, op, "probe", "running")
	require.Zero(t, num(st["in_flight"]), "status: %v", st)
}

// Reloading plugins.hcl with a new version of a running plugin switches
// over without failing a single request, and the old process goes away.
func TestPluginUpgradeWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	b, file := withPlugins(t, pluginBlock{variant: probe})
	op := b.operator()
	a := b.institution("alpha")
	v2 := variant{name: "probe", version: "2.0.0"}
	buildPlugin(t, v2) // before the load starts: building takes a while
	before := awaitState(t, b, op, "probe", "running")
	require.Equal(t, "1.0.0", before["version"])
	oldPID := num(before["pid"])

	type answer struct {
		status  int
		version string
		err     error
	}
	const workers = 4
	stop := make(chan struct{})
	answers := make([][]answer, workers)
	// Answers of each version per worker, read while the workers run.
	var fromV1, fromV2 [workers]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := fetch(b.url, "GET", "/api/v1/probe/sleep?ms=20", a.learner)
				answers[w] = append(answers[w], answer{status: r.Status, version: r.str("version"), err: err})
				if err == nil && r.Status != 200 {
					answers[w][len(answers[w])-1].version = string(r.Raw)
				}
				switch r.str("version") {
				case "1.0.0":
					fromV1[w].Add(1)
				case "2.0.0":
					fromV2[w].Add(1)
				}
			}
		}()
	}
	// everyWorker waits until each worker has an answer of a version (no
	// fixed sleep: on a loaded machine 300 ms once passed without one).
	everyWorker := func(counts *[workers]atomic.Int64, version string) {
		t.Helper()
		require.Eventually(t, func() bool {
			for w := range workers {
				if counts[w].Load() == 0 {
					return false
				}
			}
			return true
		}, eventually, tick, "every worker got an answer from %s", version)
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	everyWorker(&fromV1, "1.0.0") // load on v1 first
	writePluginsFile(t, file, pluginBlock{variant: v2})
	r := b.do("POST", "/api/v1/plugins/reload", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"probe"}, r.get("upgraded"), "%s", r.Raw)
	require.Empty(t, r.get("failed"), "%s", r.Raw)
	// Each worker's requests sent after its first answer from v2 go to v2.
	everyWorker(&fromV2, "2.0.0")
	stopLoad()

	total, byVersion := 0, map[string]int{}
	for w, as := range answers {
		require.NotEmpty(t, as, "worker %d sent no request", w)
		for i, an := range as {
			require.NoError(t, an.err, "worker %d request %d", w, i)
			require.Equal(t, 200, an.status, "worker %d request %d failed: %s", w, i, an.version)
			byVersion[an.version]++
			total++
		}
		require.Equal(t, "2.0.0", as[len(as)-1].version, "worker %d ends on the new version", w)
	}
	t.Logf("%d requests during the upgrade, none failed: %v", total, byVersion)
	require.Positive(t, byVersion["1.0.0"], "the old version served before the switch")
	require.Positive(t, byVersion["2.0.0"], "the new version served after the switch")
	require.Len(t, byVersion, 2, "%v", byVersion)

	r = b.do("GET", "/api/v1/plugins", op, nil)
	st := pluginStatus(r, "probe")
	require.Equal(t, "2.0.0", st["version"], "%s", r.Raw)
	require.Equal(t, "running", st["state"], "%s", r.Raw)
	require.NotZero(t, num(st["pid"]))
	require.NotEqual(t, oldPID, num(st["pid"]), "a new process serves")
	require.Zero(t, num(st["restarts"]), "an upgrade is not a restart")
	require.Eventually(t, func() bool { return processGone(oldPID) }, eventually, tick, "the old process %d is stopped", oldPID)
	require.False(t, processGone(num(st["pid"])))
}

// A kernel killed with SIGKILL cannot stop its plugins; they notice and
// exit by themselves. A kernel stopped with SIGTERM stops them.
func TestKernelSIGKILLLeavesNoOrphans(t *testing.T) {
	t.Parallel()
	bin := buildKernel(t)
	for _, tc := range []struct {
		name     string
		signal   os.Signal
		exitCode int // -1: killed
	}{
		{name: "SIGKILL", signal: os.Kill, exitCode: -1},
		{name: "SIGTERM", signal: syscall.SIGTERM, exitCode: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, dbURL := dbtest.NewPool(t)
			file := writePluginsFile(t, "", pluginBlock{variant: probe})
			k := startKernel(t, pool, bin, dbURL, file, "probe")

			kids := childrenOf(k.cmd.Process.Pid)
			require.Len(t, kids, 1, "the kernel runs one plugin process")
			plugin := kids[0]
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", plugin))
			require.NoError(t, err)
			require.Contains(t, filepath.Base(exe), "probe-1.0.0", "the child is the plugin")

			require.NoError(t, k.cmd.Process.Signal(tc.signal))
			select {
			case <-k.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("the kernel did not exit after %s", tc.name)
			}
			require.Equal(t, tc.exitCode, k.cmd.ProcessState.ExitCode(), "kernel exit: %s", k.cmd.ProcessState)

			require.Eventually(t, func() bool { return processGone(plugin) }, eventually, 50*time.Millisecond,
				"plugin process %d outlived the kernel", plugin)
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// syncBuffer collects a subprocess's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reloading plugins.hcl starts added plugins and stops removed ones; an
// invalid file is refused with its line and changes nothing.
func TestPluginReloadAddsAndRemoves(t *testing.T) {
	t.Parallel()
	other := variant{name: "other", version: "1.0.0"}
	b, file := withPlugins(t, pluginBlock{variant: probe})
	op := b.operator()
	a := b.institution("alpha")
	probePID := num(awaitState(t, b, op, "probe", "running")["pid"])
	requireProblem(t, b.do("GET", "/api/v1/other/noop", a.learner, nil), 404, "not-found")

	writePluginsFile(t, file, pluginBlock{variant: probe}, pluginBlock{variant: other})
	r := b.do("POST", "/api/v1/plugins/reload", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"other"}, r.get("started"), "%s", r.Raw)
	require.Equal(t, []any{"probe"}, r.get("unchanged"), "%s", r.Raw)
	require.Empty(t, r.get("removed"), "%s", r.Raw)
	require.Empty(t, r.get("failed"), "%s", r.Raw)
	r = b.do("GET", "/api/v1/other/noop", a.learner, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	r = b.do("GET", "/api/v1/other/echo/3", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "other", r.str("plugin"))
	require.Equal(t, []any{"other.item.read"}, r.get("principal", "Permissions"), "the new plugin's permissions are granted")
	r = b.do("GET", "/api/v1/plugins", op, nil)
	require.Equal(t, probePID, num(pluginStatus(r, "probe")["pid"]), "an unchanged plugin keeps its process")
	doc := b.do("GET", "/api/openapi.json", "", nil)
	require.NotNil(t, doc.get("paths", "/api/v1/other/items", "post"), "the new plugin's routes are documented")

	writePluginsFile(t, file, pluginBlock{variant: other})
	r = b.do("POST", "/api/v1/plugins/reload", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"probe"}, r.get("removed"), "%s", r.Raw)
	require.Equal(t, []any{"other"}, r.get("unchanged"), "%s", r.Raw)
	require.Empty(t, r.get("started"), "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/probe/noop", a.learner, nil), 404, "not-found")
	requireProblem(t, b.do("GET", "/api/v1/probe/public", "", nil), 404, "not-found")
	doc = b.do("GET", "/api/openapi.json", "", nil)
	require.Equal(t, 200, doc.Status)
	require.Nil(t, doc.get("paths", "/api/v1/probe/items"), "a removed plugin's routes leave the document")
	require.NotNil(t, doc.get("paths", "/api/v1/other/items", "post"))
	r = b.do("GET", "/api/v1/plugins", op, nil)
	require.Nil(t, pluginStatus(r, "probe"), "%s", r.Raw)
	require.Len(t, r.items(), 1, "%s", r.Raw)
	otherPID := num(pluginStatus(r, "other")["pid"])
	require.Eventually(t, func() bool { return processGone(probePID) }, eventually, tick, "the removed plugin's process %d is stopped", probePID)

	// An invalid file: the reload is refused with the file and line, and
	// the running plugins are left alone.
	bad := fmt.Sprintf("plugin \"probe\" {\n  path = %q\n  version = \"v1.0.0\"\n}\n", "/nowhere/probe")
	require.NoError(t, os.WriteFile(file, []byte(bad), 0o600))
	r = b.do("POST", "/api/v1/plugins/reload", op, nil)
	requireProblem(t, r, 422, "plugins-config-invalid")
	require.Contains(t, r.str("detail"), file+":3,", "names the file and line of the bad version")
	require.Contains(t, r.str("detail"), `leading "v"`)
	require.Contains(t, r.str("detail"), `"sha256"`, "names the missing attribute")
	r = b.do("GET", "/api/v1/plugins", op, nil)
	require.Len(t, r.items(), 1, "%s", r.Raw)
	st := pluginStatus(r, "other")
	require.Equal(t, "running", st["state"], "%s", r.Raw)
	require.Equal(t, otherPID, num(st["pid"]), "nothing was restarted")
	r = b.do("GET", "/api/v1/other/noop", a.learner, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/probe/noop", a.learner, nil), 404, "not-found")
}
