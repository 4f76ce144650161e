package sdk

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// StreamHandler serves a streamed route (Route.Stream): it writes the
// answer to w as it makes it, and the kernel passes each part on to the
// client at once. Server-Sent Events (NewSSE) and large downloads are
// written this way:
//
//	func (p *Plugin) export(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
//		rows, err := p.openExport(ctx, req) // errors here are problem+json
//		if err != nil {
//			return err
//		}
//		w.SetHeader("Content-Disposition", `attachment; filename="export.csv"`)
//		for rows.Next() {
//			if _, err := w.Write(rows.CSVLine()); err != nil {
//				return err // the client went away
//			}
//		}
//		return rows.Err()
//	}
//
// The context ends when the client goes away, when the stream has been
// silent for the kernel's idle timeout, or at its maximum duration
// (Request.Deadline); plugins.hcl sets both. An error returned before
// anything was sent becomes the client's problem+json answer, as from a
// Handler; after that, the client's response is cut short so that it
// cannot pass for a complete one, and the error goes to the plugin's log.
//
// Since: v1.2
type StreamHandler func(ctx context.Context, req *Request, w *Stream) error

// streamChunk is the most body a Stream holds before sending it: the size
// of one part on the wire.
const streamChunk = 64 << 10

// Stream is the answer of a streamed route, sent in parts as it is
// written. Headers and status go out with the first part: set them before
// the first Flush (or before Write has filled a part). Write buffers up to
// 64 KiB and sends full parts; Flush sends what is buffered now. Its
// methods are safe for concurrent use.
//
// Since: v1.2
type Stream struct {
	mu      sync.Mutex
	send    func(*pluginv1.HTTPResponsePart) error
	header  http.Header
	status  int
	started bool // the first part went out
	closed  bool // the handler returned: nothing more goes out
	buf     []byte
	err     error // the first failed send: the kernel or the client is gone

	idle      time.Duration // the kernel's idle timeout; 0: unknown
	lastSent  time.Time
	heartbeat *time.Timer
	beat      []byte // what a heartbeat sends (SSE: a comment)
}

func newStream(send func(*pluginv1.HTTPResponsePart) error, contentType string, idle time.Duration) *Stream {
	return &Stream{send: send, header: http.Header{"Content-Type": {contentType}}, idle: idle}
}

// ErrStreamStarted is returned by SetHeader and WriteHeader once the
// answer's first part has gone out.
//
// Since: v1.2
var ErrStreamStarted = errors.New("the stream's status and headers were already sent")

// SetHeader sets a response header (the kernel passes on the headers of
// Response, such as Content-Type, Content-Disposition, Cache-Control). The
// Content-Type is Route.ContentType unless set here.
func (w *Stream) SetHeader(name, value string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return ErrStreamStarted
	}
	w.header.Set(name, value)
	return nil
}

// WriteHeader sends the status (200 unless called) and headers now,
// before any of the body: the client learns that the answer has begun.
// Errors are better returned by the handler than sent as a status.
func (w *Stream) WriteHeader(status int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return ErrStreamStarted
	}
	w.status = status
	return w.flushLocked()
}

// Write appends p to the body, sending a part each time 64 KiB are
// buffered. It fails once the client has gone away (the handler's context
// ends too) or the handler has returned.
func (w *Stream) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(w.buf)+len(p) >= streamChunk {
		if len(w.buf) == 0 { // a whole part straight from p
			if err := w.sendLocked(p[:streamChunk]); err != nil {
				return n - len(p), err
			}
			p = p[streamChunk:]
			continue
		}
		k := streamChunk - len(w.buf)
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if err := w.flushLocked(); err != nil {
			return n - len(p), err
		}
	}
	w.buf = append(w.buf, p...)
	return n, nil
}

// Flush sends the status and headers, if not yet sent, and whatever the
// body holds now.
func (w *Stream) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.flushLocked()
}

// writeFlush writes p and flushes, at once: an SSE event goes out whole.
func (w *Stream) writeFlush(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if len(w.buf)+len(p) > streamChunk {
		if err := w.flushLocked(); err != nil {
			return err
		}
		if len(p) > streamChunk {
			return w.sendLocked(p)
		}
	}
	w.buf = append(w.buf, p...)
	return w.flushLocked()
}

func (w *Stream) usable() error {
	switch {
	case w.err != nil:
		return w.err
	case w.closed:
		return errors.New("the stream's handler has returned")
	}
	return nil
}

func (w *Stream) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.started && len(w.buf) == 0 {
		return nil
	}
	err := w.sendLocked(w.buf)
	w.buf = w.buf[:0]
	return err
}

// sendLocked sends one part: the head with the first.
func (w *Stream) sendLocked(body []byte) error {
	part := &pluginv1.HTTPResponsePart{Body: body}
	if !w.started {
		part.Status = int32(w.status)
		if part.Status == 0 {
			part.Status = http.StatusOK
		}
		part.Headers = make(map[string]*pluginv1.Values, len(w.header))
		for k, v := range w.header {
			part.Headers[k] = &pluginv1.Values{Values: v}
		}
		w.started = true
	}
	if err := w.send(part); err != nil {
		w.err = err
		return err
	}
	w.lastSent = time.Now()
	return nil
}

// keepAlive sends beat whenever the stream has been silent for a while
// (half the kernel's idle timeout, at most 15 s), until the handler
// returns.
func (w *Stream) keepAlive(beat []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.heartbeat != nil || w.closed {
		return
	}
	w.beat = beat
	w.heartbeat = time.AfterFunc(w.heartbeatEvery(), w.onHeartbeat)
}

func (w *Stream) heartbeatEvery() time.Duration {
	every := 15 * time.Second
	if w.idle > 0 && w.idle/2 < every {
		every = max(w.idle/2, 50*time.Millisecond)
	}
	return every
}

func (w *Stream) onHeartbeat() {
	w.mu.Lock() // after a write under way, if any: then the stream is not silent
	defer w.mu.Unlock()
	every := w.heartbeatEvery()
	if w.closed || w.err != nil {
		return
	}
	if len(w.buf) > 0 { // part of something written but not flushed: not in its middle
		w.heartbeat.Reset(every)
		return
	}
	if quiet := time.Since(w.lastSent); quiet < every {
		w.heartbeat.Reset(every - quiet)
		return
	}
	w.buf = append(w.buf, w.beat...)
	if w.flushLocked() == nil {
		w.heartbeat.Reset(every)
	}
}

// finish ends the stream after its handler returned: it stops the
// heartbeat and, when the handler succeeded, sends what is left (the head
// of an answer that sent nothing). It reports whether anything went out.
func (w *Stream) finish(handlerErr error) (started bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.heartbeat != nil {
		w.heartbeat.Stop()
	}
	if handlerErr == nil && w.err == nil {
		err = w.flushLocked()
	}
	w.closed = true
	return w.started, err
}
