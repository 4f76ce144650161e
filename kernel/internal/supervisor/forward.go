package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
	"github.com/edulure/edulure/sdk/wire"
)

// tracerName is the instrumentation scope of the kernel's spans of calls
// into plugins.
const tracerName = "github.com/edulure/edulure/kernel/supervisor"

// Forward sends one request to the plugin serving t, within the plugin's
// concurrency limit and request timeout. Whatever goes wrong on the way
// comes back as a *problem.Problem: 503 when the plugin is not running or is
// at its concurrency limit, 504 when it does not answer in time, 502 when it
// dies or answers nonsense; a handler's sdk error becomes its problem.
func (s *Supervisor) Forward(ctx context.Context, t Target, req *pluginv1.HTTPRequest) (resp *pluginv1.HTTPResponse, err error) {
	start := time.Now()
	var span trace.Span
	if s.tracing {
		ctx, span = s.tracer.Start(ctx, "edulure.plugin.v1.Plugin/HandleHTTP", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.method", "HandleHTTP"),
				attribute.String("edulure.plugin", t.Plugin), attribute.String("http.route", t.Route.Path.String())))
		req.Traceparent, req.Tracestate = telemetry.Inject(ctx)
	}
	defer func() {
		code := http.StatusOK
		if err != nil {
			code = http.StatusInternalServerError
			var p *problem.Problem
			if errors.As(err, &p) {
				code = p.Status
			}
		} else if resp != nil {
			code = int(resp.Status)
		}
		s.metrics.observe(t, start, code)
		if span != nil {
			span.SetAttributes(attribute.Int("http.response.status_code", code))
			if code >= 500 {
				span.SetStatus(otelcodes.Error, http.StatusText(code))
			}
			span.End()
		}
	}()
	return s.forward(ctx, t, req)
}

func (s *Supervisor) forward(ctx context.Context, t Target, req *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	inst := t.slot.inst.Load()
	// An upgrade may swap and drain the instance just loaded: take the new one.
	for inst != nil && !inst.acquire() {
		inst = t.slot.inst.Load()
	}
	if inst == nil {
		return nil, s.unavailable(t)
	}
	defer inst.inflight.Done()
	select {
	case inst.sem <- struct{}{}:
	default:
		p := problem.New(http.StatusServiceUnavailable, "plugin-busy",
			fmt.Sprintf("plugin %q is at its limit of %d concurrent requests; retry shortly", t.Plugin, cap(inst.sem)))
		p.RetryAfter, p.Source = 1, problem.SourcePlugin
		return nil, p
	}
	defer func() { <-inst.sem }()

	timeout := inst.cfg.Limits.RequestTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		req.DeadlineUnixMs = dl.UnixMilli()
	}
	resp, err := inst.rpc.HandleHTTP(ctx, req)
	if dl, _ := ctx.Deadline(); err == nil && resp.Error != nil && !time.Now().Before(dl) {
		err = status.Error(codes.DeadlineExceeded, "the handler gave up at the request's deadline") // it may answer before our timer fires
	}
	if err != nil {
		return nil, s.callProblem(ctx, t, inst, err, timeout)
	}
	if resp.Error != nil {
		return nil, pluginProblem(t, resp.Error)
	}
	if !wire.ValidStatus(resp.Status) {
		return nil, badGateway(t, fmt.Sprintf("plugin %q answered with the invalid status %d", t.Plugin, resp.Status))
	}
	return resp, nil
}

// pluginProblem is the client's answer to a handler's error: the status and
// default code of its kind (wire.Kinds, which sdk/plugintest reads too),
// and for an internal error a detail that names the plugin but not the
// error.
func pluginProblem(t Target, e *pluginv1.Error) *problem.Problem {
	k := wire.KindNamed(e.Kind)
	if k == wire.Internal {
		p := problem.New(k.Status, k.Code, fmt.Sprintf("plugin %q failed to handle the request; its log has the details under this request ID", t.Plugin))
		p.Source = problem.SourcePlugin
		return p
	}
	code := k.Code
	if e.Code != "" {
		code = e.Code
	}
	p := problem.New(k.Status, code, e.Detail)
	for _, f := range e.Fields {
		p.Errors = append(p.Errors, sdk.FieldError{Field: f.Field, Message: f.Message})
	}
	p.RetryAfter = int(e.RetryAfterSeconds)
	if p.Status >= 500 {
		p.Source = problem.SourcePlugin
	}
	return p
}

func (s *Supervisor) unavailable(t Target) *problem.Problem {
	st := t.slot.status()
	p := problem.New(http.StatusServiceUnavailable, "plugin-unavailable", fmt.Sprintf("plugin %q is %s; retry shortly", t.Plugin, st.State))
	p.RetryAfter = 2
	if st.State == StateQuarantined {
		p.Code, p.Type = "plugin-quarantined", problem.TypeBase+"plugin-quarantined"
		p.Detail = fmt.Sprintf("plugin %q crashed repeatedly and is quarantined until an operator reloads it", t.Plugin)
		p.RetryAfter = 60
	}
	p.Source = problem.SourcePlugin
	return p
}

func (s *Supervisor) callProblem(ctx context.Context, t Target, inst *instance, err error, timeout time.Duration) *problem.Problem {
	code := status.Code(err)
	switch {
	case code == codes.DeadlineExceeded || errors.Is(ctx.Err(), context.DeadlineExceeded):
		p := problem.New(http.StatusGatewayTimeout, "plugin-timeout", fmt.Sprintf("plugin %q did not answer within %s", t.Plugin, timeout))
		p.Source = problem.SourcePlugin
		return p
	case code == codes.Canceled:
		p := problem.New(http.StatusServiceUnavailable, "request-canceled", "the request was canceled before the plugin answered")
		p.Source = problem.SourceClient
		return p
	case code == codes.Unavailable || inst.exited():
		p := problem.New(http.StatusBadGateway, "plugin-crashed", fmt.Sprintf("plugin %q stopped while handling the request; it is being restarted", t.Plugin))
		p.Source = problem.SourcePlugin
		return p
	}
	s.logger.Error("plugin call failed", "plugin", t.Plugin, "route", t.Route.Key, "error", err)
	return badGateway(t, fmt.Sprintf("plugin %q could not handle the request (%s)", t.Plugin, code))
}

func badGateway(t Target, detail string) *problem.Problem {
	p := problem.New(http.StatusBadGateway, "plugin-error", detail)
	p.Source = problem.SourcePlugin
	return p
}

// Permissions returns which of the plugin's permissions allowed reports as
// granted: the list handed to the plugin with each request, so a handler
// answers Principal.Can locally.
func (t Target) Permissions(allowed func(perm string) bool) []string {
	t.slot.mu.Lock()
	m := t.slot.manifest
	t.slot.mu.Unlock()
	var out []string
	if m == nil {
		return nil
	}
	for _, p := range m.Permissions {
		if allowed(p.Name) {
			out = append(out, p.Name)
		}
	}
	return out
}

// Manifest returns the validated manifest of a loaded plugin.
func (s *Supervisor) Manifest(name string) (*Manifest, bool) {
	s.mu.RLock()
	sl, ok := s.slots[name]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.manifest, sl.manifest != nil
}
