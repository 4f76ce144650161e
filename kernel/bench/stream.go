package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// streamRows holds 1,000 Server-Sent Event streams open through the kernel
// (the probe plugin's feed, each on a connection of its own) and measures
// what they cost the kernel: its Go heap and goroutine stacks after a
// collection, before and after. The row is streams per MB; the target,
// at least 16, is 64 KiB per stream.
func (e *env) streamRows() ([]Row, error) {
	n := 1000
	if e.opts.Smoke {
		n = 200 // enough to stand out of the heap's noise
	}
	host := strings.TrimPrefix(e.url, "http://")
	request := []byte("GET /api/v1/probe/feed HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + e.tokens["learner"] + "\r\n\r\n")
	open := func() (net.Conn, error) {
		c, err := net.Dial("tcp", host)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(request); err != nil {
			c.Close()
			return nil, err
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil) // the head: the stream is open
		if err == nil && res.StatusCode != 200 {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
			err = fmt.Errorf("GET /api/v1/probe/feed: %s %s", res.Status, body)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	// One stream first, so that what the first one sets up once is not
	// counted.
	c, err := open()
	if err != nil {
		return nil, err
	}
	c.Close()
	if err := e.awaitOpenStreams(0); err != nil {
		return nil, err
	}
	mem0, err := e.kernelMemory()
	if err != nil {
		return nil, err
	}
	rss0, _ := rssMB(e.kernel.pid())

	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		_ = e.awaitOpenStreams(0)
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := open()
				mu.Lock()
				conns[i] = c
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := e.awaitOpenStreams(n); err != nil {
		return nil, err
	}
	mem1, err := e.kernelMemory()
	if err != nil {
		return nil, err
	}
	rss1, _ := rssMB(e.kernel.pid())
	mb := (mem1 - mem0) / (1 << 20)
	r := row("mem.sse_streams_per_mb", float64(n)/mb, "streams/MB", "", 0, atLeast(16))
	r.Note = fmt.Sprintf("%d open SSE streams took %.1f MB of the kernel's Go heap and stacks (%.1f KiB each; target ≤ 64 KiB); its resident memory went from %.1f to %.1f MB",
		n, mb, (mem1-mem0)/1024/float64(n), rss0, rss1)
	return []Row{r}, nil
}

// kernelMemory is the kernel's live Go heap and goroutine stacks in bytes,
// after a garbage collection (asked for through its profile server).
func (e *env) kernelMemory() (float64, error) {
	res, err := http.Get("http://" + e.pprof + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	heap, err := e.metric("go_memstats_heap_alloc_bytes")
	if err != nil {
		return 0, err
	}
	stacks, err := e.metric("go_memstats_stack_inuse_bytes")
	return heap + stacks, err
}

// metric reads one series of the kernel's /metrics.
func (e *env) metric(series string) (float64, error) {
	body, err := e.fetch("/metrics", "", 200)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", series)
}

// awaitOpenStreams waits until the kernel reports n open streams of the
// probe plugin.
func (e *env) awaitOpenStreams(n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := e.metric(`edulure_plugin_streams_open{plugin="probe"}`)
		if err == nil && int(v) == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the kernel reports %v open streams, not %d (%v)", v, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
