package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SSEContentType is the media type of Server-Sent Events, a streamed
// route's default (Route.ContentType).
//
// Since: v1.2
const SSEContentType = "text/event-stream"

// SSE writes Server-Sent Events (the WHATWG HTML "text/event-stream"
// format, what a browser's EventSource reads) to a Stream:
//
//	func (p *Plugin) feed(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
//		sub := p.hub.Subscribe(req.Tenant(), req.LastEventID()) // replays what the client missed
//		defer sub.Close()
//		sse := sdk.NewSSE(w)
//		for {
//			select {
//			case <-ctx.Done(): // the client went away, or the stream's time is up
//				return nil
//			case n := <-sub.C:
//				if err := sse.Send(sdk.SSEEvent{ID: n.ID, Event: "notification", Data: n}); err != nil {
//					return err
//				}
//			}
//		}
//	}
//
// Since: v1.2
type SSE struct {
	w *Stream
}

// SSEEvent is one Server-Sent Event.
//
// Since: v1.2
type SSEEvent struct {
	// ID is the event's ID: a client that reconnects sends the last one it
	// received as the Last-Event-ID header (Request.LastEventID). No line
	// breaks or NUL characters.
	ID string
	// Event is the event's type (EventSource's addEventListener name);
	// empty: "message". No line breaks.
	Event string
	// Data is the event's data: a string or []byte sent as it is (each line
	// its own data: field), or any other value encoded as JSON. Nil sends
	// no data, so the client dispatches nothing (an ID or Retry alone).
	Data any
	// Retry, when positive, tells the client how long to wait before
	// reconnecting after the stream ends.
	Retry time.Duration
}

// heartbeat is the comment NewSSE sends on a silent stream.
var heartbeat = []byte(": keep-alive\n\n")

// NewSSE makes w a stream of Server-Sent Events: it sets the Content-Type
// to text/event-stream and Cache-Control to no-cache, sends the status and
// headers at once (a browser's EventSource then fires "open"), and from
// then on sends a comment whenever the stream has been silent for half the
// kernel's idle timeout (at most every 15 s), so that neither the kernel
// nor a proxy in between closes an idle stream. Return the errors that
// should reach the client as problem+json before calling it.
func NewSSE(w *Stream) *SSE {
	_ = w.SetHeader("Content-Type", SSEContentType)
	_ = w.SetHeader("Cache-Control", "no-cache")
	_ = w.Flush()
	w.keepAlive(heartbeat)
	return &SSE{w: w}
}

// Send sends one event and flushes it to the client. It fails when the
// client has gone away, and for an ID or Event with a line break.
func (s *SSE) Send(ev SSEEvent) error {
	b, err := ev.encode()
	if err != nil {
		return err
	}
	return s.w.writeFlush(b)
}

// Comment sends a comment line (": text"), which clients ignore: a
// heartbeat of your own, or padding.
func (s *SSE) Comment(text string) error {
	var b bytes.Buffer
	for _, line := range splitLines(text) {
		b.WriteString(": ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return s.w.writeFlush(b.Bytes())
}

func (ev SSEEvent) encode() ([]byte, error) {
	if strings.ContainsAny(ev.ID, "\r\n\x00") {
		return nil, errors.New("an SSE event ID cannot hold a line break or NUL")
	}
	if strings.ContainsAny(ev.Event, "\r\n") {
		return nil, errors.New("an SSE event type cannot hold a line break")
	}
	var b bytes.Buffer
	if ev.ID != "" {
		b.WriteString("id: " + ev.ID + "\n")
	}
	if ev.Event != "" {
		b.WriteString("event: " + ev.Event + "\n")
	}
	if ev.Retry > 0 {
		b.WriteString("retry: " + strconv.FormatInt(ev.Retry.Milliseconds(), 10) + "\n")
	}
	var data string
	switch d := ev.Data.(type) {
	case nil:
	case string:
		data = d
	case []byte:
		data = string(d)
	case json.RawMessage:
		data = string(d)
	default:
		j, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encoding SSE data: %w", err)
		}
		data = string(j)
	}
	if ev.Data != nil {
		for _, line := range splitLines(data) {
			b.WriteString("data: " + line + "\n")
		}
	}
	if b.Len() == 0 {
		return nil, errors.New("an SSE event needs an ID, an event type, data or a retry")
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// splitLines splits at CRLF, CR and LF, as an SSE parser does.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

// LastEventID is the Last-Event-ID header: the ID of the last Server-Sent
// Event the client received before it reconnected, "" on a first
// connection. Send what came after it.
//
// Since: v1.2
func (r *Request) LastEventID() string { return r.Header.Get("Last-Event-Id") }
