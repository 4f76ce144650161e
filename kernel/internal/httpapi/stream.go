package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// streamEndKey holds a streamed answer's supervisor.StreamEnd, for the
// request's log line.
const streamEndKey = "edulure.stream_end"

// streamFromPlugin serves a streamed route: it opens the plugin's stream
// (a refusal before its first part is a problem+json answer, as from any
// route) and writes each part to the client as it arrives, flushed. client
// is the client's request context without the request timeout: the stream
// ends when the client goes away, and otherwise by the plugin's stream
// limits. Only a stream the plugin completed ends with a complete
// response; any other end cuts the connection short, so that a download
// cut off cannot pass for a whole one.
func (s *Server) streamFromPlugin(c echo.Context, client context.Context, t supervisor.Target, p *Principal, in *pluginv1.HTTPRequest) error {
	tenant := ""
	if p != nil && p.HasTenant() {
		tenant = p.tenantString()
	}
	st, err := s.Plugins.OpenStream(client, t, tenant, in)
	if err != nil {
		return err
	}
	res := c.Response()
	rc := http.NewResponseController(res.Writer)
	end := s.pipe(res, rc, st)
	c.Set(streamEndKey, end)
	_ = rc.SetWriteDeadline(time.Time{}) // the next request on the connection gets the server's
	if end != supervisor.StreamComplete && end != supervisor.StreamClientGone {
		abort(rc)
	}
	return nil
}

// pipe writes the stream to the client until it ends, and says how it
// ended.
func (s *Server) pipe(res *echo.Response, rc *http.ResponseController, st *supervisor.Stream) supervisor.StreamEnd {
	defer st.Close()
	status, header, first := st.Head()
	h := res.Header()
	for name, v := range header {
		h[name] = v
	}
	h.Set("X-Accel-Buffering", "no") // nginx and the like: pass each part on as it comes
	// The server's ReadTimeout would end the stream (net/http cancels the
	// request when its background read times out), and its WriteTimeout
	// would cut it off: a stream has its own limits.
	_ = rc.SetReadDeadline(time.Time{})
	bodyless := wire.Bodyless(int32(status)) // 204, 304: the plugin's body is dropped
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(st.IdleTimeout)) // a client that cannot take a part in this time is gone
		if len(b) > 0 && !bodyless {
			if _, err := res.Write(b); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	res.WriteHeader(status)
	if !write(first) {
		return st.Close()
	}
	for {
		b, err := st.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && st.End() == supervisor.StreamPluginError {
				s.Logger.Warn("plugin stream failed", "plugin", st.Plugin(), "request_id", res.Header().Get(echo.HeaderXRequestID), "error", err)
			}
			return st.Close()
		}
		if !write(b) {
			return st.Close()
		}
	}
}

// abort cuts the response short: an HTTP/1.1 connection is closed without
// the last chunk, an HTTP/2 stream is reset.
func abort(rc *http.ResponseController) {
	if conn, _, err := rc.Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler) // net/http resets the stream and logs nothing
}

// streamCollector exports the plugins' streams: a gauge of those open and
// a counter of those ended, by how they ended.
type streamCollector struct{ plugins *supervisor.Supervisor }

var (
	streamsOpenDesc = prometheus.NewDesc("edulure_plugin_streams_open",
		"Streamed answers (Server-Sent Events, downloads) open now, by plugin.", []string{"plugin"}, nil)
	streamsEndedDesc = prometheus.NewDesc("edulure_plugin_streams_ended_total",
		"Streamed answers ended, by plugin and how they ended: complete, client_gone, idle_timeout, max_duration, plugin_stopped, plugin_error.", []string{"plugin", "reason"}, nil)
)

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- streamsOpenDesc
	ch <- streamsEndedDesc
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.plugins.StreamStats() {
		ch <- prometheus.MustNewConstMetric(streamsOpenDesc, prometheus.GaugeValue, float64(st.Open), st.Plugin)
		for _, end := range supervisor.StreamEnds {
			ch <- prometheus.MustNewConstMetric(streamsEndedDesc, prometheus.CounterValue, float64(st.Ended[end]), st.Plugin, string(end))
		}
	}
}

// streamedResponse documents a streamed route's success answer: its media
// type (text/event-stream unless the route names another), sent as it is
// made.
func streamedResponse(op *openapi3.Operation, r *supervisor.Route, status int) *openapi3.Response {
	op.Extensions["x-stream"] = true
	ct := r.StreamContentType
	if ct == "" {
		ct = sdk.SSEContentType
	}
	body := openapi3.NewStringSchema()
	desc := http.StatusText(status) + ": the body is streamed as the plugin writes it (chunked, each part flushed)."
	if ct == sdk.SSEContentType {
		body.Description = "Server-Sent Events (WHATWG HTML event stream). A client that reconnects sends the last event's ID as Last-Event-ID."
		desc += " Server-Sent Events; reconnect with Last-Event-ID to resume."
	} else {
		body.Format = "binary"
	}
	return openapi3.NewResponse().WithDescription(desc).WithContent(openapi3.Content{ct: openapi3.NewMediaType().WithSchema(body)})
}
