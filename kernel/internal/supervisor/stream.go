package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/kernel/internal/problem"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// StreamEnd says why a streamed answer ended.
type StreamEnd string

// The ends of a stream. Only StreamComplete leaves the client a complete
// answer; after any other the kernel cuts the response short.
const (
	StreamComplete      StreamEnd = "complete"       // the handler returned and all of its answer went out
	StreamClientGone    StreamEnd = "client_gone"    // the client closed the connection, or stopped reading
	StreamIdleTimeout   StreamEnd = "idle_timeout"   // the plugin sent nothing for limits.stream_idle_timeout
	StreamMaxDuration   StreamEnd = "max_duration"   // the stream reached limits.stream_max_duration
	StreamPluginStopped StreamEnd = "plugin_stopped" // the plugin was stopped, reloaded or upgraded, or the kernel is shutting down
	StreamPluginError   StreamEnd = "plugin_error"   // the handler failed after its first part, or the plugin died
)

// StreamEnds lists every StreamEnd.
var StreamEnds = []StreamEnd{StreamComplete, StreamClientGone, StreamIdleTimeout, StreamMaxDuration, StreamPluginStopped, StreamPluginError}

// The causes with which the kernel cancels a stream's call.
var (
	errStreamIdle    = errors.New("the plugin sent nothing within the stream idle timeout")
	errStreamMax     = errors.New("the stream reached its maximum duration")
	errStreamStopped = errors.New("the plugin is stopping")
	errStreamClosed  = errors.New("the stream is closed")
)

// streamCounts are a slot's open streams, by institution, and its ended
// streams by how they ended (StreamEnds' order).
type streamCounts struct {
	mu       sync.Mutex
	open     int
	byTenant map[string]int
	ended    [6]atomic.Uint64
}

// take counts a new stream of tenant ("" for none) if both caps allow it,
// and says which cap refused it otherwise.
func (c *streamCounts) take(tenant string, l Limits) (refused string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open >= l.MaxStreams {
		return fmt.Sprintf("its limit of %d open streams", l.MaxStreams)
	}
	if tenant != "" && c.byTenant[tenant] >= l.MaxStreamsPerInstitution {
		return fmt.Sprintf("its limit of %d open streams per institution", l.MaxStreamsPerInstitution)
	}
	c.open++
	if tenant != "" {
		if c.byTenant == nil {
			c.byTenant = map[string]int{}
		}
		c.byTenant[tenant]++
	}
	return ""
}

func (c *streamCounts) release(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if tenant != "" {
		if c.byTenant[tenant]--; c.byTenant[tenant] <= 0 {
			delete(c.byTenant, tenant)
		}
	}
}

// EndStreams ends every open stream, and any opened from now on, as
// plugin_stopped: when the kernel shuts down, so that streams, which last
// as long as their limits allow, do not hold up the HTTP server's drain.
func (s *Supervisor) EndStreams() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sl := range s.slots {
		if inst := sl.inst.Load(); inst != nil {
			inst.stopStreams()
		}
	}
}

// StreamStats are a plugin's streams, for metrics.
type StreamStats struct {
	Plugin string
	Open   int
	Ended  map[StreamEnd]uint64
}

// StreamStats lists each plugin's open and ended streams.
func (s *Supervisor) StreamStats() []StreamStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]StreamStats, 0, len(s.slots))
	for name, sl := range s.slots {
		st := StreamStats{Plugin: name, Ended: make(map[StreamEnd]uint64, len(StreamEnds))}
		sl.streams.mu.Lock()
		st.Open = sl.streams.open
		sl.streams.mu.Unlock()
		for i, e := range StreamEnds {
			st.Ended[e] = sl.streams.ended[i].Load()
		}
		out = append(out, st)
	}
	return out
}

// Stream is a plugin's streamed answer in flight: OpenStream has its first
// part; Next reads the others; Close ends it.
type Stream struct {
	head   *pluginv1.HTTPResponsePart
	call   grpc.ServerStreamingClient[pluginv1.HTTPResponsePart]
	ctx    context.Context // the call's
	client context.Context // the client's request
	cancel context.CancelCauseFunc
	stopDL context.CancelFunc // the maximum duration's timer

	// IdleTimeout is the longest the kernel waits for the next part; a
	// client that cannot take a part within it is gone too.
	IdleTimeout time.Duration
	idle        *time.Timer
	stopOnStop  func() bool // unregisters from the instance's stop

	inst   *instance
	slot   *slot
	plugin string
	tenant string
	end    StreamEnd
	once   sync.Once
}

// OpenStream calls the plugin serving t for a streamed answer to req and
// waits for its first part. The stream counts against the plugin's caps on
// open streams, overall and for tenant ("" when the caller has no
// institution), instead of its concurrency limit; the stream limits of
// plugins.hcl replace the request timeout. What goes wrong before the first
// part comes back as a *problem.Problem, as from Forward: 503 with
// Retry-After above a cap. ctx is the client's request: when it ends, so
// does the call.
func (s *Supervisor) OpenStream(ctx context.Context, t Target, tenant string, req *pluginv1.HTTPRequest) (*Stream, error) {
	inst := t.slot.inst.Load()
	for inst != nil && !inst.acquire() {
		inst = t.slot.inst.Load()
	}
	if inst == nil {
		return nil, s.unavailable(t)
	}
	l := inst.cfg.Limits
	if refused := t.slot.streams.take(tenant, l); refused != "" {
		inst.inflight.Done()
		p := problem.New(http.StatusServiceUnavailable, "plugin-streams-busy", fmt.Sprintf("plugin %q is at %s; retry shortly", t.Plugin, refused))
		p.RetryAfter, p.Source = 5, problem.SourcePlugin
		return nil, p
	}
	st := &Stream{client: ctx, IdleTimeout: l.StreamIdleTimeout, inst: inst, slot: t.slot, plugin: t.Plugin, tenant: tenant}
	callCtx, cancel := context.WithCancelCause(ctx)
	st.cancel = cancel
	st.ctx, st.stopDL = context.WithDeadlineCause(callCtx, time.Now().Add(l.StreamMaxDuration), errStreamMax)
	st.stopOnStop = context.AfterFunc(inst.streams, func() { cancel(errStreamStopped) })
	st.idle = time.AfterFunc(l.StreamIdleTimeout, func() { cancel(errStreamIdle) })
	dl, _ := st.ctx.Deadline()
	req.DeadlineUnixMs, req.StreamIdleTimeoutMs = dl.UnixMilli(), l.StreamIdleTimeout.Milliseconds()

	fail := func(p *problem.Problem) (*Stream, error) {
		st.release()
		return nil, p
	}
	var err error
	if st.call, err = inst.rpc.HandleHTTPStream(st.ctx, req); err == nil {
		st.head, err = st.call.Recv()
	}
	st.idle.Stop()
	switch {
	case errors.Is(err, io.EOF):
		return fail(badGateway(t, fmt.Sprintf("plugin %q ended its streamed answer before it began", t.Plugin)))
	case err != nil:
		return fail(s.streamProblem(st, t, err))
	case st.head.Error != nil:
		return fail(pluginProblem(t, st.head.Error))
	case !wire.ValidStatus(wire.StreamStatus(st.head)):
		return fail(badGateway(t, fmt.Sprintf("plugin %q answered with the invalid status %d", t.Plugin, st.head.Status)))
	}
	return st, nil
}

// streamProblem is the answer to a stream that failed before its first
// part.
func (s *Supervisor) streamProblem(st *Stream, t Target, err error) *problem.Problem {
	switch context.Cause(st.ctx) {
	case errStreamIdle:
		p := problem.New(http.StatusGatewayTimeout, "plugin-timeout", fmt.Sprintf("plugin %q did not begin its answer within %s", t.Plugin, st.IdleTimeout))
		p.Source = problem.SourcePlugin
		return p
	case errStreamStopped:
		return s.unavailable(t)
	}
	return s.callProblem(st.ctx, t, st.inst, err, st.IdleTimeout)
}

// Plugin is the name of the plugin answering.
func (st *Stream) Plugin() string { return st.plugin }

// Head is the status, the headers that reach the client, and the first
// bytes of the body.
func (st *Stream) Head() (status int, header http.Header, body []byte) {
	return int(wire.StreamStatus(st.head)), wire.StreamHeaders(st.head), st.head.Body
}

// Next waits (at most the idle timeout) for the next part of the body. At
// the end of the stream it returns io.EOF when the plugin completed its
// answer, and otherwise an error; End then says why.
func (st *Stream) Next() ([]byte, error) {
	st.idle.Reset(st.IdleTimeout)
	part, err := st.call.Recv()
	st.idle.Stop()
	if err == nil {
		return part.Body, nil
	}
	if errors.Is(err, io.EOF) {
		st.setEnd(StreamComplete)
		return nil, io.EOF
	}
	st.setEnd(st.cause(err))
	return nil, err
}

// cause is why the call ended with err.
func (st *Stream) cause(err error) StreamEnd {
	switch context.Cause(st.ctx) {
	case errStreamIdle:
		return StreamIdleTimeout
	case errStreamMax:
		return StreamMaxDuration
	case errStreamStopped:
		return StreamPluginStopped
	}
	if st.client.Err() != nil {
		return StreamClientGone
	}
	if status.Code(err) == codes.DeadlineExceeded { // the plugin's clock ran out before ours
		return StreamMaxDuration
	}
	return StreamPluginError
}

func (st *Stream) setEnd(e StreamEnd) {
	if st.end == "" {
		st.end = e
	}
}

// End is why the stream ended: what Next found, else StreamClientGone
// (the kernel could not write to the client).
func (st *Stream) End() StreamEnd {
	if st.end == "" {
		return StreamClientGone
	}
	return st.end
}

// Close ends the stream: it cancels the plugin's call (the handler's
// context ends) unless it has ended, and counts the stream as ended for
// End's reason. Close is idempotent.
func (st *Stream) Close() StreamEnd {
	end := st.End()
	st.once.Do(func() {
		for i, e := range StreamEnds { // counted ended before it stops counting as open
			if e == end {
				st.slot.streams.ended[i].Add(1)
			}
		}
		st.release()
	})
	return end
}

// release frees what OpenStream took.
func (st *Stream) release() {
	st.idle.Stop()
	st.stopOnStop()
	st.cancel(errStreamClosed)
	st.stopDL()
	st.slot.streams.release(st.tenant)
	st.inst.inflight.Done()
}
