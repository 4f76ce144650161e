package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// dispatcher delivers one subscriber's pending deliveries, one batch at a
// time, so that a slow or failing subscriber holds up only itself.
type dispatcher struct {
	s      *Service
	name   string
	wakeCh chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *dispatcher) wake() {
	select {
	case d.wakeCh <- struct{}{}:
	default:
	}
}

func (d *dispatcher) stop() {
	d.cancel()
	<-d.done
}

// syncDispatchers runs one dispatcher per loaded plugin that subscribes to
// something, while this replica leads.
func (s *Service) syncDispatchers(ctx context.Context) {
	want := map[string]supervisor.Loaded{}
	for _, p := range s.sup.Loaded() {
		if len(p.Manifest.Subscriptions) > 0 {
			want[p.Name] = p
		}
	}
	s.mu.Lock()
	if !s.leader {
		s.mu.Unlock()
		return
	}
	var stale []*dispatcher
	for name, d := range s.dispatch {
		if _, ok := want[name]; !ok {
			stale = append(stale, d)
			delete(s.dispatch, name)
		}
	}
	for name := range want {
		if d, ok := s.dispatch[name]; ok {
			d.wake() // it may have been waiting for the plugin to run
			continue
		}
		dctx, cancel := context.WithCancel(ctx)
		d := &dispatcher{s: s, name: name, wakeCh: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
		s.dispatch[name] = d
		go func() { defer close(d.done); d.run(dctx) }()
	}
	s.mu.Unlock()
	for _, d := range stale {
		d.stop()
	}
}

func (d *dispatcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := d.deliverBatch(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, supervisor.ErrNotRunning):
			d.sleep(ctx, 250*time.Millisecond) // restarting: deliveries wait, attempts are not spent
			continue
		case err != nil:
			d.s.logger.Error("delivering events failed", "subscriber", d.name, "error", err)
			d.sleep(ctx, jitter(500*time.Millisecond))
			continue
		case n > 0:
			continue
		}
		// Nothing due: sleep until the next retry falls due, a wake-up, or the poll.
		wait := d.s.opts.Poll
		var next *time.Time
		if err := d.s.pool.QueryRow(ctx, `SELECT min(next_attempt_at) FROM kernel.deliveries WHERE subscriber = $1 AND status = 'pending'`, d.name).Scan(&next); err == nil && next != nil {
			if until := time.Until(*next); until < wait {
				wait = max(until, time.Millisecond)
			}
		}
		d.sleep(ctx, wait)
	}
}

func (d *dispatcher) sleep(ctx context.Context, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-d.wakeCh:
	case <-t.C:
	}
}

type pending struct {
	id          int64
	attempts    int
	max         int
	enabled     bool
	ev          *pluginv1.Event
	traceparent string // of the work that published the event
	openErr     string // the event's sealed fields could not be opened
}

func (d *dispatcher) byDefault() bool {
	for _, p := range d.s.sup.Loaded() {
		if p.Name == d.name {
			return p.EnabledByDefault
		}
	}
	return false
}

// deliverBatch sends the subscriber's due deliveries (oldest first, holding
// back an ordered subscription's institution behind its failing delivery)
// and records each outcome. It returns how many it settled.
func (d *dispatcher) deliverBatch(ctx context.Context) (int, error) {
	rows, err := d.s.pool.Query(ctx, `
		SELECT d.id, d.attempts, d.max_attempts,
			(d.tenant_id IS NULL OR COALESCE(tp.enabled, $3)),
			e.id, e.type, e.tenant_id, e.actor, e.request_id, e.data, e.occurred_at, e.source, e.traceparent
		FROM kernel.deliveries d
		JOIN kernel.events e ON e.seq = d.event_seq
		LEFT JOIN kernel.tenant_plugins tp ON tp.tenant_id = d.tenant_id AND tp.plugin = d.subscriber
		WHERE d.subscriber = $1 AND d.status = 'pending' AND d.next_attempt_at <= now()
			AND (NOT d.ordered OR NOT EXISTS (
				SELECT 1 FROM kernel.deliveries p
				WHERE p.subscriber = d.subscriber AND p.status = 'pending' AND p.ordered AND p.id < d.id
					AND (p.tenant_id = d.tenant_id OR (p.tenant_id IS NULL AND d.tenant_id IS NULL))
					AND p.next_attempt_at > now()))
		ORDER BY d.id
		LIMIT $2`, d.name, d.s.opts.BatchSize, d.byDefault())
	if err != nil {
		return 0, err
	}
	var batch []pending
	var skipped []int64
	var p pending
	var evID uuid.UUID
	var tenant *uuid.UUID
	var occurred time.Time
	var typ, actor, requestID, source string
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&p.id, &p.attempts, &p.max, &p.enabled, &evID, &typ, &tenant, &actor, &requestID, &data, &occurred, &source, &p.traceparent}, func() error {
		if !p.enabled {
			skipped = append(skipped, p.id)
			return nil
		}
		ev := &pluginv1.Event{
			Id: evID.String(), Type: typ, Actor: actor, RequestId: requestID, DataJson: data, Source: source,
			OccurredAtUnixMs: occurred.UnixMilli(), Attempt: uint32(p.attempts + 1),
		}
		if tenant != nil {
			ev.TenantId = tenant.String()
		}
		if source == KernelSource {
			// Secrets are sealed in the event log and opened for delivery only.
			opened, err := outbox.Open(d.s.opts.Sealer, ev.Id, typ, data)
			if err != nil {
				p.openErr = err.Error()
			}
			ev.DataJson = opened
		}
		p.ev = ev
		batch = append(batch, p)
		p, tenant, data = pending{}, nil, nil
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(skipped) > 0 {
		// The institution turned the plugin off after the event was relayed.
		if _, err := d.s.pool.Exec(ctx, `UPDATE kernel.deliveries d SET status = 'skipped', last_error = 'the plugin is disabled for the institution', updated_at = now() FROM unnest($1::bigint[]) AS b(id) WHERE d.id = b.id`, skipped); err != nil {
			return 0, err
		}
		d.s.metrics.settled(d.name, "skipped", len(skipped))
	}
	if len(batch) == 0 {
		return len(skipped), nil
	}
	ctx, span := d.traceBatch(ctx, batch)
	defer span.End()
	// An event whose secrets cannot be opened (EDULURE_SECRET_KEY changed)
	// is not sent: its delivery fails with the reason, and dies in time.
	var send []int
	results := make([]*pluginv1.EventResult, len(batch))
	for i, p := range batch {
		if p.openErr != "" {
			results[i] = &pluginv1.EventResult{EventId: p.ev.Id, Error: "opening the event's sealed fields: " + p.openErr, Attempted: true}
			continue
		}
		send = append(send, i)
	}
	if len(send) > 0 {
		events := make([]*pluginv1.Event, len(send))
		for j, i := range send {
			events[j] = batch[i].ev
		}
		resp, err := d.s.sup.DeliverEvents(ctx, d.name, events, d.s.opts.DeliveryTimeout)
		if errors.Is(err, supervisor.ErrNotRunning) {
			return 0, err
		}
		for j, i := range send {
			switch {
			case err != nil:
				// The call failed as a whole (the plugin died or timed
				// out): every event sent counts one failed attempt.
				results[i] = &pluginv1.EventResult{EventId: batch[i].ev.Id, Error: err.Error(), Attempted: true}
			case j < len(resp.Results):
				results[i] = resp.Results[j]
			}
		}
	}
	return len(batch) + len(skipped), d.record(ctx, batch, results)
}

// record stores the outcome of each delivery of a batch.
func (d *dispatcher) record(ctx context.Context, batch []pending, results []*pluginv1.EventResult) error {
	var ok []int64
	var failedIDs []int64
	var failedErrs []string
	var failedDelays []float64
	dead := 0
	for i, p := range batch {
		r := results[i]
		switch {
		case r == nil || r.EventId != p.ev.Id:
			failedIDs, failedErrs = append(failedIDs, p.id), append(failedErrs, "the plugin answered for another event")
			failedDelays = append(failedDelays, d.s.backoff(p.attempts+1).Seconds())
		case !r.Attempted:
			// Held back behind a failed event of its institution: not an attempt.
			continue
		case r.Error == "":
			ok = append(ok, p.id)
			d.s.metrics.delivered(d.name, time.UnixMilli(p.ev.OccurredAtUnixMs))
			continue
		default:
			failedIDs, failedErrs = append(failedIDs, p.id), append(failedErrs, truncate(r.Error, 2000))
			failedDelays = append(failedDelays, d.s.backoff(p.attempts+1).Seconds())
		}
		if p.attempts+1 >= p.max {
			dead++
		}
	}
	batchTx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer batchTx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if len(ok) > 0 {
		if _, err := batchTx.Exec(ctx, `UPDATE kernel.deliveries d SET status = 'delivered', attempts = d.attempts + 1, delivered_at = now(), updated_at = now(), last_error = NULL FROM unnest($1::bigint[]) AS b(id) WHERE d.id = b.id`, ok); err != nil {
			return fmt.Errorf("recording deliveries: %w", err)
		}
	}
	if len(failedIDs) > 0 {
		_, err := batchTx.Exec(ctx, `
			UPDATE kernel.deliveries d SET
				attempts = d.attempts + 1, last_error = f.err, updated_at = now(),
				status = CASE WHEN d.attempts + 1 >= d.max_attempts THEN 'dead' ELSE 'pending' END,
				next_attempt_at = now() + make_interval(secs => f.delay)
			FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS f(id, err, delay)
			WHERE d.id = f.id`, failedIDs, failedErrs, failedDelays)
		if err != nil {
			return fmt.Errorf("recording failed deliveries: %w", err)
		}
		d.s.logger.Warn("deliveries failed", "subscriber", d.name, "count", len(failedIDs), "first_error", failedErrs[0])
	}
	if err := batchTx.Commit(ctx); err != nil {
		return err
	}
	d.s.metrics.settled(d.name, "delivered", len(ok))
	d.s.metrics.settled(d.name, "failed", len(failedIDs)-dead)
	d.s.metrics.settled(d.name, "dead", dead)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.Int("edulure.events.delivered", len(ok)), attribute.Int("edulure.events.failed", len(failedIDs)))
		if len(failedIDs) > 0 {
			span.SetStatus(codes.Error, "some deliveries failed")
		}
	}
	return nil
}

// traceBatch starts the span of one delivery call: the root of a trace of
// its own (a delivery happens after, and apart from, the request that
// published the event), linked to the trace of each event's publisher. The
// plugin's spans for the events are its children (Event.traceparent).
func (d *dispatcher) traceBatch(ctx context.Context, batch []pending) (context.Context, trace.Span) {
	if !d.s.opts.Tracing.Enabled {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	var links []trace.Link
	for _, p := range batch {
		if sc := telemetry.SpanContext(p.traceparent); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("edulure.event.id", p.ev.Id)}})
		}
	}
	return d.s.tracer.Start(ctx, "deliver events", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("edulure.subscriber", d.name), attribute.Int("edulure.events", len(batch))))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
