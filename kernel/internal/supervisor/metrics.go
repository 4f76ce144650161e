package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// metrics are the kernel's per-plugin series. Every label value comes from
// a bounded set: plugin names and route templates of the manifests, HTTP
// status codes, the states of State, and fixed reasons.
//
// Still to come: the bytes each plugin stores (edulure_plugin_storage_bytes
// by plugin), with the object storage host service.
type metrics struct {
	requests *prometheus.CounterVec   // plugin, route, code
	duration *prometheus.HistogramVec // plugin, route
	scrape   *prometheus.CounterVec   // plugin, reason: a plugin's own metrics left out
}

func newMetrics(s *Supervisor, reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edulure_plugin_requests_total",
			Help: "Requests forwarded to plugins, by plugin, route template and the status the client got (503/504/502 when the plugin was unavailable, timed out or failed).",
		}, []string{"plugin", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edulure_plugin_request_duration_seconds",
			Help:    "Time from forwarding a request to a plugin to its answer (the gRPC crossing and the handler), by plugin and route template.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"plugin", "route"}),
		scrape: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edulure_plugin_metrics_errors_total",
			Help: "A plugin's own metrics left out of /metrics, by plugin and reason: timeout, error (the call failed), format (unreadable), name (a family not named <plugin>_..., or a reserved one), limit (more series than allowed).",
		}, []string{"plugin", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.scrape, stateCollector{s}} {
			reg.MustRegister(c)
		}
	}
	return m
}

// observe records one forwarded request.
func (m *metrics) observe(t Target, start time.Time, code int) {
	m.requests.WithLabelValues(t.Plugin, t.Route.Key, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(t.Plugin, t.Route.Key).Observe(time.Since(start).Seconds())
}

var states = []State{StateStarting, StateRunning, StateRestarting, StateQuarantined, StateFailed, StateStopped}

var (
	stateDesc    = prometheus.NewDesc("edulure_plugin_state", "The plugin's state: 1 for the state it is in, 0 for the others.", []string{"plugin", "state"}, nil)
	restartsDesc = prometheus.NewDesc("edulure_plugin_restarts_total", "Times the plugin was restarted after a crash or failed health checks.", []string{"plugin"}, nil)
	inFlightDesc = prometheus.NewDesc("edulure_plugin_requests_in_flight", "Requests the plugin is handling now.", []string{"plugin"}, nil)
)

// stateCollector reports each plugin's state, restarts and requests in
// flight as /metrics is read.
type stateCollector struct{ s *Supervisor }

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- restartsDesc
	ch <- inFlightDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Statuses() {
		for _, state := range states {
			v := 0.0
			if st.State == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, st.Name, string(state))
		}
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(st.Restarts), st.Name)
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(st.InFlight), st.Name)
	}
}

// ReservedMetricPrefixes are the metric name prefixes of the kernel's own
// series (and of the Go and process collectors): a plugin's family with one
// of them is left out even when the plugin's name would allow it.
var ReservedMetricPrefixes = []string{"edulure_", "go_", "process_", "promhttp_"}

// maxPluginSeries bounds the series one plugin adds to /metrics.
const maxPluginSeries = 10_000

// maxMetricsBody bounds the metrics one plugin answers, in bytes.
const maxMetricsBody = 16 << 20

// PluginMetrics gathers the running plugins' own metrics (GetMetrics), all
// at once and each within Options.MetricsTimeout, so that a hung plugin
// delays /metrics by that much at most and costs only its own series. Each
// series gets the label plugin="<name>" (a label of that name the plugin
// set becomes exported_plugin). A family is kept only if its name starts
// with the plugin's name and an underscore and has none of
// ReservedMetricPrefixes (the kernel's): no plugin can overwrite the
// kernel's series or another plugin's. What is left out is counted in
// edulure_plugin_metrics_errors_total; it is never an error of the scrape.
func (s *Supervisor) PluginMetrics(ctx context.Context) []*dto.MetricFamily {
	s.mu.RLock()
	type running struct {
		name string
		inst *instance
	}
	var targets []running
	for name, sl := range s.slots {
		if inst := sl.inst.Load(); inst != nil && inst.acquire() {
			targets = append(targets, running{name, inst})
		}
	}
	s.mu.RUnlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.MetricsTimeout)
	defer cancel()
	results := make([][]*dto.MetricFamily, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer t.inst.inflight.Done()
			fams, reason, err := s.pluginMetrics(ctx, t.name, t.inst)
			if reason != "" {
				s.metrics.scrape.WithLabelValues(t.name, reason).Inc()
				s.logger.Debug("left out a plugin's metrics", "plugin", t.name, "reason", reason, "error", err)
			}
			results[i] = fams
		}()
	}
	wg.Wait()
	byName := map[string]*dto.MetricFamily{}
	var out []*dto.MetricFamily
	for i, fams := range results {
		for _, f := range fams {
			prev, ok := byName[f.GetName()]
			switch {
			case !ok:
				byName[f.GetName()] = f
				out = append(out, f)
			case prev.GetType() == f.GetType():
				// Plugins "a" and "a_b" may both name a family a_b_x; the
				// plugin label keeps their series apart.
				prev.Metric = append(prev.Metric, f.Metric...)
			default:
				s.metrics.scrape.WithLabelValues(targets[i].name, "name").Inc()
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// pluginMetrics reads one plugin's metrics and relabels them; reason says
// why some or all were left out ("" when none was).
func (s *Supervisor) pluginMetrics(ctx context.Context, plugin string, inst *instance) ([]*dto.MetricFamily, string, error) {
	resp, err := inst.rpc.GetMetrics(ctx, &pluginv1.GetMetricsRequest{})
	switch {
	case status.Code(err) == codes.Unimplemented:
		return nil, "", nil // a plugin built before v1.2: no metrics of its own
	case status.Code(err) == codes.DeadlineExceeded || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, "timeout", err
	case err != nil:
		return nil, "error", err
	case len(resp.Body) == 0:
		return nil, "", nil
	case len(resp.Body) > maxMetricsBody:
		return nil, "limit", fmt.Errorf("%d bytes of metrics", len(resp.Body))
	}
	format := expfmt.Format(resp.ContentType)
	if ft := format.FormatType(); ft != expfmt.TypeProtoDelim && ft != expfmt.TypeTextPlain {
		return nil, "format", fmt.Errorf("content type %q", resp.ContentType)
	}
	dec := expfmt.NewDecoder(bytes.NewReader(resp.Body), format)
	var out []*dto.MetricFamily
	reason, series := "", 0
	for {
		f := &dto.MetricFamily{}
		if err := dec.Decode(f); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return out, "format", err
		}
		if !ownFamily(plugin, f.GetName()) {
			reason = "name"
			continue
		}
		if series += len(f.Metric); series > maxPluginSeries {
			return out, "limit", fmt.Errorf("more than %d series", maxPluginSeries)
		}
		for _, m := range f.Metric {
			relabel(m, plugin)
		}
		out = append(out, f)
	}
	return out, reason, nil
}

func ownFamily(plugin, name string) bool {
	if !strings.HasPrefix(name, plugin+"_") {
		return false
	}
	for _, p := range ReservedMetricPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// relabel adds plugin="<name>" to m, renaming a label "plugin" of the
// plugin's own to "exported_plugin" (Prometheus's convention for a
// clashing target label), and keeps the labels sorted.
func relabel(m *dto.Metric, plugin string) {
	exported := slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == "exported_plugin" })
	m.Label = slices.DeleteFunc(m.Label, func(l *dto.LabelPair) bool {
		if l.GetName() != "plugin" {
			return false
		}
		l.Name = proto.String("exported_plugin")
		return exported // two labels of one name would make the series invalid
	})
	m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("plugin"), Value: proto.String(plugin)})
	slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
}
