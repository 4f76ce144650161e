package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/kernel/internal/outbox"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// tickArgs is one firing of a job's schedule; its worker creates the runs.
type tickArgs struct {
	Plugin string    `json:"plugin"`
	Job    string    `json:"job"`
	Tick   time.Time `json:"tick"`
}

func (tickArgs) Kind() string { return "edulure.job_tick" }

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	s *Service
}

// Work creates the tick's runs: one for a platform job, one per institution
// that has the plugin enabled for a per-tenant job. The unique index on
// kernel.job_runs drops a tick some other replica already fanned out.
func (w *tickWorker) Work(ctx context.Context, job *river.Job[tickArgs]) error {
	a := job.Args
	p, j, ok := w.s.jobDef(a.Plugin, a.Job)
	if !ok || j.Schedule == "" {
		return nil // unloaded or unscheduled since
	}
	return pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		var runs []newRun
		if !j.PerTenant {
			runs = append(runs, newRun{plugin: a.Plugin, job: a.Job, trigger: "schedule", scheduledAt: a.Tick, requestedBy: "schedule"})
		} else {
			rows, err := tx.Query(ctx, `
				SELECT t.id FROM kernel.tenants t
				LEFT JOIN kernel.tenant_plugins tp ON tp.tenant_id = t.id AND tp.plugin = $1
				WHERE COALESCE(tp.enabled, $2)
				ORDER BY t.id`, a.Plugin, p.EnabledByDefault)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				return err
			}
			for _, id := range ids {
				runs = append(runs, newRun{plugin: a.Plugin, job: a.Job, tenant: &id, trigger: "schedule", scheduledAt: a.Tick, requestedBy: "schedule"})
			}
		}
		_, err := w.s.createRuns(ctx, tx, j, runs)
		return err
	})
}

// runArgs is one run; each River attempt is one attempt of the run.
type runArgs struct {
	RunID     uuid.UUID `json:"run_id"`
	Plugin    string    `json:"plugin"`
	Job       string    `json:"job"`
	TimeoutMs int64     `json:"timeout_ms"`
}

func (runArgs) Kind() string { return "edulure.job_run" }

type runWorker struct {
	river.WorkerDefaults[runArgs]
	s *Service
}

// Timeout enforces the job's timeout on each attempt.
func (w *runWorker) Timeout(job *river.Job[runArgs]) time.Duration {
	return time.Duration(job.Args.TimeoutMs) * time.Millisecond
}

type runRow struct {
	tenant      *uuid.UUID
	trigger     string
	scheduledAt time.Time
	eventID     *uuid.UUID
	requestedBy string
	args        []byte
	maxAttempts int
	traceparent string
}

// Work runs one attempt through the plugin and records it.
func (w *runWorker) Work(ctx context.Context, job *river.Job[runArgs]) error {
	a, attempt := job.Args, job.Attempt
	var r runRow
	err := w.s.pool.QueryRow(ctx, `
		UPDATE kernel.job_runs SET status = 'running', attempts = $2, started_at = COALESCE(started_at, now())
		WHERE id = $1
		RETURNING tenant_id, trigger, scheduled_at, event_id, requested_by, args, max_attempts, traceparent`, a.RunID, attempt).
		Scan(&r.tenant, &r.trigger, &r.scheduledAt, &r.eventID, &r.requestedBy, &r.args, &r.maxAttempts, &r.traceparent)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("run %s no longer exists", a.RunID))
	}
	if err != nil {
		return err
	}
	if _, err := w.s.pool.Exec(ctx, `
		INSERT INTO kernel.job_attempts (run_id, attempt) VALUES ($1, $2)
		ON CONFLICT (run_id, attempt) DO UPDATE SET started_at = now(), finished_at = NULL, outcome = 'running', error = NULL`, a.RunID, attempt); err != nil {
		return err
	}
	p, j, ok := w.s.jobDef(a.Plugin, a.Job)
	if !ok {
		return w.finish(ctx, a.RunID, attempt, r.maxAttempts, "", fmt.Errorf("plugin %s has no job %s (unloaded or removed)", a.Plugin, a.Job), false)
	}
	if r.tenant != nil && j.PerTenant {
		enabled, err := enabledFor(ctx, w.s.pool, *r.tenant, a.Plugin, p.EnabledByDefault)
		if err != nil {
			return err
		}
		if !enabled {
			w.s.metrics.attempt(a.Plugin, a.Job, "skipped", 0)
			return w.skip(ctx, a.RunID, attempt)
		}
	}
	req := &pluginv1.RunJobRequest{
		Job: a.Job, Trigger: r.trigger, ScheduledAtUnixMs: r.scheduledAt.UnixMilli(), RunId: a.RunID.String(),
		Attempt: uint32(attempt), ArgsJson: r.args,
	}
	if r.tenant != nil {
		req.TenantId = r.tenant.String()
	}
	if r.eventID != nil {
		if req.Event, err = loadEvent(ctx, w.s, *r.eventID); err != nil {
			return err
		}
	}
	if r.trigger == "manual" {
		req.Principal = principalOf(r.requestedBy, req.TenantId)
	}
	ctx, span := w.s.traceAttempt(ctx, a, attempt, r)
	defer span.End()
	started := time.Now()
	resp, err := w.s.sup.RunJob(ctx, a.Plugin, req)
	took := time.Since(started)
	// The plugin's context ends at the same deadline, so its "timed out"
	// answer can arrive before the kernel's own timer has fired.
	dl, hasDeadline := ctx.Deadline()
	timedOut := attemptTimedOut(ctx.Err(), dl, hasDeadline, time.Now()) || status.Code(err) == grpccodes.DeadlineExceeded ||
		err == nil && resp.Error != nil && strings.HasPrefix(resp.Error.Detail, "timed out")
	if err == nil && resp.Error != nil {
		err = errors.New(resp.Error.Detail)
		if resp.Error.Code != "" {
			err = fmt.Errorf("%s: %s", resp.Error.Code, resp.Error.Detail)
		}
	}
	output := ""
	if resp != nil {
		output = resp.Output
	}
	if timedOut {
		err = fmt.Errorf("timed out after %s", w.Timeout(job))
	}
	outcome := "succeeded"
	switch {
	case timedOut:
		outcome = "timed_out"
	case err != nil:
		outcome = "failed"
	}
	w.s.metrics.attempt(a.Plugin, a.Job, outcome, took)
	if outcome != "succeeded" {
		span.SetStatus(codes.Error, outcome)
	}
	return w.finish(ctx, a.RunID, attempt, r.maxAttempts, output, err, timedOut)
}

// attemptTimedOut says whether an attempt ran out of time: its context
// says so, or its deadline has passed. The plugin stops the job at the
// same deadline (it gets it with the request) and its answer can arrive
// before this process's timer has marked the context done, which on a
// loaded machine recorded a timeout as an ordinary failure.
func attemptTimedOut(ctxErr error, deadline time.Time, hasDeadline bool, now time.Time) bool {
	return errors.Is(ctxErr, context.DeadlineExceeded) || (hasDeadline && !now.Before(deadline))
}

// traceAttempt starts the span of one attempt: the root of a trace of its
// own, linked to the trace of the request or event that asked for the run.
// The plugin's spans for the attempt are its children.
func (s *Service) traceAttempt(ctx context.Context, a runArgs, attempt int, r runRow) (context.Context, trace.Span) {
	if !s.opts.Tracing.Enabled {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("edulure.plugin", a.Plugin), attribute.String("edulure.job", a.Job), attribute.String("edulure.job.run_id", a.RunID.String()),
		attribute.String("edulure.job.trigger", r.trigger), attribute.Int("edulure.job.attempt", attempt))}
	if sc := telemetry.SpanContext(r.traceparent); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return s.tracer.Start(ctx, "job "+a.Plugin+"/"+a.Job, opts...)
}

// finish records an attempt's outcome and tells River whether to retry.
func (w *runWorker) finish(ctx context.Context, run uuid.UUID, attempt, max int, output string, failure error, timedOut bool) error {
	ctx = context.WithoutCancel(ctx) // record even when the attempt timed out
	outcome, status, msg := "succeeded", "succeeded", ""
	if failure != nil {
		outcome, msg = "failed", failure.Error()
		if timedOut {
			outcome = "timed_out"
		}
		status = "retrying"
		if attempt >= max {
			status = "failed"
		}
	}
	var errText *string
	if msg != "" {
		errText = &msg
	}
	err := pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE kernel.job_attempts SET finished_at = now(), outcome = $3, error = $4 WHERE run_id = $1 AND attempt = $2`,
			run, attempt, outcome, errText); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			UPDATE kernel.job_runs SET status = $2, last_error = $3, output = NULLIF($4, ''),
				finished_at = CASE WHEN $2 IN ('succeeded', 'failed') THEN now() END
			WHERE id = $1`, run, status, errText, output)
		return err
	})
	if err != nil {
		return err
	}
	if failure != nil {
		return failure // River retries with backoff until MaxAttempts
	}
	return nil
}

func (w *runWorker) skip(ctx context.Context, run uuid.UUID, attempt int) error {
	return pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE kernel.job_attempts SET finished_at = now(), outcome = 'succeeded', error = 'skipped: the plugin is disabled for the institution' WHERE run_id = $1 AND attempt = $2`, run, attempt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE kernel.job_runs SET status = 'skipped', finished_at = now(), last_error = 'the plugin is disabled for the institution' WHERE id = $1`, run)
		return err
	})
}

func loadEvent(ctx context.Context, s *Service, id uuid.UUID) (*pluginv1.Event, error) {
	ev := &pluginv1.Event{Id: id.String()}
	var tenant *uuid.UUID
	var occurred time.Time
	err := s.pool.QueryRow(ctx, `SELECT type, tenant_id, actor, request_id, data, occurred_at, source FROM kernel.events WHERE id = $1`, id).
		Scan(&ev.Type, &tenant, &ev.Actor, &ev.RequestId, &ev.DataJson, &occurred, &ev.Source)
	if err != nil {
		return nil, fmt.Errorf("loading event %s: %w", id, err)
	}
	if tenant != nil {
		ev.TenantId = tenant.String()
	}
	if ev.Source == "kernel" {
		if ev.DataJson, err = outbox.Open(s.opts.Sealer, ev.Id, ev.Type, ev.DataJson); err != nil {
			return nil, fmt.Errorf("loading event %s: %w", id, err)
		}
	}
	ev.OccurredAtUnixMs, ev.Attempt = occurred.UnixMilli(), 1
	return ev, nil
}

// EventsRelayed starts the jobs triggered by newly relayed events, in the
// relay's transaction (events.Hooks).
func (s *Service) EventsRelayed(ctx context.Context, tx pgx.Tx, seqs []int64) error {
	type trigger struct {
		plugin    string
		job       *pluginv1.Job
		byDefault bool
	}
	byType := map[string][]trigger{}
	for _, p := range s.sup.Loaded() {
		for _, j := range p.Manifest.Jobs {
			if j.OnEvent != "" {
				byType[j.OnEvent] = append(byType[j.OnEvent], trigger{p.Name, j, p.EnabledByDefault})
			}
		}
	}
	if len(byType) == 0 {
		return nil
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	// Only the triggering types, found through events_type (type, seq) within
	// the batch's range, rather than every event of the batch read by seq.
	rows, err := tx.Query(ctx, `SELECT e.id, e.type, e.tenant_id, e.occurred_at, e.traceparent
		FROM unnest($2::text[]) AS t(type)
		JOIN kernel.events e ON e.type = t.type AND e.seq BETWEEN $3 AND $4
		WHERE e.seq = ANY($1) AND e.rejected IS NULL ORDER BY e.seq`, seqs, types, slices.Min(seqs), slices.Max(seqs))
	if err != nil {
		return err
	}
	type ev struct {
		id          uuid.UUID
		typ         string
		tenant      *uuid.UUID
		occurred    time.Time
		traceparent string
	}
	var evs []ev
	var e ev
	if _, err := pgx.ForEachRow(rows, []any{&e.id, &e.typ, &e.tenant, &e.occurred, &e.traceparent}, func() error { evs = append(evs, e); e = ev{}; return nil }); err != nil {
		return err
	}
	for _, e := range evs {
		for _, t := range byType[e.typ] {
			if e.tenant != nil {
				enabled, err := enabledFor(ctx, tx, *e.tenant, t.plugin, t.byDefault)
				if err != nil {
					return err
				}
				if !enabled {
					continue
				}
			}
			id := e.id
			if _, err := s.createRuns(ctx, tx, t.job, []newRun{{plugin: t.plugin, job: t.job.Name, tenant: e.tenant, trigger: "event", scheduledAt: e.occurred, eventID: &id, requestedBy: "event:" + e.typ, traceparent: e.traceparent}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// principalOf rebuilds the principal of a manual run from its actor.
func principalOf(actor, tenant string) *pluginv1.Principal {
	kind, id, _ := strings.Cut(actor, ":")
	p := &pluginv1.Principal{Kind: kind, TenantId: tenant}
	switch kind {
	case "user", "operator":
		p.Kind, p.UserId, p.Operator = "user", id, kind == "operator"
	case "apikey":
		p.ApiKeyId = id
	}
	return p
}

// enabledFor reports whether tenant has plugin enabled (its stored choice,
// else the plugin's enabled_by_default).
func enabledFor(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, tenant uuid.UUID, plugin string, byDefault bool) (bool, error) {
	var enabled bool
	err := q.QueryRow(ctx, `SELECT COALESCE((SELECT enabled FROM kernel.tenant_plugins WHERE tenant_id = $1 AND plugin = $2), $3)`,
		tenant, plugin, byDefault).Scan(&enabled)
	return enabled, err
}
