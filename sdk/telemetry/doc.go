// Package telemetry is the tracing plumbing the kernel and the SDK share:
// a tracer provider configured by the standard OTEL_* variables (off unless
// an exporter is configured), the W3C trace context carried by the plugin
// protocol's traceparent fields, and a pgx tracer that records each SQL
// statement as a span of the work that ran it.
//
// Plugin authors do not need it: a plugin's handlers run under the SDK's
// spans already, its database queries are traced, and Env.Tracer starts
// spans of its own (docs/plugins.md, "Metrics and traces").
package telemetry
