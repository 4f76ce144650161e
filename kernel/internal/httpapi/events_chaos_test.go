package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/dbtest"
)

// kernelProcess is a kernel binary serving on addr.
type kernelProcess struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	addr string
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

func startKernel(t *testing.T, bin, dbURL, file, addr string) *kernelProcess {
	t.Helper()
	k := &kernelProcess{logs: &syncBuffer{}, addr: addr}
	k.cmd = exec.Command(bin, "serve")
	k.cmd.Env = []string{
		"DATABASE_URL=" + dbURL,
		"EDULURE_SECRET_KEY=" + strings.Repeat("cd", 32),
		"EDULURE_ADDR=" + addr,
		"EDULURE_PLUGINS_FILE=" + file,
		"EDULURE_DB_ROLE_PREFIX=" + rolePrefixFor(dbURL),
		"EDULURE_LOG_FORMAT=json",
		"EDULURE_LOG_LEVEL=warn",
		"EDULURE_AUTH_RATE_PER_IP=100000",
		"EDULURE_EVENTS_BACKOFF=20ms",
		"EDULURE_EVENTS_BACKOFF_MAX=200ms",
		"PATH=" + os.Getenv("PATH"),
	}
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	require.NoError(t, k.cmd.Start())
	t.Cleanup(func() {
		_ = k.cmd.Process.Kill()
		_ = k.cmd.Wait()
		if t.Failed() {
			t.Logf("kernel log:\n%s", k.logs.String())
		}
	})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := http.Get("http://" + addr + "/readyz")
		require.NoError(c, err)
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		require.Equal(c, 200, res.StatusCode, "%s", body)
		require.Contains(c, string(body), `"plugin:sink":"running"`)
	}, 60*time.Second, 100*time.Millisecond, "the kernel never got ready")
	return k
}

// SIGKILL the kernel while thousands of events are being published and
// delivered; after a restart every committed event reaches the subscriber,
// and none of a rolled-back transaction does.
func TestEventsSurviveKernelSIGKILL(t *testing.T) {
	t.Parallel()
	bin := buildKernel(t)
	pool, dbURL := dbtest.NewPool(t)
	file := writePluginsFile(t, "", pluginBlock{variant: probe}, pluginBlock{variant: sink})
	addr := freeAddr(t)
	k := startKernel(t, bin, dbURL, file, addr)

	ctx := context.Background()
	_, err := app.CreateTenant(ctx, pool, "alpha", "Alpha")
	require.NoError(t, err)
	_, err = app.CreateUser(ctx, pool, app.UserSpec{Email: "i@alpha.test", Name: "I", Password: password, Tenant: "alpha", Roles: []string{"instructor"}})
	require.NoError(t, err)
	bb := &testBundle{t: t, url: "http://" + addr, pool: pool, allow5xx: true}
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
	_ = k.cmd.Wait()
	stop.Store(true)
	wg.Wait()
	require.True(t, committed.Load())
	t.Logf("killed the kernel after %d committed batches", okBatches.Load())

	startKernel(t, bin, dbURL, file, addr)
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
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink, config: `{ slow_events_ms = 5 }`})
	a := b.institution("alpha")
	for range 10 {
		require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=100", a.instructor, nil).Status)
	}
	op := b.operator()
	require.Eventually(t, func() bool {
		return b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'") >= 50
	}, 10*time.Second, 5*time.Millisecond)
	st, err := statusOf(b, op, "sink")
	require.NoError(t, err)
	pid := num(st["pid"])
	require.NotZero(t, pid, "%v", st)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	before := b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'")
	require.Less(t, before, 1000, "killed mid-delivery")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1000, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
	}, 30*time.Second, 20*time.Millisecond)
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
