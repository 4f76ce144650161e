package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
