package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/edulure/edulure/kernel/internal/problem"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edulure_http_requests_total", Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edulure_http_request_duration_seconds", Help: "HTTP request latency by method, route template and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
				return nil, err
			}
		}
	}
	return m, nil
}

// knownMethods are the methods labelled by name; any other method a client
// makes up is labelled "OTHER", so junk requests cannot add series.
var knownMethods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodOptions: http.MethodOptions, http.MethodConnect: http.MethodConnect, http.MethodTrace: http.MethodTrace,
}

// observe records a request under bounded labels: a known method or
// "OTHER", the matched route template (never the raw path) or "unmatched",
// and the status code.
func (m *metrics) observe(c echo.Context, start time.Time) {
	route := c.Path()
	if route == "" {
		route = "unmatched"
	}
	method, ok := knownMethods[c.Request().Method]
	if !ok {
		method = "OTHER"
	}
	status := strconv.Itoa(c.Response().Status)
	m.requests.WithLabelValues(method, route, status).Inc()
	m.duration.WithLabelValues(method, route, status).Observe(time.Since(start).Seconds())
}

// metricsGatherer is what /metrics shows: the running plugins' own
// metrics, each labelled with its plugin and none named like the kernel's
// (supervisor.PluginMetrics), and the kernel's registry, read second so
// that what the first part counted (a plugin that timed out) shows at once.
type metricsGatherer struct{ s *Server }

func (g metricsGatherer) Gather() ([]*dto.MetricFamily, error) {
	plugins := g.s.Plugins.PluginMetrics(context.Background())
	fams, err := g.s.Registry.Gather()
	kernel := make(map[string]bool, len(fams))
	for _, f := range fams {
		kernel[f.GetName()] = true
	}
	for _, f := range plugins {
		if !kernel[f.GetName()] { // the reserved prefixes keep them apart; never two families of one name
			fams = append(fams, f)
		}
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].GetName() < fams[j].GetName() })
	return fams, err
}

func (s *Server) metricsHandler(c echo.Context) error {
	if err := s.metricsAccess(c); err != nil {
		return err
	}
	s.metricsHTTP.ServeHTTP(c.Response(), c.Request())
	return nil
}

// metricsAccess enforces the /metrics settings: the client's address must
// be in EDULURE_METRICS_ALLOW when it is set, and the request must carry
// the bearer token of EDULURE_METRICS_TOKEN or the basic credentials of
// EDULURE_METRICS_BASIC_AUTH when either is set. Secrets are compared in
// constant time (of their SHA-256, so not even their length shows).
func (s *Server) metricsAccess(c echo.Context) error {
	cfg := s.Config
	if len(cfg.MetricsAllow) > 0 {
		ip := net.ParseIP(c.RealIP())
		allowed := false
		for _, n := range cfg.MetricsAllow {
			allowed = allowed || (ip != nil && n.Contains(ip))
		}
		if !allowed {
			return problem.New(http.StatusForbidden, "metrics-forbidden", "this address may not read /metrics (EDULURE_METRICS_ALLOW)")
		}
	}
	if cfg.MetricsToken == "" && cfg.MetricsBasic == "" {
		return nil
	}
	if tok, ok := bearer(c); ok && cfg.MetricsToken != "" && secretEqual(tok, cfg.MetricsToken) {
		return nil
	}
	if user, pass, ok := c.Request().BasicAuth(); ok && cfg.MetricsBasic != "" && secretEqual(user+":"+pass, cfg.MetricsBasic) {
		return nil
	}
	var challenges []string
	if cfg.MetricsToken != "" {
		challenges = append(challenges, `Bearer realm="edulure-metrics"`)
	}
	if cfg.MetricsBasic != "" {
		challenges = append(challenges, `Basic realm="edulure-metrics"`)
	}
	for _, ch := range challenges {
		c.Response().Header().Add("WWW-Authenticate", ch)
	}
	return unauthorized("metrics-credentials", "/metrics needs the credentials the operator configured (EDULURE_METRICS_TOKEN as a bearer token, or EDULURE_METRICS_BASIC_AUTH)")
}

func secretEqual(given, want string) bool {
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
