package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// The kernel's defaults for streamed routes (plugins.hcl limits), which
// a streamed request carries: its handler's Request.Deadline is
// StreamMaxDuration away, and NewSSE sends a heartbeat after half of
// StreamIdleTimeout of silence. The harness does not end streams itself.
const (
	StreamIdleTimeout = 60 * time.Second
	StreamMaxDuration = time.Hour
)

// StreamWait is how long Stream.Next and NextEvent wait for the next part
// before they fail the test.
var StreamWait = 30 * time.Second

// Stream is a streamed answer being read, as a client of the kernel reads
// it: the status and headers once the first part has arrived (or the
// problem+json answer when the kernel or the handler refused the request
// before that), then the body part by part. Close cancels the handler's
// context, as a client going away does, and waits for the handler to
// return.
//
// Since: v1.2
type Stream struct {
	Status int
	Header http.Header

	t       testing.TB
	parts   chan []byte
	done    chan struct{} // closed when the handler has returned
	cancel  context.CancelFunc
	err     error  // how the answer ended, once done is closed
	pending []byte // of Read
	problem []byte // the body of a refusal, read as the whole body

	// The SSE parser's state: lines received but not yet read, the end of
	// a line split over parts, and the event being read.
	lines     []string
	linesPart []byte
	sse       sseState
	closeOnce sync.Once
}

// ErrCutShort is Stream.Err (and what Read returns, as an HTTP client does:
// io.ErrUnexpectedEOF) when the handler failed after its answer began: the
// kernel cuts the client's response short.
var ErrCutShort = io.ErrUnexpectedEOF

// Stream sends a request for a streamed route as principal p and returns
// the answer once its status and headers have arrived. See StreamRequest.
func (h *Harness) Stream(p sdk.Principal, method, path string) *Stream {
	h.t.Helper()
	return h.StreamRequest(Request{Principal: p, Method: method, Path: path})
}

// StreamRequest sends a request for a streamed route (Route.Stream) as the
// kernel does: every check of DoRequest first, with the same answers (a
// refused request is a Stream that holds the problem+json answer and no
// parts), then the handler runs while the test reads its parts with Next,
// NextEvent or Read. A handler's error before its first part is the
// problem+json answer a Handler's would be. The Stream is closed at the end
// of the test if not before.
//
// Set Header "Last-Event-ID" to test a client that reconnects. A route
// that is not streamed answers in one part.
func (h *Harness) StreamRequest(r Request) *Stream {
	h.t.Helper()
	method := strings.ToUpper(r.Method)
	path, rawQuery, _ := strings.Cut(r.Path, "?")
	body, err := encodeBody(r.Body)
	if err != nil {
		h.t.Fatalf("plugintest: encoding the request body: %v", err)
	}
	requestID := r.RequestID
	if requestID == "" {
		requestID = newUUID()
	}
	rt, params, found := h.match(method, path)
	if found != foundRoute || !rt.Stream {
		return finished(h.t, h.DoRequest(r))
	}
	in, refused := h.prepare(r, rt, params, method, path, rawQuery, body, requestID)
	if refused != nil {
		return finished(h.t, refused)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StreamMaxDuration)
	deadline, _ := ctx.Deadline()
	in.DeadlineUnixMs, in.StreamIdleTimeoutMs = deadline.UnixMilli(), StreamIdleTimeout.Milliseconds()
	s := &Stream{t: h.t, parts: make(chan []byte), done: make(chan struct{}), cancel: cancel}
	heads := make(chan *pluginv1.HTTPResponsePart, 1)
	first, bodyless := true, false
	send := func(part *pluginv1.HTTPResponsePart) error {
		if first {
			first, bodyless = false, wire.Bodyless(wire.StreamStatus(part))
			heads <- &pluginv1.HTTPResponsePart{Status: part.Status, Headers: part.Headers, Error: part.Error}
			if part.Error != nil {
				return nil
			}
		}
		if len(part.Body) == 0 || bodyless {
			return nil
		}
		select { // one part at a time, as flow control holds a plugin back
		case s.parts <- bytes.Clone(part.Body):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	go func() {
		defer close(s.done)
		err := h.rt.HandleHTTPStream(ctx, in, send)
		switch {
		case ctx.Err() != nil:
			s.err = ctx.Err()
		case err != nil:
			h.logger.Warn("stream cut short", "route", in.Route, "request_id", requestID, "error", err)
			s.err = ErrCutShort
		}
		close(heads)
	}()
	h.t.Cleanup(s.Close)
	var head *pluginv1.HTTPResponsePart
	select {
	case head = <-heads:
	case <-time.After(StreamWait):
		h.t.Fatalf("plugintest: %s %s sent no status and headers within %s", method, r.Path, StreamWait)
	}
	if head == nil { // the handler returned without sending: cannot happen with the SDK
		h.t.Fatalf("plugintest: %s %s ended without an answer: %v", method, r.Path, s.err)
	}
	if head.Error != nil {
		s.Close()
		res := h.errorResult(head.Error, path, requestID)
		s.Status, s.Header, s.problem = res.Status, res.Header, res.Body
		return s
	}
	status := wire.StreamStatus(head)
	if !wire.ValidStatus(status) {
		s.Close()
		res := h.invalidStatus(status, path, requestID)
		s.Status, s.Header, s.problem = res.Status, res.Header, res.Body
		return s
	}
	s.Status, s.Header = int(status), wire.StreamHeaders(head)
	if s.Header.Get("Cache-Control") == "" {
		s.Header.Set("Cache-Control", "no-store") // the kernel's default for plugin routes
	}
	return s
}

// finished is a Stream of an answer already complete.
func finished(t testing.TB, res *Result) *Stream {
	s := &Stream{t: t, Status: res.Status, Header: res.Header, problem: res.Body, done: make(chan struct{}), cancel: func() {}}
	close(s.done)
	return s
}

// collect reads a streamed answer whole, for Do: within Timeout, as Do's
// requests have.
func (h *Harness) collect(in *pluginv1.HTTPRequest, path, requestID string) *Result {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	in.DeadlineUnixMs, in.StreamIdleTimeoutMs = deadline.UnixMilli(), StreamIdleTimeout.Milliseconds()
	var head *pluginv1.HTTPResponsePart
	var body bytes.Buffer
	err := h.rt.HandleHTTPStream(ctx, in, func(part *pluginv1.HTTPResponsePart) error {
		if head == nil {
			head = part
		}
		if !wire.Bodyless(wire.StreamStatus(head)) {
			body.Write(part.Body)
		}
		return nil
	})
	switch {
	case head == nil:
		h.t.Errorf("plugintest: %s ended without an answer: %v", in.Route, err)
		return h.invalidStatus(0, path, requestID)
	case head.Error != nil:
		return h.errorResult(head.Error, path, requestID)
	case err != nil && ctx.Err() == nil:
		h.t.Errorf("plugintest: %s: the handler failed after its answer began, so a client gets it cut short (use Stream to test that): %v", in.Route, err)
	}
	status := wire.StreamStatus(head)
	if !wire.ValidStatus(status) {
		return h.invalidStatus(status, path, requestID)
	}
	res := &Result{Status: int(status), Header: wire.StreamHeaders(head), Body: body.Bytes()}
	if res.Header.Get("Cache-Control") == "" {
		res.Header.Set("Cache-Control", "no-store")
	}
	return res
}

// Next returns the next part of the body, as the kernel flushed it to the
// client, and false once the answer has ended. It fails the test when no
// part comes within StreamWait.
func (s *Stream) Next() ([]byte, bool) {
	s.t.Helper()
	if s.problem != nil {
		b := s.problem
		s.problem = nil
		return b, true
	}
	select {
	case b := <-s.parts:
		return b, true
	case <-s.done:
		return nil, false
	case <-time.After(StreamWait):
		s.t.Fatalf("plugintest: no part of the stream within %s", StreamWait)
		return nil, false
	}
}

// Read reads the body as a client of the kernel does: io.EOF at the end of
// a complete answer, ErrCutShort (io.ErrUnexpectedEOF) at the end of one
// the handler failed, and context.Canceled after Close.
func (s *Stream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if s.problem != nil {
			s.pending, s.problem = s.problem, nil
			break
		}
		select {
		case b := <-s.parts:
			s.pending = b
		case <-s.done:
			if s.err != nil {
				return 0, s.err
			}
			return 0, io.EOF
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// Err is how the answer ended, once Next has returned false: nil when the
// handler returned nil, ErrCutShort when it failed after its first part,
// context.Canceled after Close.
func (s *Stream) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close cancels the handler's context, as a client that goes away does,
// and waits until the handler has returned.
func (s *Stream) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
	})
}

// Problem decodes a problem+json answer: the zero Problem otherwise.
func (s *Stream) Problem() Problem {
	if s.Header.Get("Content-Type") != ProblemContentType {
		return Problem{}
	}
	return (&Result{Status: s.Status, Header: s.Header, Body: s.problem}).Problem()
}

// String is the status and headers, for failure messages.
func (s *Stream) String() string {
	out := strconv.Itoa(s.Status) + " " + http.StatusText(s.Status) + " " + s.Header.Get("Content-Type")
	if s.problem != nil {
		out += ": " + string(s.problem)
	}
	return out
}

// SSEEvent is one Server-Sent Event as a client's EventSource dispatches
// it.
//
// Since: v1.2
type SSEEvent struct {
	ID    string // "" when the event set none
	Event string // "message" when the event set none
	Data  string
	Retry time.Duration // 0 when the event set none
}

// JSON decodes the event's data into v, failing the test if it cannot.
func (e SSEEvent) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(e.Data), v); err != nil {
		t.Fatalf("plugintest: decoding the data of SSE event %q as %T: %v\ndata: %s", e.ID, v, err, e.Data)
	}
}

// NextEvent reads the body as Server-Sent Events, as a browser's
// EventSource does, and returns the next event it dispatches (comments
// and heartbeats are skipped), or false once the answer has ended. It
// fails the test when no part comes within StreamWait.
func (s *Stream) NextEvent() (SSEEvent, bool) {
	s.t.Helper()
	for {
		if ev, ok := s.dispatch(); ok {
			return ev, true
		}
		b, ok := s.Next()
		if !ok {
			return SSEEvent{}, false
		}
		s.feed(b)
	}
}

// feed splits received bytes into lines (CRLF, CR or LF).
func (s *Stream) feed(b []byte) {
	buf := append(s.linesPart, b...)
	for {
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			break
		}
		s.lines = append(s.lines, string(buf[:i]))
		if buf[i] == '\r' && i+1 < len(buf) && buf[i+1] == '\n' {
			i++
		}
		buf = buf[i+1:]
	}
	s.linesPart = bytes.Clone(buf)
}

type sseState struct {
	lastID, event string
	data          []string
	hasData       bool
	retry         time.Duration
}

// dispatch reads the lines received up to the one that dispatches an
// event, by the WHATWG HTML event stream rules: the ID persists from event
// to event, a blank line dispatches the event if it has data.
func (s *Stream) dispatch() (SSEEvent, bool) {
	st := &s.sse
	for len(s.lines) > 0 {
		line := s.lines[0]
		s.lines = s.lines[1:]
		if line == "" {
			ev := SSEEvent{ID: st.lastID, Event: st.event, Data: strings.Join(st.data, "\n"), Retry: st.retry}
			has := st.hasData
			st.event, st.data, st.hasData, st.retry = "", nil, false, 0
			if !has {
				continue
			}
			if ev.Event == "" {
				ev.Event = "message"
			}
			return ev, true
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				st.lastID = value
			}
		case "event":
			st.event = value
		case "data":
			st.data, st.hasData = append(st.data, value), true
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil {
				st.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return SSEEvent{}, false
}

var _ io.Reader = (*Stream)(nil)

func (e SSEEvent) String() string {
	return fmt.Sprintf("id=%q event=%q data=%q", e.ID, e.Event, e.Data)
}
