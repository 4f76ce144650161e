package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/supervisor"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID accepts a well-formed X-Request-ID or generates one, and echoes it.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !requestIDPattern.MatchString(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// requestLogger is the logger for one request: it carries the request ID,
// and the tenant and subject once known.
func (s *Server) requestLogger(c echo.Context) hclog.Logger {
	args := []any{"request_id", c.Response().Header().Get(echo.HeaderXRequestID)}
	if s.tracing {
		if sc := trace.SpanContextFromContext(c.Request().Context()); sc.IsValid() {
			args = append(args, "trace_id", sc.TraceID().String())
		}
	}
	if p := principalOf(c); p != nil {
		if p.HasTenant() {
			args = append(args, "tenant", p.TenantID.String())
		}
		kind, id := p.Actor()
		args = append(args, "actor", kind+":"+id)
	}
	return s.Logger.With(args...)
}

func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				buf := make([]byte, 8<<10)
				buf = buf[:runtime.Stack(buf, false)]
				s.requestLogger(c).Error("panic in handler", "panic", fmt.Sprint(r), "stack", string(buf))
				err = problem.New(http.StatusInternalServerError, "internal", "an internal error occurred; it has been logged with this request's ID")
			}
		}()
		return next(c)
	}
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // commit the response so the status below is final
		}
		s.metrics.observe(c, start)
		status := c.Response().Status
		level := hclog.Info
		switch {
		case status >= 500:
			level = hclog.Error
		case c.Path() == "/healthz" || c.Path() == "/readyz" || c.Path() == "/metrics":
			level = hclog.Trace
		}
		if s.Logger.GetLevel() > level {
			return nil // not logged: spare building the line
		}
		args := []any{"method", c.Request().Method, "path", c.Request().URL.Path, "route", c.Path(),
			"status", status, "duration_ms", float64(time.Since(start).Microseconds()) / 1000, "ip", c.RealIP()}
		if plugin, ok := c.Get(pluginKey).(string); ok {
			args = append(args, "plugin", plugin)
		}
		if end, ok := c.Get(streamEndKey).(supervisor.StreamEnd); ok {
			args = append(args, "stream_end", string(end))
		}
		s.requestLogger(c).Log(level, "request", args...)
		return nil
	}
}

// deadline bounds every request by the configured timeout. Handlers and
// database calls take the request's context, so they stop at the deadline.
// The plugin proxy sets its own: a streamed answer outlasts it.
func (s *Server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == pluginRoutes {
			return next(c)
		}
		if signedBlobPath(c) {
			return next(c) // bounded by the URL's expiry instead
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.Config.RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}
