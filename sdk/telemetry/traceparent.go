package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C is the one propagation format: W3C Trace Context, as the traceparent
// and tracestate headers and the protocol's fields of the same names.
var W3C = propagation.TraceContext{}

// carrier is a TextMapCarrier of the two trace context fields, without
// the map a propagation.MapCarrier would allocate.
type carrier struct{ parent, state string }

func (c *carrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.parent = value
	case "tracestate":
		c.state = value
	}
}

func (c *carrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// Inject returns the traceparent and tracestate of ctx's span; "" when ctx
// has no valid span context.
func Inject(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	var c carrier
	W3C.Inject(ctx, &c)
	return c.parent, c.state
}

// Extract returns ctx with the remote span context of traceparent and
// tracestate as its parent; ctx itself when traceparent is empty or not
// valid.
func Extract(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return W3C.Extract(ctx, &carrier{parent: traceparent, state: tracestate})
}

// SpanContext is the span context traceparent names (not valid when it is
// empty or malformed), for a link to the trace that caused some work.
func SpanContext(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(Extract(context.Background(), traceparent, ""))
}
