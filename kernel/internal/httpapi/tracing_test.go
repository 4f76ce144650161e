package httpapi_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/sdk/telemetry"
	"github.com/edulure/edulure/sdk/telemetry/otlptest"
)

// span is a span of either process, as the test compares them.
type span struct {
	from                    string // "kernel" or the plugin's service name
	name, trace, id, parent string
	links                   []string // linked trace IDs
	attrs                   map[string]string
}

// tracedKernel starts a kernel whose spans go to an in-memory exporter and
// whose plugins, configured by the OTEL_* settings the kernel passes them,
// export theirs to an OTLP collector running in the test.
func tracedKernel(t *testing.T, blocks ...pluginBlock) (*testBundle, *tracetest.InMemoryExporter, *otlptest.Collector) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	col := otlptest.New(t)
	env := []string{"EDULURE_PLUGINS_FILE", writePluginsFile(t, "", blocks...)}
	for k, v := range col.Env() {
		env = append(env, k, v)
	}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.Discard})
	b := setupKernel(t, log, []app.Option{app.WithTracing(&telemetry.Tracing{Provider: tp, Enabled: true})}, env...)
	b.allow5xx = true
	return b, exp, col
}

// spans merges the kernel's spans and the plugins'.
func allSpans(exp *tracetest.InMemoryExporter, col *otlptest.Collector) []span {
	var out []span
	for _, s := range exp.GetSpans() {
		sp := span{from: "kernel", name: s.Name, trace: s.SpanContext.TraceID().String(), id: s.SpanContext.SpanID().String(), attrs: map[string]string{}}
		if s.Parent.IsValid() {
			sp.parent = s.Parent.SpanID().String()
		}
		for _, l := range s.Links {
			sp.links = append(sp.links, l.SpanContext.TraceID().String())
		}
		for _, a := range s.Attributes {
			sp.attrs[string(a.Key)] = a.Value.Emit()
		}
		out = append(out, sp)
	}
	for _, s := range col.Spans() {
		out = append(out, span{from: s.Service, name: s.Name, trace: s.TraceID, id: s.SpanID, parent: s.ParentID, links: s.Links, attrs: s.Attrs})
	}
	return out
}

func find(spans []span, ok func(span) bool) (span, bool) {
	for _, s := range spans {
		if ok(s) {
			return s, true
		}
	}
	return span{}, false
}

func named(from, name string) func(span) bool {
	return func(s span) bool { return s.from == from && s.name == name }
}

// waitSpans waits until every condition finds a span (the plugins export
// in batches) and returns the spans seen.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, col *otlptest.Collector, conds ...func([]span) bool) []span {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		spans := allSpans(exp, col)
		all := true
		for _, c := range conds {
			all = all && c(spans)
		}
		if all {
			return spans
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.from+": "+s.name)
			}
			t.Fatalf("spans did not arrive; got:\n%s", strings.Join(names, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// One plugin request is one trace: the client's traceparent is honoured,
// and the kernel's spans (the request, authentication, the OPA decision,
// the gRPC crossing), the plugin's span of its handler and the SQL spans of
// its transaction all hang under the kernel's request span. The event the
// request published and the job it triggered are traced too, each in a
// trace of its own linked to the request's, with the plugin's spans for
// them under the kernel's.
func TestOneTraceThroughKernelPluginAndSQL(t *testing.T) {
	t.Parallel()
	b, exp, col := tracedKernel(t, pluginBlock{variant: probe}, pluginBlock{variant: sink})
	a := b.institution("alpha")
	const client, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	r := b.do("POST", "/api/v1/probe/items", a.admin, map[string]any{"name": "traced"},
		"traceparent", "00-"+client+"-"+clientSpan+"-01")
	require.Equal(t, 201, r.Status, "%s", r.Raw)

	const plugin, subscriber = "edulure-plugin-probe", "edulure-plugin-sink"
	inTrace := func(trace string, ok func(span) bool) func([]span) bool {
		return func(spans []span) bool {
			_, found := find(spans, func(s span) bool { return s.trace == trace && ok(s) })
			return found
		}
	}
	isSQL := func(from, text string) func(span) bool {
		return func(s span) bool { return s.from == from && strings.Contains(s.attrs["db.query.text"], text) }
	}
	spans := waitSpans(t, exp, col,
		inTrace(client, named("kernel", "POST /api/v1/probe/items")),
		inTrace(client, named(plugin, "POST /api/v1/probe/items")),
		inTrace(client, isSQL(plugin, "INSERT INTO items")),
		inTrace(client, isSQL(plugin, "INSERT INTO edulure_outbox")),
	)

	// One trace, one root: every span of it leads up to the kernel's
	// request span, whose parent is the client's.
	byID := map[string]span{}
	var trace []span
	for _, s := range spans {
		if s.trace == client {
			byID[s.id] = s
			trace = append(trace, s)
		}
	}
	root, ok := find(trace, named("kernel", "POST /api/v1/probe/items"))
	require.True(t, ok)
	require.Equal(t, clientSpan, root.parent, "the kernel continues the client's trace")
	require.Equal(t, "201", root.attrs["http.response.status_code"])
	for _, s := range trace {
		at, hops := s, 0
		for at.id != root.id {
			p, ok := byID[at.parent]
			require.True(t, ok, "span %s %q: its parent %s is not in the trace", s.from, s.name, at.parent)
			at, hops = p, hops+1
			require.Less(t, hops, 20)
		}
	}
	parentOf := func(s span) span { return byID[s.parent] }
	authn, ok := find(trace, named("kernel", "authenticate"))
	require.True(t, ok, "authentication has a span")
	require.Equal(t, root.id, authn.parent)
	authz, ok := find(trace, func(s span) bool { return s.name == "authorize" && s.attrs["edulure.permission"] == "probe.item.write" })
	require.True(t, ok, "the OPA decision has a span")
	require.Equal(t, root.id, authz.parent)
	require.Equal(t, "true", authz.attrs["edulure.allowed"])
	crossing, ok := find(trace, named("kernel", "edulure.plugin.v1.Plugin/HandleHTTP"))
	require.True(t, ok, "the gRPC crossing has a span")
	require.Equal(t, root.id, crossing.parent)
	handler, _ := find(trace, named(plugin, "POST /api/v1/probe/items"))
	require.Equal(t, crossing.id, handler.parent, "the plugin's handler runs under the crossing")
	insert, _ := find(trace, isSQL(plugin, "INSERT INTO items"))
	require.Equal(t, handler.id, insert.parent, "the plugin's SQL runs under its handler")
	require.Equal(t, "INSERT", insert.name)
	require.Equal(t, "postgresql", insert.attrs["db.system.name"])
	require.Equal(t, handler.id, parentOf(insert).id)

	// A host call the plugin makes for a request joins the request's trace.
	const hostTrace = "1af7651916cd43dd8448eb211c80319d"
	r = b.do("GET", "/api/v1/probe/host", a.admin, nil, "traceparent", "00-"+hostTrace+"-"+clientSpan+"-01")
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	spans = waitSpans(t, exp, col, inTrace(hostTrace, named("kernel", "edulure.plugin.v1.Host/WriteAudit")), inTrace(hostTrace, named(plugin, "GET /api/v1/probe/host")))
	hostHandler, _ := find(spans, func(s span) bool { return s.trace == hostTrace && s.from == plugin })
	audit, _ := find(spans, func(s span) bool { return s.trace == hostTrace && s.name == "edulure.plugin.v1.Host/WriteAudit" })
	require.Equal(t, hostHandler.id, audit.parent, "the kernel serves the host call under the plugin's handler span")
	_, ok = find(spans, func(s span) bool { return s.parent == audit.id && s.attrs["db.system.name"] == "postgresql" })
	require.True(t, ok, "and its SQL under that")

	// The event log and the job run keep the publishing request's context.
	require.True(t, strings.HasPrefix(storedTraceparent(t, b, "probe.item.created.v1"), "00-"+client+"-"))

	// The delivery of the published event, and the job it triggered: each a
	// trace of its own, linked to the request's, the plugin's spans under
	// the kernel's.
	linked := func(name string) func(span) bool {
		return func(s span) bool {
			return s.from == "kernel" && s.name == name && len(s.links) > 0 && s.links[0] == client
		}
	}
	spans = waitSpans(t, exp, col,
		func(spans []span) bool { _, ok := find(spans, linked("deliver events")); return ok },
		func(spans []span) bool { _, ok := find(spans, linked("job probe/on-created")); return ok },
		func(spans []span) bool {
			_, ok := find(spans, named(subscriber, "event probe.item.created.v1"))
			return ok
		},
		func(spans []span) bool { _, ok := find(spans, named(plugin, "job on-created")); return ok },
	)
	byID = map[string]span{}
	for _, s := range spans {
		byID[s.id] = s
	}
	deliver, _ := find(spans, linked("deliver events"))
	require.Equal(t, "sink", deliver.attrs["edulure.subscriber"])
	require.Empty(t, deliver.parent, "a delivery is the root of its own trace")
	handled, _ := find(spans, named(subscriber, "event probe.item.created.v1"))
	require.Equal(t, deliver.trace, handled.trace)
	require.Equal(t, "edulure.plugin.v1.Plugin/HandleEvents", byID[handled.parent].name)
	require.Equal(t, deliver.id, byID[handled.parent].parent)
	_, ok = find(spans, func(s span) bool {
		return s.parent == handled.id && strings.Contains(s.attrs["db.query.text"], "edulure_inbox")
	})
	require.True(t, ok, "the handler's SQL runs under its span")

	job, _ := find(spans, linked("job probe/on-created"))
	ran, _ := find(spans, named(plugin, "job on-created"))
	require.Equal(t, job.trace, ran.trace)
	require.Equal(t, "edulure.plugin.v1.Plugin/RunJob", byID[ran.parent].name)
	require.Equal(t, job.id, byID[ran.parent].parent)
}

// Without OTEL_* settings the kernel traces nothing and passes nothing on:
// a client's traceparent is not taken up, and no event or job run stores
// one.
func TestTracingOffByDefault(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	require.False(t, b.kernel.Tracing.Enabled)
	a := b.institution("alpha")
	r := b.do("POST", "/api/v1/probe/items", a.admin, map[string]any{"name": "untraced"}, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, "", storedTraceparent(t, b, "probe.item.created.v1"))
}

// storedTraceparent waits for the event log to hold an event of typ and its
// job run, and returns their traceparent (the same for both).
func storedTraceparent(t *testing.T, b *testBundle, typ string) string {
	t.Helper()
	var event, run string
	require.Eventually(t, func() bool {
		err := b.pool.QueryRow(t.Context(), `SELECT e.traceparent, r.traceparent FROM kernel.events e
			JOIN kernel.job_runs r ON r.event_id = e.id WHERE e.type = $1`, typ).Scan(&event, &run)
		return err == nil
	}, 60*time.Second, 50*time.Millisecond)
	require.Equal(t, event, run, "an event-triggered run keeps its event's trace context")
	return event
}
