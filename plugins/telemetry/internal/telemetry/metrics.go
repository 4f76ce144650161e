package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the plugin's Prometheus series, on the kernel's /metrics
// with plugin="telemetry". No label holds an institution or a person.
type metrics struct {
	statements   *prometheus.CounterVec // telemetry_statements_total{outcome,reason}
	delay        prometheus.Histogram   // received − occurred
	newest       prometheus.Gauge       // the newest statement stored, unix seconds
	consents     *prometheus.CounterVec // telemetry_consent_decisions_total{decision}
	exports      *prometheus.CounterVec // telemetry_exports_total{outcome}
	exportLag    prometheus.Histogram   // an hour's end → its export written
	rollups      prometheus.Counter     // hours recomputed
	lastExported prometheus.Gauge       // the end of the newest hour exported, unix seconds
}

func newMetrics() *metrics {
	return &metrics{
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telemetry_statements_total",
			Help: "Statements received, by outcome (stored, duplicate, conflict, refused) and the reason of a refusal.",
		}, []string{"outcome", "reason"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "telemetry_ingest_delay_seconds",
			Help:    "Time from a stored statement's timestamp to its arrival.",
			Buckets: []float64{0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400},
		}),
		newest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "telemetry_newest_statement_timestamp_seconds",
			Help: "When the newest statement was stored (Unix time): now minus it is the ingestion lag.",
		}),
		consents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telemetry_consent_decisions_total",
			Help: "Consent decisions recorded, granted or withdrawn.",
		}, []string{"decision"}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telemetry_exports_total",
			Help: "Hours exported: written, unchanged (a re-run), rewritten (after an erasure) or failed.",
		}, []string{"outcome"}),
		exportLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "telemetry_export_lag_seconds",
			Help:    "Time from the end of an hour to its export being written.",
			Buckets: []float64{60, 300, 900, 1800, 3600, 2 * 3600, 6 * 3600, 86400},
		}),
		rollups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "telemetry_rollup_hours_total",
			Help: "Hours whose rollups were recomputed.",
		}),
		lastExported: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "telemetry_export_newest_hour_end_seconds",
			Help: "The end of the newest hour exported (Unix time): now minus it is the export lag.",
		}),
	}
}

func (m *metrics) register(r registerer) error {
	if r == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.statements, m.delay, m.newest, m.consents, m.exports, m.exportLag, m.rollups, m.lastExported} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
