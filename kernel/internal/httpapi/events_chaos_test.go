package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/dbtest"
)

// kernelProcess is a kernel binary serving on addr.
type kernelProcess struct {
	cmd     *exec.Cmd
	logs    *syncBuffer
	addr    string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// wait waits for the process to exit and returns how it ended.
func (k *kernelProcess) wait() error {
	<-k.done
	return k.waitErr
}

func buildKernel(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "edulure")
	build := exec.Command("go", "build", "-o", bin, "./cmd/edulure")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the kernel: %s", out)
	return bin
}

// startKernel runs the kernel binary on a free loopback port and waits
// until an operator sees plugin running. A free port can be taken by
// another process before the kernel binds it: the kernel then exits, and it
// is started again on another port.
func startKernel(t *testing.T, pool *pgxpool.Pool, bin, dbURL, file, plugin string, env ...string) *kernelProcess {
	t.Helper()
	for attempt := 1; ; attempt++ {
		k := &kernelProcess{logs: &syncBuffer{}, addr: freeAddr(t), done: make(chan struct{})}
		k.cmd = exec.Command(bin, "serve")
		k.cmd.Env = append([]string{
			"DATABASE_URL=" + dbURL,
			"EDULURE_SECRET_KEY=" + strings.Repeat("cd", 32),
			"EDULURE_ADDR=" + k.addr,
			"EDULURE_PLUGINS_FILE=" + file,
			"EDULURE_DB_ROLE_PREFIX=" + rolePrefixFor(dbURL),
			"EDULURE_LOG_FORMAT=json",
			"EDULURE_AUTH_RATE_PER_IP=100000",
			"PATH=" + os.Getenv("PATH"),
		}, env...)
		k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
		require.NoError(t, k.cmd.Start())
		go func() { k.waitErr = k.cmd.Wait(); close(k.done) }()
		t.Cleanup(func() { // before the database is dropped
			_ = k.cmd.Process.Kill()
			<-k.done
			if t.Failed() {
				t.Logf("kernel log:\n%s", k.logs.String())
			}
		})
		if awaitKernelReady(t, pool, k, plugin) {
			return k
		}
		require.Contains(t, k.logs.String(), "address already in use", "the kernel exited: %v\n%s", k.waitErr, k.logs.String())
		require.Less(t, attempt, 5, "no free port after %d attempts", attempt)
	}
}

// awaitKernelReady waits until the kernel process is ready and an operator
// sees the plugin running (readiness checks are for operators). It returns
// false if the process exits first.
func awaitKernelReady(t *testing.T, pool *pgxpool.Pool, k *kernelProcess, plugin string) bool {
	t.Helper()
	base := "http://" + k.addr
	exited := func() bool {
		select {
		case <-k.done:
			return true
		default:
			return false
		}
	}
	require.Eventually(t, func() bool {
		if exited() {
			return true
		}
		r, err := fetch(base, "GET", "/readyz", "")
		return err == nil && r.Status == 200
	}, 60*time.Second, 100*time.Millisecond, "the kernel never got ready")
	if exited() {
		return false
	}
	ctx := context.Background()
	const email = "ready-op@platform.test"
	var exists bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM kernel.users WHERE email = $1)", email).Scan(&exists))
	if !exists {
		_, err := app.CreateUser(ctx, pool, app.UserSpec{Email: email, Name: "Op", Password: password, Operator: true})
		require.NoError(t, err)
	}
	op := (&testBundle{t: t, url: base, pool: pool, allow5xx: true}).login(email, "")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r, err := fetch(base, "GET", "/readyz", op)
		require.NoError(c, err)
		require.Equal(c, "running", r.str("checks", "plugin:"+plugin), "%s", r.Raw)
	}, 60*time.Second, 100*time.Millisecond, "plugin %s never ran", plugin)
	return true
}

// SIGKILL the kernel while thousands of events are being published and
// delivered; after a restart every committed event reaches the subscriber,
// and none of a rolled-back transaction does.
func TestEventsSurviveKernelSIGKILL(t *testing.T) {
	t.Parallel()
	bin := buildKernel(t)
	pool, dbURL := dbtest.NewPool(t)
	file := writePluginsFile(t, "", pluginBlock{variant: probe}, pluginBlock{variant: sink})
	events := []string{"EDULURE_LOG_LEVEL=warn", "EDULURE_EVENTS_BACKOFF=20ms", "EDULURE_EVENTS_BACKOFF_MAX=200ms"}
	k := startKernel(t, pool, bin, dbURL, file, "sink", events...)

	ctx := context.Background()
	_, err := app.CreateTenant(ctx, pool, "alpha", "Alpha")
	require.NoError(t, err)
	_, err = app.CreateUser(ctx, pool, app.UserSpec{Email: "i@alpha.test", Name: "I", Password: password, Tenant: "alpha", Roles: []string{"instructor"}})
	require.NoError(t, err)
	bb := &testBundle{t: t, url: "http://" + k.addr, pool: pool, allow5xx: true}
	tok := bb.login("i@alpha.test", "alpha")

	// Publishers: batches of 50 committed, and batches rolled back.
	var committed, stop atomic.Bool
	var wg sync.WaitGroup
	var okBatches atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				path := "/api/v1/probe/publish?n=50"
				if (w+i)%4 == 0 {
					path += "&rollback=1"
				}
				r, err := fetch(bb.url, "POST", path, tok)
				if err == nil && r.Status == 200 {
					okBatches.Add(1)
					committed.Store(true)
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return okBatches.Load() >= 20 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, k.cmd.Process.Signal(syscall.SIGKILL))
	_ = k.wait()
	stop.Store(true)
	wg.Wait()
	require.True(t, committed.Load())
	t.Logf("killed the kernel after %d committed batches", okBatches.Load())

	startKernel(t, pool, bin, dbURL, file, "sink", events...)
	// Every committed ping (in the event log or still in the outbox) reaches sink.
	var published int
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var inOutbox, logged, received int
		require.NoError(c, pool.QueryRow(ctx, "SELECT count(*) FROM plugin_probe.edulure_outbox").Scan(&inOutbox))
		require.NoError(c, pool.QueryRow(ctx, "SELECT count(*) FROM kernel.events WHERE type = 'probe.ping.sent.v1'").Scan(&logged))
		require.NoError(c, pool.QueryRow(ctx, `SELECT count(*) FROM plugin_sink.received r JOIN kernel.events e ON e.id = r.event_id WHERE e.type = 'probe.ping.sent.v1'`).Scan(&received))
		assert.Equal(c, 0, inOutbox)
		assert.Equal(c, logged, received)
		published = logged
	}, 60*time.Second, 100*time.Millisecond)
	require.GreaterOrEqual(t, published, 1000, "thousands of events were in flight")
	require.Zero(t, published%50, "whole transactions only: %d events", published)
	require.GreaterOrEqual(t, int64(published/50), okBatches.Load(), "every acknowledged batch was delivered")
	var stray int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM plugin_sink.received r LEFT JOIN kernel.events e ON e.id = r.event_id WHERE e.id IS NULL`).Scan(&stray))
	require.Zero(t, stray, "nothing delivered that was not committed")
	t.Logf("%d events delivered after the kill and restart", published)
}

// SIGKILL a subscribing plugin mid-delivery: it is restarted and the
// deliveries complete.
func TestEventsSurvivePluginSIGKILL(t *testing.T) {
	t.Parallel()
	// The sink handles 50 events, then holds every further one while the
	// hold file exists: the kill lands mid-delivery however slow the
	// machine (a 5 ms sleep per event once let all 1,000 through first).
	hold := filepath.Join(t.TempDir(), "hold")
	require.NoError(t, os.WriteFile(hold, nil, 0o600))
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink, config: fmt.Sprintf(`{ hold_events_file = %q, hold_events_after = 50 }`, hold)})
	a := b.institution("alpha")
	for range 10 {
		require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=100", a.instructor, nil).Status)
	}
	op := b.operator()
	require.Eventually(t, func() bool {
		return b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'") >= 50
	}, eventually, 5*time.Millisecond)
	st, err := statusOf(b, op, "sink")
	require.NoError(t, err)
	pid := num(st["pid"])
	require.NotZero(t, pid, "%v", st)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.NoError(t, os.Remove(hold))
	before := b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'")
	require.Equal(t, 50, before, "killed mid-delivery")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1000, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
	}, eventually, 20*time.Millisecond)
	st, err = statusOf(b, op, "sink")
	require.NoError(t, err)
	require.GreaterOrEqual(t, num(st["restarts"]), 1, "%v", st)
	// The last batch's handlers may have committed a moment before the
	// kernel records their deliveries.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 0, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'sink' AND status <> 'delivered' AND type = 'probe.ping.sent.v1'"))
	}, 30*time.Second, 20*time.Millisecond)
	t.Log(fmt.Sprintf("killed sink after %d of 1000 deliveries; all completed after its restart", before))
}
