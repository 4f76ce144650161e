package plugintest_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// feeds is a plugin with streamed routes: a feed of Server-Sent Events
// that keeps what it sent (for Last-Event-ID), fed by POST, and a
// generated download.
type feeds struct {
	mu      sync.Mutex
	sent    []string                   // the feed's messages; the ID is the index + 1
	waiting map[chan struct{}]struct{} // feeds waiting for the next message
	open    atomic.Int32               // feed handlers running
}

var _ sdk.Plugin = (*feeds)(nil)

func newFeeds() *feeds { return &feeds{waiting: map[chan struct{}]struct{}{}} }

type downloadQuery struct {
	Size int `query:"size" minimum:"0" maximum:"100000000"`
}

func (f *feeds) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "feeds", Version: "0.1.0",
		Permissions: []sdk.Permission{
			{Name: "feeds.feed.read", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: "feeds.feed.post", DefaultRoles: []string{"admin", "instructor"}},
		},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/api/v1/feed", Permission: "feeds.feed.read", Stream: f.feed},
			{Method: "POST", Path: "/api/v1/feed", Permission: "feeds.feed.post", Request: post{}, Status: 204, Handler: f.post},
			{Method: "GET", Path: "/api/v1/feed-export", Permission: "feeds.feed.read", Query: downloadQuery{}, ContentType: "application/octet-stream", Stream: download},
			{Method: "GET", Path: "/api/v1/feed-broken", Public: true, ContentType: "text/plain", Stream: broken},
		},
		Migrations: fstest.MapFS{"0001_none.up.sql": {Data: []byte("SELECT 1;")}},
	}
}

type post struct {
	Text string `json:"text" minLength:"1"`
}

func (f *feeds) post(_ context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in post
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.sent = append(f.sent, in.Text)
	for ch := range f.waiting {
		close(ch)
	}
	f.waiting = map[chan struct{}]struct{}{}
	f.mu.Unlock()
	return sdk.NoContent()
}

// next returns the messages after index i, or a channel closed when more
// come.
func (f *feeds) next(i int) ([]string, chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < len(f.sent) {
		return f.sent[i:], nil
	}
	ch := make(chan struct{})
	f.waiting[ch] = struct{}{}
	return nil, ch
}

func (f *feeds) feed(ctx context.Context, r *sdk.Request, w *sdk.Stream) error {
	f.open.Add(1)
	defer f.open.Add(-1)
	i := 0
	if id := r.LastEventID(); id != "" {
		n, err := strconv.Atoi(id)
		if err != nil {
			return sdk.Invalid(sdk.FieldError{Field: "Last-Event-ID", Message: "is not an ID of this feed"})
		}
		i = n
	} else {
		f.mu.Lock()
		i = len(f.sent) // a first connection: what comes next
		f.mu.Unlock()
	}
	sse := sdk.NewSSE(w)
	for {
		msgs, more := f.next(i)
		for _, m := range msgs {
			i++
			if err := sse.Send(sdk.SSEEvent{ID: strconv.Itoa(i), Event: "post", Data: map[string]string{"text": m}}); err != nil {
				return err
			}
		}
		if more == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-more:
		}
	}
}

func download(_ context.Context, r *sdk.Request, w *sdk.Stream) error {
	q, err := sdk.Query[downloadQuery](r)
	if err != nil {
		return err
	}
	_ = w.SetHeader("Content-Disposition", `attachment; filename="export.bin"`)
	line := []byte("0123456789abcdef")
	for left := q.Size; left > 0; left -= len(line) {
		if _, err := w.Write(line[:min(left, len(line))]); err != nil {
			return err
		}
	}
	return nil
}

func broken(_ context.Context, r *sdk.Request, w *sdk.Stream) error {
	if r.Query.Get("x") != "" { // undeclared: never forwarded
		return errors.New("got an undeclared parameter")
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return errors.New("the disk is on fire")
}

// A feed read through the harness: events posted after it opened arrive
// as they are posted; Close cancels the handler and waits for it.
func TestStreamFeed(t *testing.T) {
	t.Parallel()
	f := newFeeds()
	h := plugintest.New(t, f)
	tenant := plugintest.NewTenant()
	s := h.Stream(plugintest.User(tenant, "learner"), "GET", "/api/v1/feed")
	require.Equal(t, 200, s.Status, s)
	require.Equal(t, sdk.SSEContentType, s.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", s.Header.Get("Cache-Control"))
	for i, text := range []string{"one", "two"} {
		require.Equal(t, 204, h.Do(plugintest.User(tenant, "instructor"), "POST", "/api/v1/feed", map[string]string{"text": text}).Status)
		ev, ok := s.NextEvent()
		require.True(t, ok)
		require.Equal(t, strconv.Itoa(i+1), ev.ID)
		require.Equal(t, "post", ev.Event)
		var data struct{ Text string }
		ev.JSON(t, &data)
		require.Equal(t, text, data.Text)
	}
	require.Equal(t, int32(1), f.open.Load())
	s.Close()
	require.Equal(t, int32(0), f.open.Load(), "Close waits for the handler to return")
	require.ErrorIs(t, s.Err(), context.Canceled)
	_, ok := s.Next()
	require.False(t, ok)
}

// Last-Event-ID reaches the handler, which replays what was missed; one
// it refuses is the problem+json answer, before anything is streamed.
func TestStreamResume(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newFeeds())
	tenant := plugintest.NewTenant()
	for _, text := range []string{"a", "b", "c"} {
		require.Equal(t, 204, h.Do(plugintest.User(tenant, "admin"), "POST", "/api/v1/feed", map[string]string{"text": text}).Status)
	}
	s := h.StreamRequest(plugintest.Request{Principal: plugintest.User(tenant, "learner"), Method: "GET", Path: "/api/v1/feed",
		Header: http.Header{"Last-Event-ID": {"1"}}})
	for _, want := range []string{"2", "3"} {
		ev, ok := s.NextEvent()
		require.True(t, ok)
		require.Equal(t, want, ev.ID)
	}
	s.Close()

	s = h.StreamRequest(plugintest.Request{Principal: plugintest.User(tenant, "learner"), Method: "GET", Path: "/api/v1/feed",
		Header: http.Header{"Last-Event-ID": {"x"}}})
	require.Equal(t, 422, s.Status, s)
	require.Equal(t, []string{"Last-Event-ID"}, s.Problem().FieldNames())
	_, ok := s.NextEvent()
	require.False(t, ok)
}

// A streamed route gets the kernel's checks first, with the same answers
// as Do's.
func TestStreamContract(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newFeeds())
	tenant := plugintest.NewTenant()
	s := h.Stream(plugintest.Anonymous(), "GET", "/api/v1/feed")
	require.Equal(t, 401, s.Status, s)
	require.Equal(t, "missing-credentials", s.Problem().Code)
	s = h.Stream(plugintest.User(tenant, "learner"), "GET", "/api/v1/feed-export?size=-1")
	require.Equal(t, 422, s.Status, s)
	require.Equal(t, []string{"size"}, s.Problem().FieldNames())
	h.SetEnabled(tenant, false)
	require.Equal(t, 404, h.Stream(plugintest.User(tenant, "learner"), "GET", "/api/v1/feed").Status)
	require.Equal(t, 405, h.Stream(plugintest.User(tenant, "learner"), "PUT", "/api/v1/feed").Status)
}

// A download read whole, through Read (io.Copy) and through Do, which
// collects a streamed answer; one the handler fails after its first part
// is cut short, as a client of the kernel sees it.
func TestStreamDownload(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newFeeds())
	learner := plugintest.User(plugintest.NewTenant(), "learner")
	const size = 1_000_003
	s := h.Stream(learner, "GET", "/api/v1/feed-export?size="+strconv.Itoa(size))
	require.Equal(t, 200, s.Status, s)
	require.Equal(t, "application/octet-stream", s.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="export.bin"`, s.Header.Get("Content-Disposition"))
	hash := sha256.New()
	n, err := io.Copy(hash, s)
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
	require.NoError(t, s.Err())

	res := h.Do(learner, "GET", "/api/v1/feed-export?size="+strconv.Itoa(size), nil)
	require.Equal(t, 200, res.Status, res)
	require.Len(t, res.Body, size)
	require.Equal(t, hash.Sum(nil), sha256Sum(res.Body))

	s = h.Stream(plugintest.Anonymous(), "GET", "/api/v1/feed-broken?x=1")
	require.Equal(t, 200, s.Status, s)
	require.Equal(t, "text/plain", s.Header.Get("Content-Type"))
	body, err := io.ReadAll(s)
	require.ErrorIs(t, err, plugintest.ErrCutShort)
	require.Equal(t, "partial", string(body))
	require.ErrorIs(t, s.Err(), plugintest.ErrCutShort)
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
