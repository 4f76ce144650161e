package main

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/edulure/edulure/sdk"
)

// The streamed routes: a feed of Server-Sent Events fed by POST /feed (an
// in-process broadcaster that keeps what it sent, for Last-Event-ID), a
// generated download of any size, a stream that says nothing, one that
// fails, and GET /debug with the process's goroutines, open stream
// handlers and heap, for the tests that show nothing is left behind.

func (p *probe) streamRoutes(base, read, write string) []sdk.Route {
	return []sdk.Route{
		{Method: http.MethodGet, Path: base + "/feed", Permission: read, Summary: "Server-Sent Events of the messages posted to the feed", Stream: counted(p.feed)},
		{Method: http.MethodPost, Path: base + "/feed", Permission: write, Summary: "Post a message to the feed",
			Request: feedPost{}, Response: feedMessage{}, Status: http.StatusCreated, Handler: p.post},
		{Method: http.MethodGet, Path: base + "/download", Permission: read, Summary: "A generated download of ?size= bytes",
			Query: downloadQuery{}, ContentType: "application/octet-stream", Stream: counted(download)},
		{Method: http.MethodGet, Path: base + "/silent", Permission: read, Summary: "Begin an answer, then send nothing", ContentType: "text/plain", Stream: counted(silent)},
		{Method: http.MethodGet, Path: base + "/stream-fail", Permission: read, Summary: "Fail ?when=early (before the first part) or late",
			Query: failQuery{}, ContentType: "text/plain", Stream: counted(streamFail)},
		{Method: http.MethodGet, Path: base + "/debug", Permission: read, Summary: "The process's goroutines, open stream handlers and heap", Response: debugInfo{}, Handler: debug},
	}
}

type (
	feedPost struct {
		Text string `json:"text" minLength:"1" maxLength:"1000"`
	}
	feedMessage struct {
		ID   int64  `json:"id"`
		Text string `json:"text"`
	}
	downloadQuery struct {
		Size int64 `query:"size" minimum:"0" maximum:"4294967296"`
	}
	failQuery struct {
		When string `query:"when" enum:"early,late"`
	}
	debugInfo struct {
		Goroutines  int   `json:"goroutines"`
		OpenStreams int64 `json:"open_streams"`
		HeapLive    int64 `json:"heap_live"` // objects, live or not yet collected
		// Of the last download: the heap when it began and the most it
		// reached while it ran.
		DownloadHeapBase int64 `json:"download_heap_base"`
		DownloadHeapPeak int64 `json:"download_heap_peak"`
	}
)

// openStreams counts the stream handlers running.
var openStreams atomic.Int64

func counted(h sdk.StreamHandler) sdk.StreamHandler {
	return func(ctx context.Context, r *sdk.Request, w *sdk.Stream) error {
		openStreams.Add(1)
		defer openStreams.Add(-1)
		return h(ctx, r, w)
	}
}

// hub is the feed: each institution's messages, numbered, and the feeds
// listening.
type hub struct {
	mu   sync.Mutex
	last int64
	log  map[string][]feedMessage // by institution
	subs map[string]map[chan feedMessage]struct{}
}

var feeds = &hub{log: map[string][]feedMessage{}, subs: map[string]map[chan feedMessage]struct{}{}}

// subscribe returns the messages after lastID (none when resume is
// false: a first connection gets what comes next) and a channel of those
// to come, atomically: none is missed or sent twice.
func (h *hub) subscribe(tenant string, lastID int64, resume bool) ([]feedMessage, chan feedMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var missed []feedMessage
	for _, m := range h.log[tenant] {
		if resume && m.ID > lastID {
			missed = append(missed, m)
		}
	}
	ch := make(chan feedMessage, 64)
	if h.subs[tenant] == nil {
		h.subs[tenant] = map[chan feedMessage]struct{}{}
	}
	h.subs[tenant][ch] = struct{}{}
	return missed, ch
}

func (h *hub) unsubscribe(tenant string, ch chan feedMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[tenant], ch)
}

// publish numbers a message and hands it to every feed of the
// institution; a feed too far behind is closed (its client reconnects with
// Last-Event-ID).
func (h *hub) publish(tenant, text string) feedMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last++
	m := feedMessage{ID: h.last, Text: text}
	h.log[tenant] = append(h.log[tenant], m)
	for ch := range h.subs[tenant] {
		select {
		case ch <- m:
		default:
			close(ch)
			delete(h.subs[tenant], ch)
		}
	}
	return m
}

func (p *probe) post(_ context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in feedPost
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, feeds.publish(r.Tenant(), in.Text))
}

func (p *probe) feed(ctx context.Context, r *sdk.Request, w *sdk.Stream) error {
	var last int64
	id := r.LastEventID()
	if id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return sdk.Invalid(sdk.FieldError{Field: "Last-Event-ID", Message: "must be the ID of an event of this feed"})
		}
		last = n
	}
	missed, ch := feeds.subscribe(r.Tenant(), last, id != "")
	defer feeds.unsubscribe(r.Tenant(), ch)
	sse := sdk.NewSSE(w)
	send := func(m feedMessage) error {
		return sse.Send(sdk.SSEEvent{ID: strconv.FormatInt(m.ID, 10), Event: "message", Data: m})
	}
	for _, m := range missed {
		if err := send(m); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return errors.New("the feed fell too far behind")
			}
			if err := send(m); err != nil {
				return err
			}
		}
	}
}

// blockSize is the download's unit: block i is 64 KiB of a fixed pattern
// with i in its first 8 bytes (big-endian), so that a test can check every
// byte, and the order, without holding the download.
const blockSize = 64 << 10

var pattern = func() []byte {
	b := make([]byte, blockSize)
	for i := range b {
		b[i] = byte(i*31 + i>>9)
	}
	return b
}()

var downloadBase, downloadPeak atomic.Int64

func download(ctx context.Context, r *sdk.Request, w *sdk.Stream) error {
	q, err := sdk.Query[downloadQuery](r)
	if err != nil {
		return err
	}
	_ = w.SetHeader("Content-Disposition", `attachment; filename="probe.bin"`)
	base := heapLive()
	downloadBase.Store(base)
	downloadPeak.Store(base)
	block := make([]byte, blockSize)
	copy(block, pattern)
	for i, left := int64(0), q.Size; left > 0; i++ {
		binary.BigEndian.PutUint64(block, uint64(i))
		n := min(left, blockSize)
		if _, err := w.Write(block[:n]); err != nil {
			return err
		}
		left -= n
		if i%16 == 0 { // every MiB
			if live := heapLive(); live > downloadPeak.Load() {
				downloadPeak.Store(live)
			}
		}
	}
	return nil
}

func silent(ctx context.Context, _ *sdk.Request, w *sdk.Stream) error {
	if err := w.WriteHeader(http.StatusOK); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func streamFail(_ context.Context, r *sdk.Request, w *sdk.Stream) error {
	q, err := sdk.Query[failQuery](r)
	if err != nil {
		return err
	}
	if q.When == "early" {
		return sdk.Errorf(sdk.ErrConflict, "failed before the first byte, on purpose")
	}
	if _, err := w.Write([]byte("the beginning\n")); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return errors.New("failed after the first part, on purpose")
}

func debug(context.Context, *sdk.Request) (*sdk.Response, error) {
	return sdk.JSON(http.StatusOK, debugInfo{
		Goroutines: runtime.NumGoroutine(), OpenStreams: openStreams.Load(), HeapLive: heapLive(),
		DownloadHeapBase: downloadBase.Load(), DownloadHeapPeak: downloadPeak.Load(),
	})
}

// heapLive is the heap's objects, live or not yet collected: an upper
// bound of the live heap.
func heapLive() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
