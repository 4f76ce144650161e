package sdk

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// observed is a plugin that counts its requests with a collector of its own
// and starts a span of its own in its handler.
type observed struct {
	env   *Env
	calls prometheus.Counter
}

func (p *observed) Manifest() Manifest {
	return Manifest{
		Name: "observed", Version: "1.0.0",
		Permissions: []Permission{{Name: "observed.thing.read"}},
		Routes: []Route{{Method: "GET", Path: "/api/v1/observed", Permission: "observed.thing.read", Handler: p.get},
			{Method: "GET", Path: "/api/v1/observed/fail", Permission: "observed.thing.read", Handler: p.fail}},
	}
}

func (p *observed) Provision(_ context.Context, env *Env) error {
	p.env = env
	p.calls = prometheus.NewCounter(prometheus.CounterOpts{Name: "observed_calls_total", Help: "Calls of GET /api/v1/observed."})
	return env.Metrics.Register(p.calls)
}

func (p *observed) get(ctx context.Context, _ *Request) (*Response, error) {
	_, span := p.env.Tracer.Start(ctx, "work")
	span.End()
	p.calls.Inc()
	return NoContent()
}

func (p *observed) fail(context.Context, *Request) (*Response, error) {
	return nil, Errorf(ErrUnavailable, "down for a moment")
}

func newObserved(t *testing.T, tp trace.TracerProvider) (*runtime, *observed) {
	t.Helper()
	p := &observed{}
	c, err := compileManifest(p.Manifest())
	require.NoError(t, err)
	rt, err := newRuntime(context.Background(), p, c, hclog.NewNullLogger(), nil, nil, nil, nil, nil, tp, tp != nil)
	require.NoError(t, err)
	return rt, p
}

// The SDK's span of a request continues the kernel's trace (the request's
// traceparent), the plugin's own spans nest under it, and a failure marks it.
func TestRequestSpanContinuesTheKernelsTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	rt, _ := newObserved(t, tp)

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	out := rt.handleHTTP(context.Background(), &pluginv1.HTTPRequest{Route: "GET /api/v1/observed", Method: "GET", Path: "/api/v1/observed", RequestId: "r1", Traceparent: parent})
	require.Nil(t, out.Error)
	require.EqualValues(t, http.StatusNoContent, out.Status)
	out = rt.handleHTTP(context.Background(), &pluginv1.HTTPRequest{Route: "GET /api/v1/observed/fail", Method: "GET", Path: "/api/v1/observed/fail", Traceparent: parent})
	require.NotNil(t, out.Error)

	spans := exp.GetSpans()
	require.Len(t, spans, 3)
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	handler, work, failed := byName["GET /api/v1/observed"], byName["work"], byName["GET /api/v1/observed/fail"]
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", handler.SpanContext.TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", handler.Parent.SpanID().String(), "a child of the kernel's span")
	require.True(t, handler.Parent.IsRemote())
	require.Equal(t, trace.SpanKindServer, handler.SpanKind)
	require.Equal(t, handler.SpanContext.SpanID(), work.Parent.SpanID(), "the plugin's own span nests under the handler's")
	require.Equal(t, "Error", failed.Status.Code.String(), "a 503 marks the span failed")
}

// With tracing off the handler runs under no recording span, whatever the
// request carries.
func TestRequestUntracedWhenOff(t *testing.T) {
	t.Parallel()
	rt, _ := newObserved(t, nil)
	out := rt.handleHTTP(context.Background(), &pluginv1.HTTPRequest{Route: "GET /api/v1/observed", Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	require.EqualValues(t, http.StatusNoContent, out.Status)
}

// GetMetrics serves what the plugin registered, in Prometheus's delimited
// protobuf format.
func TestGatherMetrics(t *testing.T) {
	t.Parallel()
	rt, p := newObserved(t, nil)
	p.calls.Add(3)
	out, err := rt.gatherMetrics()
	require.NoError(t, err)
	require.Equal(t, string(expfmt.NewFormat(expfmt.TypeProtoDelim)), out.ContentType)
	dec := expfmt.NewDecoder(bytes.NewReader(out.Body), expfmt.Format(out.ContentType))
	var mf dto.MetricFamily
	require.NoError(t, dec.Decode(&mf))
	require.Equal(t, "observed_calls_total", mf.GetName())
	require.Equal(t, 3.0, mf.Metric[0].GetCounter().GetValue())
}
