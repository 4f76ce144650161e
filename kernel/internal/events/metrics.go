package events

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the deliveries' series, by subscriber (a plugin name) and a
// fixed set of outcomes.
type metrics struct {
	deliveries *prometheus.CounterVec   // subscriber, outcome
	lag        *prometheus.HistogramVec // subscriber
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edulure_event_deliveries_total",
			Help: "Event deliveries settled, by subscriber and outcome: delivered, failed (to be retried), dead (attempts used up), skipped (the plugin is disabled for the institution).",
		}, []string{"subscriber", "outcome"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edulure_event_delivery_lag_seconds",
			Help:    "Time from an event's publication to its successful delivery, by subscriber.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"subscriber"}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.lag)
	}
	return m
}

func (m *metrics) settled(subscriber, outcome string, n int) {
	if n > 0 {
		m.deliveries.WithLabelValues(subscriber, outcome).Add(float64(n))
	}
}

func (m *metrics) delivered(subscriber string, occurred time.Time) {
	m.lag.WithLabelValues(subscriber).Observe(max(time.Since(occurred).Seconds(), 0))
}
