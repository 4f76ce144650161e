package telemetry_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/sdk/telemetry"
	"github.com/edulure/edulure/sdk/telemetry/otlptest"
)

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Tracing is off unless an exporter is configured, and an exporter the
// kernel cannot run is an error rather than silence.
func TestEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
		err  string
	}{
		{name: "nothing set", env: nil, on: false},
		{name: "an endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, on: true},
		{name: "a traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, on: true},
		{name: "otlp to the default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, on: false},
		{name: "disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, on: false},
		{name: "an unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "zipkin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, err := telemetry.Enabled(getenv(tc.env))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.on, on)
		})
	}
}

// Bad settings are refused naming the variable, without repeating a
// header's value (it may be a credential).
func TestNewRefusesBadSettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}
	for name, tc := range map[string]struct{ k, v, want string }{
		"protocol": {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		"sampler":  {"OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER"},
		"ratio":    {"OTEL_TRACES_SAMPLER_ARG", "2", "OTEL_TRACES_SAMPLER_ARG"},
		"delay":    {"OTEL_BSP_SCHEDULE_DELAY", "soon", "OTEL_BSP_SCHEDULE_DELAY"},
		"headers":  {"OTEL_EXPORTER_OTLP_HEADERS", "s3cr3t-token", "key=value"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			env[tc.k] = tc.v
			_, err := telemetry.New(context.Background(), getenv(env), telemetry.Service{Name: "x"})
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

// Configured by OTEL_* alone, spans reach an OTLP/HTTP collector with the
// service's name.
func TestNewExportsOverOTLP(t *testing.T) {
	t.Parallel()
	col := otlptest.New(t)
	env := col.Env()
	env["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=test"
	tr, err := telemetry.New(context.Background(), getenv(env), telemetry.Service{Name: "edulure", Version: "1.2.3"})
	require.NoError(t, err)
	require.True(t, tr.Enabled)
	_, span := tr.Provider.Tracer("test").Start(context.Background(), "hello")
	span.End()
	require.NoError(t, tr.Shutdown(context.Background())) // flushes
	spans := col.Spans()
	require.Len(t, spans, 1)
	require.Equal(t, "hello", spans[0].Name)
	require.Equal(t, "edulure", spans[0].Service)
}

// Off, the provider records nothing at all.
func TestOffRecordsNothing(t *testing.T) {
	t.Parallel()
	tr, err := telemetry.New(context.Background(), getenv(nil), telemetry.Service{Name: "edulure"})
	require.NoError(t, err)
	require.False(t, tr.Enabled)
	_, span := tr.Provider.Tracer("test").Start(context.Background(), "hello")
	require.False(t, span.IsRecording())
	require.NoError(t, tr.Shutdown(context.Background()))
}

// Inject and Extract carry a span context through the protocol's fields.
func TestTraceparentRoundTrip(t *testing.T) {
	t.Parallel()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	parent, _ := telemetry.Inject(ctx)
	require.Equal(t, "00-01020300000000000000000000000000-0405060000000000-01", parent)
	got := trace.SpanContextFromContext(telemetry.Extract(context.Background(), parent, ""))
	require.Equal(t, sc.TraceID(), got.TraceID())
	require.Equal(t, sc.SpanID(), got.SpanID())
	require.True(t, got.IsRemote())
	require.Equal(t, sc.TraceID(), telemetry.SpanContext(parent).TraceID())

	p, s := telemetry.Inject(context.Background())
	require.Empty(t, p+s, "no span, nothing to carry")
	require.False(t, telemetry.SpanContext("garbage").IsValid())
	require.Equal(t, context.Background(), telemetry.Extract(context.Background(), "", ""))
}

// A plugin gets the kernel's OTEL_* settings, under a service name of its own.
func TestPluginEnv(t *testing.T) {
	t.Parallel()
	require.Nil(t, telemetry.PluginEnv(map[string]string{"OTEL_SERVICE_NAME": "lms"}, "edulure", "courses"), "no tracing, nothing passed")
	env := telemetry.PluginEnv(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SERVICE_NAME": "lms", "OTEL_TRACES_SAMPLER": "always_on",
	}, "edulure", "courses")
	require.ElementsMatch(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318", "OTEL_TRACES_SAMPLER=always_on", "OTEL_SERVICE_NAME=lms-plugin-courses"}, env)
}
