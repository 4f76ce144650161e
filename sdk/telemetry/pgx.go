package telemetry

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// QueryTracer records each SQL statement (a query, an exec, a batch) run
// under a recording span as a child span of it, named after the
// statement's first keyword ("SELECT", "INSERT", "BEGIN"...), with the
// statement's text (its parameters are not recorded) and, on failure, its
// SQLSTATE (not the message, which may quote values). A statement run
// outside a recording span (a background poll, or tracing off) costs one
// context lookup and records nothing. Spans are made by the provider of the
// parent span, so one pool serves traced and untraced callers alike.
//
// Set it as a pgx.ConnConfig's Tracer.
type QueryTracer struct{}

var (
	_ pgx.QueryTracer = QueryTracer{}
	_ pgx.BatchTracer = QueryTracer{}
)

// TracerName is the instrumentation scope of the spans made here.
const TracerName = "github.com/edulure/edulure/sdk/telemetry"

// maxStatement bounds the statement text recorded on a span.
const maxStatement = 2048

func startSQL(ctx context.Context, conn *pgx.Conn, name, sql string, attrs ...attribute.KeyValue) context.Context {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx
	}
	if len(sql) > maxStatement {
		sql = sql[:maxStatement] + "…"
	}
	attrs = append(attrs, attribute.String("db.system.name", "postgresql"), attribute.String("db.query.text", sql))
	if conn != nil {
		attrs = append(attrs, attribute.String("db.namespace", conn.Config().Database))
	}
	ctx, _ = parent.TracerProvider().Tracer(TracerName).Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

func endSQL(ctx context.Context, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if err != nil {
		code := "error"
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			code = pe.Code
			span.SetAttributes(attribute.String("db.response.status_code", pe.Code))
		}
		span.SetStatus(codes.Error, code)
	}
	span.End()
}

// TraceQueryStart implements pgx.QueryTracer.
func (QueryTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	return startSQL(ctx, conn, operation(data.SQL), data.SQL)
}

// TraceQueryEnd implements pgx.QueryTracer.
func (QueryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	endSQL(ctx, data.Err)
}

// TraceBatchStart implements pgx.BatchTracer: one span for the batch.
func (QueryTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	var sql strings.Builder
	n := 0
	if data.Batch != nil {
		n = data.Batch.Len()
		for i, q := range data.Batch.QueuedQueries {
			if i > 0 {
				sql.WriteString(";\n")
			}
			sql.WriteString(q.SQL)
			if sql.Len() > maxStatement {
				break
			}
		}
	}
	return startSQL(ctx, conn, "BATCH", sql.String(), attribute.Int("db.operation.batch.size", n))
}

// TraceBatchQuery implements pgx.BatchTracer.
func (QueryTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd implements pgx.BatchTracer.
func (QueryTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	endSQL(ctx, data.Err)
}

// operation is the statement's first keyword, upper-cased: a span name of
// bounded variety.
func operation(sql string) string {
	sql = strings.TrimLeftFunc(sql, unicode.IsSpace)
	for strings.HasPrefix(sql, "--") { // a leading comment line
		_, rest, ok := strings.Cut(sql, "\n")
		if !ok {
			return "SQL"
		}
		sql = strings.TrimLeftFunc(rest, unicode.IsSpace)
	}
	end := strings.IndexFunc(sql, func(r rune) bool { return !unicode.IsLetter(r) })
	if end < 0 {
		end = len(sql)
	}
	if end == 0 || end > 16 {
		return "SQL"
	}
	return strings.ToUpper(sql[:end])
}
