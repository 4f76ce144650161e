package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Variables are the OTEL_* settings read here. The kernel passes those it
// was given on to every plugin process (which gets no other environment),
// so a plugin exports its spans where the kernel does.
var Variables = []string{
	"OTEL_SDK_DISABLED",
	"OTEL_TRACES_EXPORTER",
	"OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER",
	"OTEL_TRACES_SAMPLER_ARG",
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_TIMEOUT",
	"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_KEY",
	"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
	"OTEL_BSP_SCHEDULE_DELAY",
	"OTEL_BSP_EXPORT_TIMEOUT",
	"OTEL_BSP_MAX_QUEUE_SIZE",
	"OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
}

// Enabled reports whether getenv configures a trace exporter. Tracing is
// off by default: on when OTEL_TRACES_EXPORTER is "otlp", or when it is
// unset and an OTLP endpoint is; off when OTEL_TRACES_EXPORTER is "none"
// or OTEL_SDK_DISABLED is true. Any other exporter is an error.
func Enabled(getenv func(string) string) (bool, error) {
	if b, _ := strconv.ParseBool(strings.TrimSpace(getenv("OTEL_SDK_DISABLED"))); b {
		return false, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
		return first(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") != "", nil
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", exp)
	}
}

// Service names the process in its spans' resource.
type Service struct {
	Name      string // service.name unless OTEL_SERVICE_NAME sets one
	Version   string // service.version
	Namespace string // service.namespace; "" for none
}

// Tracing is a process's tracer provider and what stops it.
type Tracing struct {
	// Provider makes the process's tracers: a no-op one (nothing recorded,
	// nothing exported) when tracing is off.
	Provider trace.TracerProvider
	// Enabled is false when Provider is the no-op one.
	Enabled  bool
	shutdown func(context.Context) error
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Off is tracing turned off.
func Off() *Tracing { return &Tracing{Provider: noop.NewTracerProvider()} }

// New sets up tracing as getenv says (os.Getenv in production; the
// standard OTEL_* variables, see Enabled): an OTLP exporter over HTTP
// (OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf, the default) or gRPC (grpc),
// batched, with the sampler of OTEL_TRACES_SAMPLER (parentbased_always_on
// by default), and W3C trace context as the one propagation format.
func New(ctx context.Context, getenv func(string) string, svc Service) (*Tracing, error) {
	on, err := Enabled(getenv)
	if err != nil || !on {
		return Off(), err
	}
	exp, err := exporter(ctx, getenv)
	if err != nil {
		return nil, err
	}
	sampler, err := samplerFrom(getenv)
	if err != nil {
		return nil, err
	}
	res, err := resourceFrom(getenv, svc)
	if err != nil {
		return nil, err
	}
	var bsp []sdktrace.BatchSpanProcessorOption
	if d, ok, err := millis(getenv, "OTEL_BSP_SCHEDULE_DELAY"); err != nil {
		return nil, err
	} else if ok {
		bsp = append(bsp, sdktrace.WithBatchTimeout(d))
	}
	if d, ok, err := millis(getenv, "OTEL_BSP_EXPORT_TIMEOUT"); err != nil {
		return nil, err
	} else if ok {
		bsp = append(bsp, sdktrace.WithExportTimeout(d))
	}
	for name, opt := range map[string]func(int) sdktrace.BatchSpanProcessorOption{
		"OTEL_BSP_MAX_QUEUE_SIZE": sdktrace.WithMaxQueueSize, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": sdktrace.WithMaxExportBatchSize,
	} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("%s: must be a positive integer, got %q", name, v)
			}
			bsp = append(bsp, opt(n))
		}
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, bsp...),
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
	)
	return &Tracing{Provider: tp, Enabled: true, shutdown: tp.Shutdown}, nil
}

// exporter is the OTLP exporter of the protocol getenv names. Settings not
// handled here (certificates) the exporter reads from the environment.
func exporter(ctx context.Context, getenv func(string) string) (*otlptrace.Exporter, error) {
	protocol := first(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") // used as it is
	if endpoint == "" {
		if base := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); base != "" {
			endpoint = base
			if protocol != "grpc" { // the signal's path goes after the base URL
				endpoint = strings.TrimRight(base, "/") + "/v1/traces"
			}
		}
	}
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %q is not an http:// or https:// URL", endpoint)
		}
	}
	headers, err := parseHeaders(first(getenv, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"))
	if err != nil {
		return nil, err
	}
	timeout, hasTimeout, err := millis(getenv, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
	if err != nil {
		return nil, err
	}
	compression := first(getenv, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
	if compression != "" && compression != "gzip" && compression != "none" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_COMPRESSION: %q is not supported (gzip or none)", compression)
	}
	switch protocol {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		if endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		if hasTimeout {
			opts = append(opts, otlptracehttp.WithTimeout(timeout))
		}
		if compression == "gzip" {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		return otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		if hasTimeout {
			opts = append(opts, otlptracegrpc.WithTimeout(timeout))
		}
		if compression == "gzip" {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		return otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (http/protobuf or grpc)", protocol)
	}
}

func samplerFrom(getenv func(string) string) (sdktrace.Sampler, error) {
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1, got %q", arg)
		}
		return r, nil
	}
	switch s := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")); s {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if s == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not supported", s)
	}
}

func resourceFrom(getenv func(string) string, svc Service) (*resource.Resource, error) {
	attrs := map[string]string{}
	if raw := strings.TrimSpace(getenv("OTEL_RESOURCE_ATTRIBUTES")); raw != "" {
		kv, err := parseHeaders(raw)
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		attrs = kv
	}
	set := func(k, v string) {
		if v != "" {
			attrs[k] = v
		}
	}
	set("service.name", svc.Name)
	set("service.version", svc.Version)
	set("service.namespace", svc.Namespace)
	set("service.name", strings.TrimSpace(getenv("OTEL_SERVICE_NAME")))
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	kvs := make([]attribute.KeyValue, len(keys))
	for i, k := range keys {
		kvs[i] = attribute.String(k, attrs[k])
	}
	return resource.NewSchemaless(kvs...), nil
}

// parseHeaders reads "k1=v1,k2=v2" with URL-encoded values (the format of
// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES).
func parseHeaders(raw string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(raw) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(raw, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			// The value may be a credential: never repeat it.
			return nil, errors.New("each entry must be key=value")
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("the value of %q is not URL-encoded", k)
		}
		out[k] = dv
	}
	return out, nil
}

// millis reads the first of names that is set as milliseconds.
func millis(getenv func(string) string, names ...string) (time.Duration, bool, error) {
	for _, name := range names {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, false, fmt.Errorf("%s: must be a whole number of milliseconds, got %q", name, v)
			}
			return time.Duration(n) * time.Millisecond, true, nil
		}
	}
	return 0, false, nil
}

func first(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// PluginEnv is the environment a plugin process gets for tracing, from the
// kernel's settings in vars: each of Variables that is set, and
// OTEL_SERVICE_NAME "<kernel's service name>-plugin-<plugin>", so that the
// plugin's spans name it. Nil when vars configure no tracing.
func PluginEnv(vars map[string]string, kernelService, plugin string) []string {
	get := func(k string) string { return vars[k] }
	if on, err := Enabled(get); err != nil || !on {
		return nil
	}
	var out []string
	for _, k := range Variables {
		if v, ok := vars[k]; ok && v != "" && k != "OTEL_SERVICE_NAME" {
			out = append(out, k+"="+v)
		}
	}
	if s := strings.TrimSpace(vars["OTEL_SERVICE_NAME"]); s != "" {
		kernelService = s
	}
	return append(out, "OTEL_SERVICE_NAME="+kernelService+"-plugin-"+plugin)
}
