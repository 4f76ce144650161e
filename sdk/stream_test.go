package sdk

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// parts records what a Stream sends.
type parts struct {
	mu   sync.Mutex
	got  []*pluginv1.HTTPResponsePart
	fail error
}

func (p *parts) send(part *pluginv1.HTTPResponsePart) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	// The body may be the Stream's buffer: keep a copy, as gRPC's encoding does.
	p.got = append(p.got, &pluginv1.HTTPResponsePart{Status: part.Status, Headers: part.Headers, Body: bytes.Clone(part.Body), Error: part.Error})
	return nil
}

func (p *parts) all() []*pluginv1.HTTPResponsePart {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pluginv1.HTTPResponsePart(nil), p.got...)
}

func (p *parts) body() string {
	var b strings.Builder
	for _, part := range p.all() {
		b.Write(part.Body)
	}
	return b.String()
}

// The head goes out with the first part, once; Write sends whole parts of
// 64 KiB and keeps the rest until Flush; headers cannot change afterwards.
func TestStreamParts(t *testing.T) {
	var p parts
	w := newStream(p.send, "text/csv", 0)
	require.NoError(t, w.SetHeader("Content-Disposition", "attachment"))
	n, err := w.Write([]byte("a,b\n"))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Empty(t, p.all(), "small writes wait for Flush")
	require.NoError(t, w.Flush())
	got := p.all()
	require.Len(t, got, 1)
	require.Equal(t, int32(200), got[0].Status)
	require.Equal(t, []string{"text/csv"}, got[0].Headers["Content-Type"].Values)
	require.Equal(t, []string{"attachment"}, got[0].Headers["Content-Disposition"].Values)
	require.ErrorIs(t, w.SetHeader("X", "y"), ErrStreamStarted)
	require.ErrorIs(t, w.WriteHeader(201), ErrStreamStarted)

	big := bytes.Repeat([]byte("x"), 3*streamChunk+10)
	n, err = w.Write(big)
	require.NoError(t, err)
	require.Equal(t, len(big), n)
	got = p.all()
	require.Len(t, got, 4, "three whole parts sent, 14 bytes kept")
	for _, part := range got[1:] {
		require.Len(t, part.Body, streamChunk)
		require.Zero(t, part.Status, "the head goes once")
	}
	started, err := w.finish(nil)
	require.NoError(t, err)
	require.True(t, started)
	require.Equal(t, "a,b\n"+string(big), p.body())
	_, err = w.Write([]byte("late"))
	require.Error(t, err, "nothing goes out after the handler returned")
}

// A handler that writes nothing still answers: its status and headers.
func TestStreamWithoutBody(t *testing.T) {
	var p parts
	w := newStream(p.send, SSEContentType, 0)
	require.NoError(t, w.WriteHeader(202))
	started, err := w.finish(nil)
	require.NoError(t, err)
	require.True(t, started)
	require.Len(t, p.all(), 1)
	require.Equal(t, int32(202), p.all()[0].Status)

	var q parts
	w = newStream(q.send, SSEContentType, 0)
	started, err = w.finish(nil)
	require.NoError(t, err)
	require.True(t, started)
	require.Equal(t, int32(200), q.all()[0].Status)
}

// Once a send fails (the kernel or client went away), every write fails.
func TestStreamSendFailure(t *testing.T) {
	p := parts{fail: errors.New("gone")}
	w := newStream(p.send, SSEContentType, 0)
	_, err := w.Write([]byte("x"))
	require.NoError(t, err)
	require.EqualError(t, w.Flush(), "gone")
	_, err = w.Write([]byte("y"))
	require.EqualError(t, err, "gone")
}

func TestSSEEncoding(t *testing.T) {
	tests := []struct {
		name string
		ev   SSEEvent
		want string
		err  string
	}{
		{name: "text", ev: SSEEvent{ID: "7", Event: "note", Data: "hello"}, want: "id: 7\nevent: note\ndata: hello\n\n"},
		{name: "lines", ev: SSEEvent{Data: "a\nb\r\nc\rd"}, want: "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{name: "json", ev: SSEEvent{ID: "1", Data: map[string]int{"n": 1}}, want: "id: 1\ndata: {\"n\":1}\n\n"},
		{name: "bytes", ev: SSEEvent{Data: []byte("raw")}, want: "data: raw\n\n"},
		{name: "empty data dispatches", ev: SSEEvent{Data: ""}, want: "data: \n\n"},
		{name: "retry alone", ev: SSEEvent{Retry: 1500 * time.Millisecond}, want: "retry: 1500\n\n"},
		{name: "ID with a line break", ev: SSEEvent{ID: "1\n2", Data: "x"}, err: "line break"},
		{name: "ID with NUL", ev: SSEEvent{ID: "1\x002", Data: "x"}, err: "NUL"},
		{name: "type with a line break", ev: SSEEvent{Event: "a\rb", Data: "x"}, err: "line break"},
		{name: "nothing", ev: SSEEvent{}, err: "needs"},
		{name: "data that is not JSON", ev: SSEEvent{Data: func() {}}, err: "encoding SSE data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.ev.encode()
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, string(b))
		})
	}
}

// NewSSE sends the head at once with the media type and no-cache, each
// event as a part of its own, and comments.
func TestSSEStream(t *testing.T) {
	var p parts
	w := newStream(p.send, "application/octet-stream", 0)
	sse := NewSSE(w)
	got := p.all()
	require.Len(t, got, 1, "the head goes out at once")
	require.Equal(t, []string{SSEContentType}, got[0].Headers["Content-Type"].Values)
	require.Equal(t, []string{"no-cache"}, got[0].Headers["Cache-Control"].Values)
	require.NoError(t, sse.Send(SSEEvent{ID: "1", Data: "one"}))
	require.NoError(t, sse.Comment("two\nlines"))
	got = p.all()
	require.Len(t, got, 3)
	require.Equal(t, "id: 1\ndata: one\n\n", string(got[1].Body))
	require.Equal(t, ": two\n: lines\n\n", string(got[2].Body))
	_, err := w.finish(nil)
	require.NoError(t, err)
}

// A silent SSE stream sends heartbeats (comments) until its handler
// returns, and none in the middle of something written but not flushed.
func TestSSEHeartbeat(t *testing.T) {
	var p parts
	w := newStream(p.send, SSEContentType, 100*time.Millisecond) // a heartbeat after 50 ms of silence
	NewSSE(w)
	require.Eventually(t, func() bool { return strings.Count(p.body(), ": keep-alive\n\n") >= 2 }, 10*time.Second, 5*time.Millisecond)

	// What the timer does, called directly: the stream has been silent.
	silent := func() {
		w.mu.Lock()
		w.lastSent = time.Now().Add(-time.Hour)
		w.mu.Unlock()
	}
	silent()
	before := len(p.all())
	w.onHeartbeat()
	require.Len(t, p.all(), before+1)
	require.Equal(t, ": keep-alive\n\n", string(p.all()[before].Body))

	_, err := w.Write([]byte("data: half")) // not flushed
	require.NoError(t, err)
	silent()
	before = len(p.all())
	w.onHeartbeat()
	require.Len(t, p.all(), before, "no heartbeat in the middle of an event")
	_, err = w.Write([]byte("\n\n"))
	require.NoError(t, err)
	_, err = w.finish(nil)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(p.body(), "data: half\n\n"))
	silent()
	before = len(p.all())
	w.onHeartbeat()
	require.Len(t, p.all(), before, "no heartbeat after the handler returned")
}

// The runtime answers a handler's error before its first part as the
// part's Error, ends the call with an error after it, and turns a panic
// into an internal error.
func TestHandleHTTPStream(t *testing.T) {
	rt := &runtime{compiled: &compiled{streams: map[string]streamRoute{}}, logger: hclog.NewNullLogger()}
	route := func(h StreamHandler) string {
		key := "GET /api/v1/s" + string(rune('a'+len(rt.streams)))
		rt.streams[key] = streamRoute{handler: h, contentType: SSEContentType}
		return key
	}
	early := route(func(context.Context, *Request, *Stream) error { return Errorf(ErrConflict, "no") })
	late := route(func(_ context.Context, _ *Request, w *Stream) error {
		_ = NewSSE(w)
		return errors.New("broke")
	})
	panics := route(func(context.Context, *Request, *Stream) error { panic("oops") })
	ok := route(func(_ context.Context, r *Request, w *Stream) error {
		_, err := w.Write([]byte(r.LastEventID()))
		return err
	})

	var p parts
	require.NoError(t, rt.handleHTTPStream(t.Context(), &pluginv1.HTTPRequest{Route: early}, p.send))
	require.Equal(t, "conflict", p.all()[0].Error.Kind)

	p = parts{}
	require.ErrorContains(t, rt.handleHTTPStream(t.Context(), &pluginv1.HTTPRequest{Route: late}, p.send), "broke")
	require.Nil(t, p.all()[0].Error)

	p = parts{}
	require.NoError(t, rt.handleHTTPStream(t.Context(), &pluginv1.HTTPRequest{Route: panics}, p.send))
	require.Equal(t, "internal", p.all()[0].Error.Kind)
	require.NotContains(t, p.all()[0].Error.Detail, "oops", "the client does not see the plugin's insides")

	p = parts{}
	in := &pluginv1.HTTPRequest{Route: ok, Headers: map[string]*pluginv1.Values{"Last-Event-Id": {Values: []string{"41"}}}}
	require.NoError(t, rt.handleHTTPStream(t.Context(), in, p.send))
	require.Equal(t, "41", p.body())

	p = parts{}
	require.NoError(t, rt.handleHTTPStream(t.Context(), &pluginv1.HTTPRequest{Route: "GET /api/v1/none"}, p.send))
	require.Equal(t, "not_found", p.all()[0].Error.Kind)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p = parts{}
	require.ErrorIs(t, rt.handleHTTPStream(ctx, &pluginv1.HTTPRequest{Route: late}, p.send), context.Canceled,
		"a stream the kernel ended is not reported as the handler's failure")
}

// A route serves with Handler or Stream, not both; a streamed one has no
// JSON Response and a valid media type.
func TestCompileStreamRoutes(t *testing.T) {
	h := func(context.Context, *Request) (*Response, error) { return NoContent() }
	s := func(context.Context, *Request, *Stream) error { return nil }
	base := Manifest{Name: "feeds", Version: "0.1.0", Permissions: []Permission{{Name: "feeds.feed.read"}}}
	tests := []struct {
		name  string
		route Route
		err   string
	}{
		{"both", Route{Handler: h, Stream: s}, "both a Handler and a Stream"},
		{"neither", Route{}, "has no handler"},
		{"response", Route{Stream: s, Response: struct{ A int }{}}, "declare its ContentType rather than a Response"},
		{"content type without stream", Route{Handler: h, ContentType: "text/csv"}, "ContentType is for streamed routes"},
		{"bad content type", Route{Stream: s, ContentType: "not a type"}, "is not a media type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base
			tt.route.Method, tt.route.Path, tt.route.Permission = "GET", "/api/v1/feeds", "feeds.feed.read"
			m.Routes = []Route{tt.route}
			_, err := compileManifest(m)
			require.ErrorContains(t, err, tt.err)
		})
	}
	m := base
	m.Routes = []Route{{Method: "GET", Path: "/api/v1/feeds", Permission: "feeds.feed.read", Stream: s, ContentType: "text/csv"}}
	c, err := compileManifest(m)
	require.NoError(t, err)
	require.True(t, c.wire.Routes[0].Stream)
	require.Equal(t, "text/csv", c.wire.Routes[0].StreamContentType)
	require.Equal(t, "text/csv", c.streams["GET /api/v1/feeds"].contentType)
}
