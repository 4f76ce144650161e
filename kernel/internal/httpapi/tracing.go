package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/sdk/telemetry"
)

// tracerName is the instrumentation scope of the API's spans.
const tracerName = "github.com/edulure/edulure/kernel/httpapi"

// traceRequests (installed only when tracing is on) runs each request
// under a server span that continues the client's W3C traceparent, if it
// sent one. The span is named after the route template, not the path.
func (s *Server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := telemetry.W3C.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		ctx, span := s.tracer.Start(ctx, req.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", req.Method), attribute.String("url.path", req.URL.Path),
			attribute.String("edulure.request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		err := next(c) // logRequests, inside, has committed the answer
		status := c.Response().Status
		if route := c.Path(); route != "" {
			span.SetName(req.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if plugin, ok := c.Get(pluginKey).(string); ok {
			span.SetAttributes(attribute.String("edulure.plugin", plugin))
		}
		if p := principalOf(c); p != nil && p.HasTenant() {
			span.SetAttributes(attribute.String("edulure.tenant_id", p.tenantString()))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
	}
}

// principal resolves the request's credentials, under a span of its own
// when tracing.
func (s *Server) principal(c echo.Context) (*Principal, error) {
	if !s.tracing {
		return s.resolvePrincipal(c.Request().Context(), c)
	}
	ctx, span := s.tracer.Start(c.Request().Context(), "authenticate")
	defer span.End()
	p, err := s.resolvePrincipal(ctx, c)
	if err != nil {
		span.SetStatus(codes.Error, problemCode(err))
		return nil, err
	}
	span.SetAttributes(attribute.String("edulure.principal.kind", p.Kind))
	return p, nil
}

// allowed is OPA's decision on the input (authorize builds it), under a
// span of its own when tracing.
func (s *Server) allowed(ctx context.Context, in authz.Input) (bool, error) {
	if !s.tracing {
		return s.Authz.Allowed(ctx, in)
	}
	ctx, span := s.tracer.Start(ctx, "authorize", trace.WithAttributes(attribute.String("edulure.permission", in.Action)))
	defer span.End()
	ok, err := s.Authz.Allowed(ctx, in)
	if err != nil {
		span.SetStatus(codes.Error, "the decision failed")
	}
	span.SetAttributes(attribute.Bool("edulure.allowed", ok))
	return ok, err
}

// startSpan starts an internal span when tracing; end ends it.
func (s *Server) startSpan(ctx context.Context, name string) (context.Context, func()) {
	if !s.tracing {
		return ctx, func() {}
	}
	ctx, span := s.tracer.Start(ctx, name)
	return ctx, func() { span.End() }
}

func problemCode(err error) string {
	if p, ok := err.(*problem.Problem); ok {
		return p.Code
	}
	return "error"
}
