package events

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// deliveryRow is a delivery row to write (kernel.deliveries): an event
// whose delivery failed (attempts 1, its error, retried after delay) or
// that waits behind an earlier ordered event of its institution (attempts
// 0). It carries a copy of the event, which outlives the log's retention.
type deliveryRow struct {
	seq       int64
	tenant    *uuid.UUID
	ordered   bool
	max       int
	attempts  int
	err       string
	delay     time.Duration
	ev        *pluginv1.Event
	occurred  time.Time
	eventUUID uuid.UUID
	// traceparent is the trace context of the work that published it.
	traceparent string
}

func (d *dispatcher) row(sub subscriber, e logEvent, attempts int, err string, delay time.Duration) deliveryRow {
	id, _ := uuid.Parse(e.ev.Id)
	return deliveryRow{
		seq: e.seq, tenant: e.tenant, ordered: sub.isOrdered(e.ev.Type), max: sub.maxAttempts(e.ev.Type, d.s.opts.MaxAttempts),
		attempts: attempts, err: err, delay: delay, ev: e.ev, occurred: time.UnixMilli(e.ev.OccurredAtUnixMs), eventUUID: id,
		traceparent: e.traceparent,
	}
}

// insertRows writes delivery rows in one statement. A row that exists
// already (a dead letter whose event a replay or catch-up delivered again)
// is brought back to pending; a pending one is left as it is.
func (d *dispatcher) insertRows(ctx context.Context, tx pgx.Tx, rows []deliveryRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	var (
		seqs     = make([]int64, n)
		tenants  = make([]pgtype.UUID, n)
		ordered  = make([]bool, n)
		maxes    = make([]int32, n)
		attempts = make([]int32, n)
		errs     = make([]*string, n)
		delays   = make([]float64, n)
		ids      = make([]uuid.UUID, n)
		types    = make([]string, n)
		sources  = make([]string, n)
		actors   = make([]string, n)
		reqIDs   = make([]string, n)
		data     = make([]string, n)
		occurred = make([]time.Time, n)
		traces   = make([]string, n)
	)
	for i, r := range rows {
		seqs[i], ordered[i], maxes[i], attempts[i], delays[i] = r.seq, r.ordered, int32(r.max), int32(r.attempts), r.delay.Seconds()
		if r.tenant != nil {
			tenants[i] = pgtype.UUID{Bytes: *r.tenant, Valid: true}
		}
		if r.err != "" {
			e := r.err
			errs[i] = &e
		}
		ids[i], types[i], sources[i], actors[i], reqIDs[i] = r.eventUUID, r.ev.Type, r.ev.Source, r.ev.Actor, r.ev.RequestId
		data[i], occurred[i], traces[i] = string(orEmptyObject(r.ev.DataJson)), r.occurred, r.traceparent
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO kernel.deliveries (event_seq, subscriber, tenant_id, ordered, max_attempts, status, attempts, next_attempt_at, last_error,
			event_id, type, source, actor, request_id, data, occurred_at, traceparent)
		SELECT r.seq, $1, r.tenant, r.ordered, r.max, CASE WHEN r.attempts >= r.max THEN 'dead' ELSE 'pending' END, r.attempts,
			now() + make_interval(secs => r.delay), r.err, r.id, r.type, r.source, r.actor, r.request_id, r.data::jsonb, r.occurred, r.traceparent
		FROM unnest($2::bigint[], $3::uuid[], $4::bool[], $5::int[], $6::int[], $7::text[], $8::float8[],
			$9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::timestamptz[], $16::text[])
			AS r(seq, tenant, ordered, max, attempts, err, delay, id, type, source, actor, request_id, data, occurred, traceparent)
		ORDER BY r.seq
		ON CONFLICT (subscriber, event_seq) DO UPDATE SET status = EXCLUDED.status, attempts = EXCLUDED.attempts,
			next_attempt_at = EXCLUDED.next_attempt_at, last_error = COALESCE(EXCLUDED.last_error, kernel.deliveries.last_error), updated_at = now()
		WHERE kernel.deliveries.status <> 'pending'`,
		d.name, seqs, tenants, ordered, maxes, attempts, errs, delays, ids, types, sources, actors, reqIDs, data, occurred, traces)
	if err != nil {
		return fmt.Errorf("writing delivery rows: %w", err)
	}
	return nil
}

func orEmptyObject(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// pendingRow is a delivery row due for delivery.
type pendingRow struct {
	id       int64
	seq      int64
	attempts int
	max      int
	ordered  bool
	tenant   *uuid.UUID
	enabled  bool
	failed   bool // it has a last error: a failure, not only a wait
	ev       *pluginv1.Event
	// traceparent is the trace context of the work that published it.
	traceparent string
}

// rowsBatch delivers the subscriber's due delivery rows (oldest event
// first; an ordered row only when no earlier one of its institution is
// still pending or unread by a cursor) and records each outcome. It returns
// how many it settled.
func (d *dispatcher) rowsBatch(ctx context.Context, sub subscriber) (int, error) {
	rows, err := d.s.pool.Query(ctx, `
		SELECT d.id, d.event_seq, d.attempts, d.max_attempts, d.ordered, d.tenant_id,
			(d.tenant_id IS NULL OR COALESCE(tp.enabled, $3)), d.last_error IS NOT NULL,
			d.event_id, d.type, d.actor, d.request_id, d.data, d.occurred_at, d.source, d.traceparent
		FROM kernel.deliveries d
		LEFT JOIN kernel.tenant_plugins tp ON tp.tenant_id = d.tenant_id AND tp.plugin = d.subscriber
		WHERE d.subscriber = $1 AND d.status = 'pending' AND d.next_attempt_at <= now()
			AND (NOT d.ordered OR NOT EXISTS (
				SELECT 1 FROM kernel.deliveries p
				WHERE p.subscriber = d.subscriber AND p.status = 'pending' AND p.ordered AND p.event_seq < d.event_seq
					AND (p.tenant_id = d.tenant_id OR (p.tenant_id IS NULL AND d.tenant_id IS NULL))
					AND p.next_attempt_at > now()))
		ORDER BY d.event_seq
		LIMIT $2`, d.name, d.s.opts.BatchSize, sub.byDefault)
	if err != nil {
		return 0, err
	}
	var batch, skipped []pendingRow
	var p pendingRow
	var evID uuid.UUID
	var occurred time.Time
	var typ, actor, requestID, source string
	var data []byte
	stopped := map[string]bool{} // ordered institutions held back by a cursor
	_, err = pgx.ForEachRow(rows, []any{&p.id, &p.seq, &p.attempts, &p.max, &p.ordered, &p.tenant, &p.enabled, &p.failed,
		&evID, &typ, &actor, &requestID, &data, &occurred, &source, &p.traceparent}, func() error {
		defer func() { p, data = pendingRow{}, nil }()
		t := tenantKey(p.tenant)
		if p.ordered && (stopped[t] || d.blockedByCursor(sub, t, p.seq)) {
			stopped[t] = true
			return nil
		}
		if !p.enabled {
			skipped = append(skipped, p)
			return nil
		}
		p.ev = &pluginv1.Event{
			Id: evID.String(), Type: typ, Actor: actor, RequestId: requestID, DataJson: data, Source: source,
			OccurredAtUnixMs: occurred.UnixMilli(), Attempt: uint32(p.attempts + 1),
		}
		if p.tenant != nil {
			p.ev.TenantId = p.tenant.String()
		}
		batch = append(batch, p)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(batch) == 0 && len(skipped) == 0 && len(stopped) > 0 {
		d.nextDue = time.Now().Add(100 * time.Millisecond) // waiting behind a catch-up
		return 0, nil
	}
	if len(batch) == 0 && len(skipped) == 0 {
		// Nothing due: note when something will be.
		var next *time.Time
		if err := d.s.pool.QueryRow(ctx, `SELECT min(next_attempt_at) FROM kernel.deliveries WHERE subscriber = $1 AND status = 'pending'`, d.name).Scan(&next); err != nil {
			return 0, err
		}
		d.rows, d.nextDue = false, time.Now().Add(time.Hour)
		if next != nil {
			d.nextDue = *next
		}
		return 0, nil
	}
	d.more = d.more || len(batch)+len(skipped) == d.s.opts.BatchSize
	var results []result
	if len(batch) > 0 {
		evs := make([]logEvent, len(batch))
		for i, p := range batch {
			evs[i] = logEvent{ev: p.ev, traceparent: p.traceparent}
		}
		if results, err = d.deliver(ctx, evs); err != nil {
			return 0, err
		}
	}
	return len(batch) + len(skipped), d.record(ctx, batch, results, skipped)
}

// blockedByCursor says whether a cursor may still owe an earlier ordered
// event of the institution than seq.
func (d *dispatcher) blockedByCursor(sub subscriber, tenant string, seq int64) bool {
	for _, c := range d.others {
		if c.holdsOrdered(sub, tenant) && c.position < seq {
			return true
		}
	}
	return false
}

// record stores the outcome of each delivery row of a batch: a row that
// only waited and is now delivered is deleted; a failure that succeeded is
// kept as delivered (until the retention prunes it); a failure counts an
// attempt and is retried after the backoff, or dies after its last; a row
// of an institution that turned the plugin off is skipped.
func (d *dispatcher) record(ctx context.Context, batch []pendingRow, results []result, skipped []pendingRow) error {
	var done, recovered, failedIDs, skippedIDs []int64
	var failedErrs []string
	dead := 0
	var failedDelays []float64
	for i, p := range batch {
		r := results[i]
		switch {
		case !r.attempted:
			// Held back behind a failed event of its institution: not an attempt.
		case r.err == "" && !p.failed && p.attempts == 0:
			done = append(done, p.id)
		case r.err == "":
			recovered = append(recovered, p.id)
		default:
			failedIDs, failedErrs = append(failedIDs, p.id), append(failedErrs, r.err)
			failedDelays = append(failedDelays, d.s.backoff(p.attempts+1).Seconds())
			if p.attempts+1 >= p.max {
				dead++
			}
		}
	}
	for _, p := range skipped {
		if !p.failed && p.attempts == 0 {
			done = append(done, p.id)
		} else {
			skippedIDs = append(skippedIDs, p.id)
		}
	}
	tx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if err := d.fence(ctx, tx); err != nil {
		return err
	}
	if len(done) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM kernel.deliveries d USING unnest($1::bigint[]) AS b(id) WHERE d.id = b.id`, done); err != nil {
			return fmt.Errorf("recording deliveries: %w", err)
		}
	}
	if len(recovered) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE kernel.deliveries d SET status = 'delivered', attempts = d.attempts + 1, delivered_at = now(), updated_at = now()
			FROM unnest($1::bigint[]) AS b(id) WHERE d.id = b.id`, recovered); err != nil {
			return fmt.Errorf("recording deliveries: %w", err)
		}
	}
	if len(skippedIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE kernel.deliveries d SET status = 'skipped', last_error = 'the plugin is disabled for the institution', updated_at = now()
			FROM unnest($1::bigint[]) AS b(id) WHERE d.id = b.id`, skippedIDs); err != nil {
			return fmt.Errorf("recording deliveries: %w", err)
		}
	}
	if len(failedIDs) > 0 {
		_, err := tx.Exec(ctx, `
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
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	d.s.metrics.settled(d.name, "failed", len(failedIDs)-dead)
	d.s.metrics.settled(d.name, "dead", dead)
	d.s.metrics.settled(d.name, "skipped", len(skipped))
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
