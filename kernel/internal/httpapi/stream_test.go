package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The streaming tests run the test plugin's streamed routes (the feed of
// Server-Sent Events, the generated download, a silent and a failing
// stream: testplugin/stream.go) through a real kernel, and read what a
// client reads. Nothing waits a fixed time: each waits, with a generous
// bound, for what the kernel and the plugin report.
//
// The tests that count the test process's goroutines or measure its memory
// are not parallel: the kernel runs in the test process, and parallel
// tests wait until the sequential ones are done, so nothing else runs
// meanwhile.

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct{ id, event, data string }

// sseStream is an open streamed answer read as Server-Sent Events.
type sseStream struct {
	res *http.Response
	r   *bufio.Reader
}

// openStream sends GET path as token with headers (name, value, ...) on a
// connection of its own and returns the answer once its head has arrived.
func (b *testBundle) openStream(path, token string, headers ...string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.url+path, nil)
	require.NoError(b.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Do(req)
	require.NoError(b.t, err)
	b.t.Cleanup(func() { res.Body.Close() })
	return res
}

func (b *testBundle) openSSE(path, token string, headers ...string) *sseStream {
	b.t.Helper()
	res := b.openStream(path, token, headers...)
	require.Equal(b.t, 200, res.StatusCode)
	require.Equal(b.t, "text/event-stream", res.Header.Get("Content-Type"))
	return &sseStream{res: res, r: bufio.NewReader(res.Body)}
}

// next reads the next event, skipping comments (heartbeats).
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err, "reading the event stream")
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "" && data != nil:
			ev.data = strings.Join(data, "\n")
			return ev
		case line == "" || strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.id = value
			case "event":
				ev.event = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

func (s *sseStream) close() { s.res.Body.Close() }

// metric reads one series of /metrics, 0 when absent.
func (b *testBundle) metric(series string) float64 {
	b.t.Helper()
	r, err := fetch(b.url, "GET", "/metrics", "")
	require.NoError(b.t, err)
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(b.t, err)
			return f
		}
	}
	return 0
}

func openStreams(b *testBundle) float64 {
	return b.metric(`edulure_plugin_streams_open{plugin="probe"}`)
}

func endedStreams(b *testBundle, reason string) float64 {
	return b.metric(fmt.Sprintf(`edulure_plugin_streams_ended_total{plugin="probe",reason=%q}`, reason))
}

// pluginDebug is the test plugin's own account of its process.
type pluginDebug struct {
	Goroutines       int   `json:"goroutines"`
	OpenStreams      int64 `json:"open_streams"`
	HeapLive         int64 `json:"heap_live"`
	DownloadHeapBase int64 `json:"download_heap_base"`
	DownloadHeapPeak int64 `json:"download_heap_peak"`
}

func (b *testBundle) pluginDebug(token string) pluginDebug {
	b.t.Helper()
	r := b.do("GET", "/api/v1/probe/debug", token, nil)
	require.Equal(b.t, 200, r.Status, "%s", r.Raw)
	var d pluginDebug
	require.NoError(b.t, json.Unmarshal(r.Raw, &d))
	return d
}

// streamGoroutines counts the kernel's goroutines serving a stream: the
// HTTP handler piping it, and gRPC's watcher of each streaming call.
func streamGoroutines() (piping, calls int) {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "httpapi.(*Server).streamFromPlugin") {
			piping++
		}
		if strings.Contains(g, "grpc.newClientStreamWithParams") {
			calls++
		}
	}
	return piping, calls
}

// awaitSettled waits until no stream is open in the kernel or the plugin,
// and the goroutines of both are back to their baselines: nothing was left
// behind.
func awaitSettled(t *testing.T, b *testBundle, token string, kernelCalls, pluginGoroutines int) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Zero(c, openStreams(b), "the kernel's open-stream gauge")
		piping, calls := streamGoroutines()
		assert.Zero(c, piping, "kernel goroutines piping a stream")
		assert.LessOrEqual(c, calls, kernelCalls, "kernel goroutines of gRPC streaming calls")
		d := b.pluginDebug(token)
		assert.Zero(c, d.OpenStreams, "the plugin's open stream handlers")
		assert.LessOrEqual(c, d.Goroutines, pluginGoroutines, "the plugin's goroutines")
	}, eventually, tick)
}

// An SSE stream through the kernel: it gets the events posted after it
// opened, in order, with their IDs, as they are posted; when the client
// goes away, the kernel cancels the plugin's handler and nothing of the
// stream is left in either process.
func TestStreamSSEThroughKernel(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	a := b.institution("alpha")
	base := b.pluginDebug(a.learner)
	_, kernelCalls := streamGoroutines()

	s := b.openSSE("/api/v1/probe/feed", a.learner)
	require.Equal(t, "no", s.res.Header.Get("X-Accel-Buffering"), "proxies must not buffer")
	require.Equal(t, "no-cache", s.res.Header.Get("Cache-Control"))
	require.NotEmpty(t, s.res.Header.Get("X-Request-Id"))
	require.Equal(t, float64(1), openStreams(b))

	for _, text := range []string{"one", "two", "three"} {
		r := b.do("POST", "/api/v1/probe/feed", a.instructor, map[string]any{"text": text})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		ev := s.next(t) // posted after the stream opened, and it arrives before the next is posted
		require.Equal(t, "message", ev.event)
		require.Equal(t, strconv.Itoa(int(r.get("id").(float64))), ev.id)
		require.JSONEq(t, string(r.Raw), ev.data)
	}
	// Another institution's feed is its own.
	bt := b.institution("beta")
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/feed", bt.instructor, map[string]any{"text": "theirs"}).Status)
	r := b.do("POST", "/api/v1/probe/feed", a.instructor, map[string]any{"text": "ours"})
	require.Contains(t, s.next(t).data, `"ours"`)
	require.Equal(t, 201, r.Status)

	s.close()
	awaitSettled(t, b, a.learner, kernelCalls, base.Goroutines)
	require.Equal(t, float64(1), endedStreams(b, "client_gone"))
}

// A client that reconnects with Last-Event-ID gets what it missed, then
// what comes next; one the feed cannot read is refused with problem+json
// before the stream begins.
func TestStreamResumesFromLastEventID(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	a := b.institution("alpha")
	var ids []string
	for _, text := range []string{"m1", "m2", "m3"} {
		r := b.do("POST", "/api/v1/probe/feed", a.instructor, map[string]any{"text": text})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		ids = append(ids, strconv.Itoa(int(r.get("id").(float64))))
	}
	s := b.openSSE("/api/v1/probe/feed", a.learner, "Last-Event-ID", ids[0])
	for i, text := range []string{"m2", "m3"} {
		ev := s.next(t)
		require.Equal(t, ids[i+1], ev.id)
		require.Contains(t, ev.data, `"text":"`+text+`"`)
	}
	r := b.do("POST", "/api/v1/probe/feed", a.instructor, map[string]any{"text": "m4"})
	require.Equal(t, 201, r.Status)
	ev := s.next(t)
	require.Contains(t, ev.data, `"text":"m4"`)
	s.close()

	// A first connection gets what comes next; Last-Event-ID 0, all.
	s = b.openSSE("/api/v1/probe/feed", a.learner)
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/feed", a.instructor, map[string]any{"text": "m5"}).Status)
	require.Contains(t, s.next(t).data, `"text":"m5"`)
	s.close()
	s = b.openSSE("/api/v1/probe/feed", a.learner, "Last-Event-ID", "0")
	require.Contains(t, s.next(t).data, `"text":"m1"`)
	s.close()

	res := b.openStream("/api/v1/probe/feed", a.learner, "Last-Event-ID", "not-a-number")
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	requireProblem(t, response{Status: res.StatusCode, Header: res.Header, Raw: raw, Body: decodeMap(t, raw)}, 422, "invalid-request")
}

func decodeMap(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), "%s", raw)
	return m
}

// What a streamed route refuses is refused as from any route, before
// anything is streamed: credentials, the route's declared query, a
// handler's error before its first part. A handler that fails after its
// first part leaves the client a response cut short, never one that looks
// complete. The OpenAPI document gives each streamed route its media type.
func TestStreamErrorsAndDocument(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	a := b.institution("alpha")

	requireProblem(t, b.do("GET", "/api/v1/probe/feed", "", nil), 401, "missing-credentials")
	r := b.do("GET", "/api/v1/probe/stream-fail?when=never", a.learner, nil)
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "when", r.str("errors", "0", "field"))
	r = b.do("GET", "/api/v1/probe/download?size=-1", a.learner, nil)
	requireProblem(t, r, 422, "invalid-request")
	requireProblem(t, b.do("GET", "/api/v1/probe/stream-fail?when=early", a.learner, nil), 409, "conflict")

	res := b.openStream("/api/v1/probe/stream-fail?when=late", a.learner)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "text/plain", res.Header.Get("Content-Type"))
	body, err := io.ReadAll(res.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the response is cut short")
	require.Equal(t, "the beginning\n", string(body))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, float64(1), endedStreams(b, "plugin_error"))
	}, eventually, tick)

	// A small download through the usual client: complete, with its headers.
	r = b.do("GET", "/api/v1/probe/download?size=100000", a.learner, nil)
	require.Equal(t, 200, r.Status)
	require.Equal(t, "application/octet-stream", r.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="probe.bin"`, r.Header.Get("Content-Disposition"))
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	require.Len(t, r.Raw, 100000)
	require.NoError(t, checkBlocks(bytes.NewReader(r.Raw), 100000))

	doc := b.do("GET", "/api/openapi.json", "", nil)
	require.Equal(t, 200, doc.Status)
	feed := doc.get("paths", "/api/v1/probe/feed", "get")
	require.NotNil(t, feed)
	require.Equal(t, true, doc.get("paths", "/api/v1/probe/feed", "get", "x-stream"))
	require.NotNil(t, doc.get("paths", "/api/v1/probe/feed", "get", "responses", "200", "content", "text/event-stream"))
	require.Nil(t, doc.get("paths", "/api/v1/probe/feed", "get", "responses", "200", "content", "application/json"))
	require.Equal(t, "binary", doc.str("paths", "/api/v1/probe/download", "get", "responses", "200", "content", "application/octet-stream", "schema", "format"))
	require.Nil(t, doc.get("paths", "/api/v1/probe/echo/{id}", "get", "x-stream"))
}

// checkBlocks reads the test plugin's download of size bytes and checks
// every byte: block i is 64 KiB of a fixed pattern with i in its first 8
// bytes.
func checkBlocks(r io.Reader, size int64) error {
	const blockSize = 64 << 10
	want := make([]byte, blockSize)
	for i := range want {
		want[i] = byte(i*31 + i>>9)
	}
	got := make([]byte, blockSize)
	for i, left := int64(0), size; left > 0; i++ {
		n := min(left, blockSize)
		if _, err := io.ReadFull(r, got[:n]); err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
		binary.BigEndian.PutUint64(want, uint64(i))
		if !bytes.Equal(got[:n], want[:n]) {
			return fmt.Errorf("block %d differs", i)
		}
		left -= n
	}
	if n, err := r.Read(got[:1]); n != 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("more than %d bytes, or not a clean end: %v", size, err)
	}
	return nil
}

// The caps on open streams: per institution and per plugin, each a 503
// problem+json with Retry-After; a stream that ends frees its place.
func TestStreamCaps(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe, limits: "    max_streams = 3\n    max_streams_per_institution = 2"})
	a, bt := b.institution("alpha"), b.institution("beta")
	busy := func(token string) {
		t.Helper()
		r := b.do("GET", "/api/v1/probe/feed", token, nil)
		requireProblem(t, r, 503, "plugin-streams-busy")
		requireRetryAfter(t, r)
	}
	a1 := b.openSSE("/api/v1/probe/feed", a.learner)
	b.openSSE("/api/v1/probe/feed", a.instructor)
	busy(a.admin) // the institution's 2
	require.Contains(t, b.do("GET", "/api/v1/probe/feed", a.admin, nil).str("detail"), "per institution")
	b.openSSE("/api/v1/probe/feed", bt.learner)
	busy(bt.admin) // the plugin's 3
	require.Contains(t, b.do("GET", "/api/v1/probe/feed", bt.admin, nil).str("detail"), "limit of 3 open streams")
	// Plain requests are not held up by the streams.
	require.Equal(t, 204, b.do("GET", "/api/v1/probe/noop", bt.admin, nil).Status)

	a1.close()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, float64(2), openStreams(b))
	}, eventually, tick)
	b.openSSE("/api/v1/probe/feed", bt.admin)
	busy(a.admin)
}

// A stream the plugin leaves silent for the idle timeout, and one that
// reaches its maximum duration, are ended by the kernel, cut short, and
// counted under their reasons; the plugin's handlers are cancelled.
func TestStreamLimitsEndStreams(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	cases := []struct {
		name, limits, path, reason string
	}{
		{"idle timeout", `    stream_idle_timeout = "2s"`, "/api/v1/probe/silent", "idle_timeout"},
		// The feed says nothing but its heartbeats, which keep it from idling.
		{"max duration", `    stream_idle_timeout = "1h"` + "\n" + `    stream_max_duration = "1s"`, "/api/v1/probe/feed", "max_duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := withPlugins(t, pluginBlock{variant: probe, limits: tc.limits})
			a := b.institution("alpha")
			base := b.pluginDebug(a.learner)
			_, kernelCalls := streamGoroutines()
			res := b.openStream(tc.path, a.learner)
			require.Equal(t, 200, res.StatusCode)
			_, err := io.Copy(io.Discard, res.Body)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the kernel cut the stream short")
			awaitSettled(t, b, a.learner, kernelCalls, base.Goroutines)
			for _, reason := range []string{"idle_timeout", "max_duration", "client_gone", "plugin_error", "complete"} {
				want := 0.0
				if reason == tc.reason {
					want = 1
				}
				require.Equal(t, want, endedStreams(b, reason), reason)
			}
		})
	}
}

// When the kernel shuts down, its HTTP server's drain first ends the open
// streams (which would otherwise hold it up for as long as their limits
// allow) and refuses new ones.
func TestStreamsEndAtShutdown(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	a := b.institution("alpha")
	s := b.openSSE("/api/v1/probe/feed", a.learner)
	b.kernel.Plugins.EndStreams() // what Server.Serve registers with http.Server.RegisterOnShutdown
	_, err := io.Copy(io.Discard, s.res.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, float64(1), endedStreams(b, "plugin_stopped"))
	}, eventually, tick)
	r := b.do("GET", "/api/v1/probe/feed", a.learner, nil)
	requireProblem(t, r, 503, "plugin-unavailable")
	require.Equal(t, 204, b.do("GET", "/api/v1/probe/noop", a.learner, nil).Status, "plain requests drain as before")
}

// heapStats is the test process's memory in use by the Go runtime: the
// heap's live objects and the goroutines' stacks, after a collection.
func heapStats() (heap, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// perStreamBudget is what one open SSE stream may cost the kernel.
const perStreamBudget = 64 << 10

// 1,000 SSE streams held open cost the kernel less than 64 KiB each (heap
// and goroutine stacks; the test's own connections, in the same process,
// are counted too), and are all released when their clients go.
func TestStreamThousandOpenWithinMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 streams")
	}
	// Not parallel: the figures are the process's, so no other test may
	// run meanwhile (parallel tests wait for the sequential ones).
	const n = 1000
	b, _ := withPlugins(t, pluginBlock{variant: probe, limits: "    max_streams = 2000\n    max_streams_per_institution = 2000"})
	a := b.institution("alpha")
	base := b.pluginDebug(a.learner)
	_, kernelCalls := streamGoroutines()
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	request := []byte("GET /api/v1/probe/feed HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + a.learner + "\r\n\r\n")
	// Warm up what the first stream allocates once (pools, caches).
	warm := b.openSSE("/api/v1/probe/feed", a.learner)
	warm.close()
	require.EventuallyWithT(t, func(c *assert.CollectT) { assert.Zero(c, openStreams(b)) }, eventually, tick)
	heap0, stacks0 := heapStats()

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.Dial("tcp", u.Host)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
				if _, err := c.Write(request); err != nil {
					errs <- err
					return
				}
				// The head: the stream is open (NewSSE sends it at once).
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					errs <- err
					return
				}
				if res.StatusCode != 200 {
					errs <- fmt.Errorf("stream %d: %s", i, res.Status)
					return
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	require.Equal(t, float64(n), openStreams(b))
	heap1, stacks1 := heapStats()
	perStream := (int64(heap1+stacks1) - int64(heap0+stacks0)) / n
	d := b.pluginDebug(a.learner)
	t.Logf("%d open SSE streams: kernel (with the test's client connections) +%.1f MiB heap, +%.1f MiB stacks: %.1f KiB per stream (budget %d KiB); plugin: %d stream handlers, %d goroutines, live heap %.1f MiB",
		n, mib(int64(heap1)-int64(heap0)), mib(int64(stacks1)-int64(stacks0)), float64(perStream)/1024, perStreamBudget>>10, d.OpenStreams, d.Goroutines, mib(d.HeapLive))
	require.Less(t, perStream, int64(perStreamBudget))
	require.Equal(t, int64(n), d.OpenStreams)

	for _, c := range conns {
		c.Close()
	}
	awaitSettled(t, b, a.learner, kernelCalls, base.Goroutines)
	require.Equal(t, float64(n+1), endedStreams(b, "client_gone"))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// heapObjects is the heap's objects, live or not yet collected: an upper
// bound of the live heap, read without stopping the world.
func heapObjects() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// downloadBudget bounds how much either process's heap may grow while a
// download of any size passes through.
const downloadBudget = 64 << 20

// A 1 GiB download generated by the plugin passes through the kernel
// whole and intact, in bounded memory on both sides: neither the kernel's
// heap (sampled through the transfer; the test's reading of it included)
// nor the plugin's (its own account) grows by more than 64 MiB.
func TestStreamGigabyteDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	// Not parallel: the figures are the process's (see above).
	const size = 1 << 30
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	a := b.institution("alpha")
	runtime.GC()
	base := heapObjects()
	peak := base
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				peak = max(peak, heapObjects())
			}
		}
	}()
	res := b.openStream("/api/v1/probe/download?size="+strconv.Itoa(size), a.learner)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "chunked", strings.Join(res.TransferEncoding, ","), "streamed, not buffered to learn its length")
	err := checkBlocks(res.Body, size)
	close(done)
	<-sampled
	require.NoError(t, err)
	d := b.pluginDebug(a.learner)
	t.Logf("1 GiB download: kernel heap %.1f → peak %.1f MiB (+%.1f); plugin heap %.1f → peak %.1f MiB (+%.1f); budget +%d MiB each",
		mib(base), mib(peak), mib(peak-base), mib(d.DownloadHeapBase), mib(d.DownloadHeapPeak), mib(d.DownloadHeapPeak-d.DownloadHeapBase), downloadBudget>>20)
	require.Less(t, peak-base, int64(downloadBudget), "the kernel's heap grew")
	require.Positive(t, d.DownloadHeapPeak)
	require.Less(t, d.DownloadHeapPeak-d.DownloadHeapBase, int64(downloadBudget), "the plugin's heap grew")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, float64(1), endedStreams(b, "complete"))
	}, eventually, tick)
}
