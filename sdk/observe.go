package sdk

import (
	"bytes"
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
	"github.com/edulure/edulure/sdk/wire"
)

// tracerName is the instrumentation scope of the SDK's own spans (a
// request's, an event's, a job attempt's).
const tracerName = "github.com/edulure/edulure/sdk"

// observability is what a runtime records with: the plugin's metric
// registry (served by GetMetrics) and its tracer provider.
type observability struct {
	metrics *prometheus.Registry
	tp      trace.TracerProvider
	tracing bool         // tp records: the kernel configured tracing
	tracer  trace.Tracer // the SDK's spans
}

func newObservability(tp trace.TracerProvider, tracing bool) observability {
	if tp == nil {
		tp, tracing = telemetry.Off().Provider, false
	}
	return observability{metrics: prometheus.NewRegistry(), tp: tp, tracing: tracing, tracer: tp.Tracer(tracerName)}
}

// traceHTTP runs serve under a server span that continues the kernel's
// trace of the request (in.Traceparent), when tracing is on.
func (rt *runtime) traceHTTP(ctx context.Context, in *pluginv1.HTTPRequest, serve func(context.Context) *pluginv1.HTTPResponse) *pluginv1.HTTPResponse {
	if !rt.tracing {
		return serve(ctx)
	}
	ctx = telemetry.Extract(ctx, in.Traceparent, in.Tracestate)
	method, path, _ := strings.Cut(in.Route, " ")
	ctx, span := rt.tracer.Start(ctx, in.Route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", method), attribute.String("http.route", path),
		attribute.String("edulure.plugin", rt.wire.Name), attribute.String("edulure.request_id", in.RequestId),
	))
	defer span.End()
	out := serve(ctx)
	status := int(out.Status)
	if out.Error != nil {
		status = wire.KindNamed(out.Error.Kind).Status
		span.SetAttributes(attribute.String("edulure.error.kind", out.Error.Kind))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, out.GetError().GetKind())
	}
	return out
}

// traceWork starts the span of an event's handling or a job's attempt
// under the kernel's span (traceparent), when tracing is on; end ends it,
// failed with the error kind it is given ("" when the work succeeded).
func (rt *runtime) traceWork(ctx context.Context, traceparent, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, func(errKind string)) {
	if !rt.tracing {
		return ctx, func(string) {}
	}
	ctx = telemetry.Extract(ctx, traceparent, "")
	ctx, span := rt.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(append(attrs, attribute.String("edulure.plugin", rt.wire.Name))...))
	return ctx, func(errKind string) {
		if errKind != "" {
			span.SetStatus(codes.Error, errKind)
		}
		span.End()
	}
}

// metricsFormat is how GetMetrics encodes the registry: Prometheus's
// delimited protobuf format, which the kernel decodes without parsing text.
var metricsFormat = expfmt.NewFormat(expfmt.TypeProtoDelim)

// gatherMetrics encodes the plugin's registry for GetMetrics. A collector
// that fails leaves its families out; the rest are still served.
func (rt *runtime) gatherMetrics() (*pluginv1.GetMetricsResponse, error) {
	mfs, err := rt.metrics.Gather()
	if err != nil {
		rt.logger.Warn("gathering the plugin's metrics", "error", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, metricsFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	return &pluginv1.GetMetricsResponse{ContentType: string(metricsFormat), Body: buf.Bytes()}, nil
}
