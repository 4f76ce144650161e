package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// ErrNotRunning is returned by DeliverEvents and RunJob when the plugin has
// no running process on this replica; the caller waits and tries again.
var ErrNotRunning = errors.New("the plugin is not running")

// Loaded is one plugin as the event relay and the job system see it.
type Loaded struct {
	Name             string
	Manifest         *Manifest
	EnabledByDefault bool
	Running          bool
}

// Loaded returns every plugin with a validated manifest, running or not.
func (s *Supervisor) Loaded() []Loaded {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Loaded, 0, len(s.slots))
	for _, sl := range s.slots {
		sl.mu.Lock()
		if sl.manifest != nil {
			out = append(out, Loaded{Name: sl.name, Manifest: sl.manifest, EnabledByDefault: sl.cfg.EnabledByDefault, Running: sl.inst.Load() != nil})
		}
		sl.mu.Unlock()
	}
	return out
}

// EventSchema returns the compiled schema of an event type a loaded plugin
// publishes.
func (m *Manifest) EventSchema(eventType string) (*jsonschema.Schema, bool) {
	sch, ok := m.EventSchemas[eventType]
	return sch, ok
}

// OnChange registers fn to be called (on its own goroutine) after the set of
// loaded plugins or their states change: the event relay and the job
// scheduler re-read Loaded.
func (s *Supervisor) OnChange(fn func()) {
	s.mu.Lock()
	s.onChange = append(s.onChange, fn)
	s.mu.Unlock()
}

func (s *Supervisor) changed() {
	s.mu.RLock()
	fns := append([]func(){}, s.onChange...)
	s.mu.RUnlock()
	for _, fn := range fns {
		go fn()
	}
}

// OnEventsPublished registers fn, called when a plugin reports that it
// committed events to its outbox (the relay's wake-up).
func (s *Supervisor) OnEventsPublished(fn func(plugin string)) { s.published.Store(&fn) }

// running acquires the running instance of plugin, which the caller must
// release with inst.inflight.Done().
func (s *Supervisor) running(plugin string) (*instance, error) {
	s.mu.RLock()
	sl, ok := s.slots[plugin]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("plugin %q is not loaded: %w", plugin, ErrNotRunning)
	}
	inst := sl.inst.Load()
	for inst != nil && !inst.acquire() {
		inst = sl.inst.Load()
	}
	if inst == nil {
		return nil, fmt.Errorf("plugin %q is %s: %w", plugin, sl.status().State, ErrNotRunning)
	}
	return inst, nil
}

// DeliverEvents sends a batch of events to plugin within timeout.
func (s *Supervisor) DeliverEvents(ctx context.Context, plugin string, events []*pluginv1.Event, timeout time.Duration) (*pluginv1.HandleEventsResponse, error) {
	inst, err := s.running(plugin)
	if err != nil {
		return nil, err
	}
	defer inst.inflight.Done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, end := s.traceCall(ctx, plugin, "HandleEvents", attribute.Int("edulure.events", len(events)))
	if parent, _ := telemetry.Inject(ctx); parent != "" {
		for _, ev := range events {
			ev.Traceparent = parent
		}
	}
	dl, _ := ctx.Deadline()
	resp, err := inst.rpc.HandleEvents(ctx, &pluginv1.HandleEventsRequest{Events: events, DeadlineUnixMs: dl.UnixMilli()})
	end(err)
	if err != nil {
		return nil, fmt.Errorf("delivering to plugin %q: %w", plugin, err)
	}
	if len(resp.Results) != len(events) {
		return nil, fmt.Errorf("plugin %q answered %d results for %d events", plugin, len(resp.Results), len(events))
	}
	return resp, nil
}

// RunJob runs one attempt of a job of plugin; ctx carries the job's timeout.
func (s *Supervisor) RunJob(ctx context.Context, plugin string, req *pluginv1.RunJobRequest) (*pluginv1.RunJobResponse, error) {
	inst, err := s.running(plugin)
	if err != nil {
		return nil, err
	}
	defer inst.inflight.Done()
	if dl, ok := ctx.Deadline(); ok {
		req.DeadlineUnixMs = dl.UnixMilli()
	}
	ctx, end := s.traceCall(ctx, plugin, "RunJob", attribute.String("edulure.job", req.Job))
	req.Traceparent, _ = telemetry.Inject(ctx)
	resp, err := inst.rpc.RunJob(ctx, req)
	if err == nil && resp.Error != nil {
		end(errors.New(resp.Error.Kind))
	} else {
		end(err)
	}
	if err != nil {
		return nil, fmt.Errorf("running job %s/%s: %w", plugin, req.Job, err)
	}
	return resp, nil
}

// traceCall starts the client span of a call into plugin, under ctx's span,
// when tracing is on; end ends it, failed when err is not nil.
func (s *Supervisor) traceCall(ctx context.Context, plugin, method string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	if !s.tracing {
		return ctx, func(error) {}
	}
	ctx, span := s.tracer.Start(ctx, "edulure.plugin.v1.Plugin/"+method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, attribute.String("rpc.system", "grpc"), attribute.String("rpc.method", method), attribute.String("edulure.plugin", plugin))...))
	return ctx, func(err error) {
		if err != nil {
			desc := err.Error() // a plugin's error kind
			if st, ok := status.FromError(err); ok {
				desc = st.Code().String() // not the message: it may quote data
			}
			span.SetStatus(otelcodes.Error, desc)
		}
		span.End()
	}
}

// EventsPublished is the plugin's wake-up hint.
func (h *hostServer) EventsPublished(context.Context, *pluginv1.EventsPublishedRequest) (*pluginv1.EventsPublishedResponse, error) {
	if fn := h.s.published.Load(); fn != nil {
		(*fn)(h.plugin)
	}
	return &pluginv1.EventsPublishedResponse{}, nil
}
