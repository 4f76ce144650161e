package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the job attempts' series, by plugin and job name (both from
// the manifests) and a fixed set of outcomes.
type metrics struct {
	attempts *prometheus.CounterVec   // plugin, job, outcome
	duration *prometheus.HistogramVec // plugin, job
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edulure_job_attempts_total",
			Help: "Job attempts finished, by plugin, job and outcome: succeeded, failed, timed_out, skipped (the plugin is disabled for the institution).",
		}, []string{"plugin", "job", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edulure_job_attempt_duration_seconds",
			Help:    "Time a job attempt took in its plugin, by plugin and job.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"plugin", "job"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.duration)
	}
	return m
}

func (m *metrics) attempt(plugin, job, outcome string, took time.Duration) {
	m.attempts.WithLabelValues(plugin, job, outcome).Inc()
	if took > 0 {
		m.duration.WithLabelValues(plugin, job).Observe(took.Seconds())
	}
}
