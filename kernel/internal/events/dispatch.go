package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/kernel/internal/supervisor"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// dispatcher delivers to one subscriber while this replica holds its
// lease, so that a slow or failing subscriber holds up only itself. Each
// round it reads a batch after its live cursor, one batch of each catch-up
// or replay cursor, and the delivery rows that are due, and delivers each
// in one call.
type dispatcher struct {
	s      *Service
	name   string
	wakeCh chan struct{}
	reload atomic.Bool // re-read the cursors: the API added a replay

	// Owned by run's goroutine.
	live   *cursor
	others []*cursor        // catch-up and replay cursors, oldest first
	known  map[string]bool  // subscribed types recorded in kernel.event_subscriptions
	held   map[string]int64 // ordered: institution → smallest seq of its pending delivery rows
	// nextDue is when the next pending delivery row falls due, as last
	// read; rows is set when rows may have been added since (by this
	// dispatcher, or a replay), so that a healthy subscriber does not ask.
	nextDue time.Time
	rows    bool
	more    bool // the last round left work: a full batch, or rows due
	// unsettled: the live cursor has moved since its row was written.
	unsettled bool
}

func newDispatcher(s *Service, name string) *dispatcher {
	d := &dispatcher{s: s, name: name, wakeCh: make(chan struct{}, 1), rows: true}
	d.reload.Store(true)
	return d
}

func (d *dispatcher) wake(reload bool) {
	if reload {
		d.reload.Store(true)
	}
	poke(d.wakeCh)
}

// errFenced means another replica has taken the subscriber's lease over.
var errFenced = errors.New("another replica delivers to this subscriber now")

// subscriber is what the subscriber's manifest says, read afresh each
// round (an upgrade may change it).
type subscriber struct {
	running   bool
	byDefault bool // enabled for institutions that chose nothing
	subs      map[string]*pluginv1.Subscription
	types     []string // the subscribed types
	ordered   bool     // some subscription is ordered
	catchUp   bool     // some subscription asks for a catch-up
}

func (d *dispatcher) subscriber() (subscriber, bool) {
	for _, p := range d.s.sup.Loaded() {
		if p.Name != d.name {
			continue
		}
		sub := subscriber{running: p.Running, byDefault: p.EnabledByDefault, subs: map[string]*pluginv1.Subscription{}}
		for _, x := range p.Manifest.Subscriptions {
			sub.subs[x.Type] = x
			sub.types = append(sub.types, x.Type)
			sub.ordered = sub.ordered || x.Ordered
		}
		sub.catchUp = slices.ContainsFunc(sub.types, sub.catchesUp)
		sort.Strings(sub.types)
		return sub, len(sub.types) > 0
	}
	return subscriber{}, false
}

func (sub subscriber) maxAttempts(typ string, def int) int {
	if x := sub.subs[typ]; x != nil && x.MaxAttempts > 0 {
		return int(x.MaxAttempts)
	}
	return def
}

// catchesUp reports whether typ's subscription asks for a catch-up.
func (sub subscriber) catchesUp(typ string) bool {
	x := sub.subs[typ]
	return x != nil && x.CatchUp != "" && x.CatchUp != "none"
}

func (sub subscriber) isOrdered(typ string) bool {
	x := sub.subs[typ]
	return x != nil && x.Ordered
}

func (d *dispatcher) run(ctx context.Context) {
	claimed := false
	defer func() {
		if claimed && d.unsettled {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			d.flushLive(fctx) //nolint:errcheck // at worst the last batch is delivered again
		}
	}()
	for ctx.Err() == nil {
		sub, ok := d.subscriber()
		if !ok { // unloaded: the lease goes at the next check
			d.sleep(ctx, d.s.opts.Poll)
			continue
		}
		_, err := func() (int, error) {
			if !claimed {
				if err := d.claim(ctx); err != nil {
					return 0, fmt.Errorf("taking the subscriber's cursor: %w", err)
				}
				claimed = true
			}
			if d.reload.Swap(false) {
				if err := d.flushLive(ctx); err != nil {
					d.reload.Store(true)
					return 0, err
				}
				if err := d.loadCursors(ctx); err != nil {
					d.reload.Store(true)
					return 0, err
				}
				d.rows = true // a replay may have set rows back to pending
			}
			if err := d.subscriptionsChanged(ctx, sub); err != nil {
				return 0, err
			}
			if !sub.running {
				return 0, supervisor.ErrNotRunning
			}
			return d.round(ctx, sub)
		}()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errFenced):
			d.s.logger.Warn("stopped delivering: another replica took the subscriber over", "subscriber", d.name)
			<-ctx.Done() // this replica lost the lease; the lease session stops us
			return
		case errors.Is(err, supervisor.ErrNotRunning):
			d.sleep(ctx, 250*time.Millisecond) // restarting: events wait, attempts are not spent
			continue
		case err != nil:
			d.s.logger.Error("delivering events failed", "subscriber", d.name, "error", err)
			d.reload.Store(true) // the cursors may have moved in a rolled-back transaction
			d.sleep(ctx, jitter(500*time.Millisecond))
			continue
		case d.more:
			// More to read, even after a read that found none of the
			// cursor's events in its window of the log (a catch-up crossing
			// other institutions' history): the window moved on.
			continue
		}
		// Nothing more to read: sleep until the next retry falls due, a
		// wake-up (which may have come meanwhile), or the poll.
		if err := d.flushLive(ctx); errors.Is(err, errFenced) {
			continue // handled above, at the next round
		} else if err != nil && ctx.Err() == nil {
			d.s.logger.Warn("recording the live cursor failed; retrying", "subscriber", d.name, "error", err)
		}
		wait := d.s.opts.Poll
		if until := time.Until(d.nextDue); until < wait {
			wait = max(until, time.Millisecond)
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

// claim makes this replica the owner of the subscriber's live cursor (the
// fencing token every later transaction checks), creating the cursor at the
// head of the log for a newly installed subscriber.
func (d *dispatcher) claim(ctx context.Context) error {
	_, err := d.s.pool.Exec(ctx, `
		INSERT INTO kernel.event_cursors (subscriber, kind, position, owner, reason)
		VALUES ($1, 'live', (SELECT COALESCE(max(seq), 0) FROM kernel.events), $2, 'installed')
		ON CONFLICT (subscriber) WHERE kind = 'live' DO UPDATE SET owner = EXCLUDED.owner, updated_at = now()`,
		d.name, d.s.opts.ReplicaID)
	if err != nil {
		return err
	}
	d.reload.Store(true)
	return nil
}

// fence checks, inside tx, that this replica still owns the subscriber
// (and keeps it so until tx ends).
func (d *dispatcher) fence(ctx context.Context, tx pgx.Tx) error {
	tag, err := tx.Exec(ctx, `UPDATE kernel.event_cursors SET updated_at = now() WHERE subscriber = $1 AND kind = 'live' AND owner = $2`, d.name, d.s.opts.ReplicaID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return errFenced
	}
	return nil
}

// round runs one batch of each cursor and of the due delivery rows, and
// returns how many events it settled.
func (d *dispatcher) round(ctx context.Context, sub subscriber) (int, error) {
	if sub.ordered {
		if err := d.loadHeld(ctx); err != nil {
			return 0, err
		}
	} else {
		d.held = nil
	}
	total := 0
	d.more = false
	n, err := d.cursorBatch(ctx, sub, d.live)
	if err != nil {
		return total, err
	}
	total += n
	for _, c := range slices.Clone(d.others) {
		n, err := d.cursorBatch(ctx, sub, c)
		if err != nil {
			return total, err
		}
		total += n
	}
	if d.rows || !time.Now().Before(d.nextDue) {
		n, err = d.rowsBatch(ctx, sub)
		total += n
	}
	return total, err
}

// loadHeld reads, for an ordered subscriber, the institutions that have
// pending delivery rows: their later ordered events wait behind them.
func (d *dispatcher) loadHeld(ctx context.Context) error {
	rows, err := d.s.pool.Query(ctx, `SELECT tenant_id, min(event_seq) FROM kernel.deliveries
		WHERE subscriber = $1 AND status = 'pending' AND ordered GROUP BY tenant_id`, d.name)
	if err != nil {
		return err
	}
	d.held = map[string]int64{}
	var tenant *uuid.UUID
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&tenant, &seq}, func() error {
		d.held[tenantKey(tenant)] = seq
		tenant = nil
		return nil
	})
	return err
}

// blocked says whether an ordered event of an institution at seq must wait:
// an earlier one of the institution is in a pending delivery row, or in the
// unread part of another cursor.
func (d *dispatcher) blocked(sub subscriber, tenant string, seq int64, self *cursor) bool {
	if m, ok := d.held[tenant]; ok && m < seq {
		return true
	}
	for _, c := range d.others {
		if c != self && c.holdsOrdered(sub, tenant) && c.position < seq {
			return true
		}
	}
	return false
}

// tenantKey is an institution as a map key; "" is the platform.
func tenantKey(t *uuid.UUID) string {
	if t == nil {
		return ""
	}
	return t.String()
}

// traceBatch starts the span of one delivery call: the root of a trace of
// its own (a delivery happens after, and apart from, the request that
// published the event), linked to the trace of each event's publisher. The
// plugin's spans for the events are its children (Event.traceparent).
func (d *dispatcher) traceBatch(ctx context.Context, evs []logEvent) (context.Context, trace.Span) {
	if !d.s.opts.Tracing.Enabled {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	var links []trace.Link
	for _, e := range evs {
		if sc := telemetry.SpanContext(e.traceparent); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("edulure.event.id", e.ev.Id)}})
		}
	}
	return d.s.tracer.Start(ctx, "deliver events", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("edulure.subscriber", d.name), attribute.Int("edulure.events", len(evs))))
}
