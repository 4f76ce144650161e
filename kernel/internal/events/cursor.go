package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"google.golang.org/protobuf/proto"

	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// cursor is a position in the event log (kernel.event_cursors): every event
// after it, up to until, that its filters select is owed to the subscriber.
type cursor struct {
	id       int64
	kind     string // "live", "catchup" or "replay"
	position int64  // the last seq passed
	until    int64  // catch-up and replay: the last seq covered; 0: live
	tenant   *uuid.UUID
	types    []string   // catch-up and replay: these types; nil: every subscribed one
	since    *time.Time // catch-up: events that occurred at or after it
	// floor is the live cursor's relayed_at of its position, less
	// floorSlack, once known: the log's order is the order of relayed_at
	// (the database's clock permitting), so reads skip the older
	// partitions.
	floor time.Time
}

// floorSlack is how far back from its position's time the live cursor
// reads: a day, so that only a step of the database server's clock back by
// more than that could hide an event from it, while reads still skip all
// but the last two days' partitions.
const floorSlack = 24 * time.Hour

// holdsOrdered says whether the cursor may still owe an ordered event of
// the institution.
func (c *cursor) holdsOrdered(sub subscriber, tenant string) bool {
	if c.tenant != nil && c.tenant.String() != tenant {
		return false
	}
	types := c.types
	if types == nil {
		types = sub.types
	}
	return slices.ContainsFunc(types, sub.isOrdered)
}

func (c *cursor) selects(typ string) bool { return c.types == nil || slices.Contains(c.types, typ) }

// loadCursors reads the subscriber's cursors (after a claim, a replay, or
// a failed transaction).
func (d *dispatcher) loadCursors(ctx context.Context) error {
	rows, err := d.s.pool.Query(ctx, `SELECT id, kind, position, COALESCE(until_seq, 0), tenant_id, types, since
		FROM kernel.event_cursors WHERE subscriber = $1 ORDER BY id`, d.name)
	if err != nil {
		return err
	}
	var live *cursor
	var others []*cursor
	var c cursor
	_, err = pgx.ForEachRow(rows, []any{&c.id, &c.kind, &c.position, &c.until, &c.tenant, &c.types, &c.since}, func() error {
		x := c
		if x.kind == "live" {
			if d.live != nil && d.live.id == x.id && d.live.position == x.position {
				x.floor = d.live.floor
			}
			live = &x
		} else {
			others = append(others, &x)
		}
		c = cursor{}
		return nil
	})
	if err != nil {
		return err
	}
	if live == nil {
		return errFenced // the live cursor is created by claim and never deleted
	}
	d.live, d.others = live, others
	return nil
}

// logEvent is one event read from the log for the subscriber.
type logEvent struct {
	seq       int64
	tenant    *uuid.UUID
	enabled   bool // the institution has the plugin enabled (platform events: always)
	early     bool // live reads: it precedes the institution's enablement of the plugin in the log
	relayedAt time.Time
	ev        *pluginv1.Event // a kernel event's data as logged: its secrets sealed
	// traceparent is the trace context of the work that published it.
	traceparent string
}

// Reads of the log. Each selects the subscriber's types and the event's
// enablement for the institution in one statement; the live read also
// returns the head of the log in the same snapshot, so that a batch that
// is not full moves the cursor to the head (a subscriber of rare types
// does not hold the log's pruning back).
const (
	readColumns = `b.seq, b.id, b.type, b.tenant_id, b.actor, b.request_id, b.data, b.occurred_at, b.source, b.relayed_at,
		(b.tenant_id IS NULL OR COALESCE(tp.enabled, $5)), b.traceparent`
	// The live read also says whether an event precedes the institution's
	// latest enablement of the plugin in the log (enabled_seq; still NULL
	// while the enablement waits in the outbox, when every event seen
	// precedes it): such an event belongs to the catch-up that enablement
	// starts, if the event's subscription asks for one.
	readLiveColumns = readColumns + `, (tp.enabled_event IS NOT NULL AND COALESCE(b.seq < tp.enabled_seq, true))`
	readByType      = `
		SELECT x.* FROM unnest($3::text[]) AS t(type)
		CROSS JOIN LATERAL (
			SELECT e.seq, e.id, e.type, e.tenant_id, e.actor, e.request_id, e.data, e.occurred_at, e.source, e.relayed_at, e.traceparent
			FROM kernel.events e
			WHERE e.type = t.type AND e.seq > $2 AND e.seq <= $7 AND e.relayed_at >= $6 AND e.rejected IS NULL
				AND ($8::timestamptz IS NULL OR e.occurred_at >= $8)
			ORDER BY e.type, e.seq LIMIT $4) x -- (type, seq): the events_type index's order, so that a rare type is found there
		ORDER BY x.seq LIMIT $4`
	readLive = `
		WITH head AS (SELECT max(h.seq) AS seq, max(h.relayed_at) AS at FROM (
			SELECT seq, relayed_at FROM kernel.events WHERE seq > $2 AND relayed_at >= $6 ORDER BY seq DESC LIMIT 1) h),
		batch AS (` + readByType + `)
		SELECT h.seq, h.at, ` + readLiveColumns + `
		FROM head h LEFT JOIN batch b ON true
		LEFT JOIN kernel.tenant_plugins tp ON tp.tenant_id = b.tenant_id AND tp.plugin = $1
		ORDER BY b.seq`
	readAll = `
		SELECT ` + readColumns + `
		FROM (` + readByType + `) b
		LEFT JOIN kernel.tenant_plugins tp ON tp.tenant_id = b.tenant_id AND tp.plugin = $1
		ORDER BY b.seq`
	readTenant = `
		SELECT ` + readColumns + `
		FROM (SELECT e.seq, e.id, e.type, e.tenant_id, e.actor, e.request_id, e.data, e.occurred_at, e.source, e.relayed_at, e.traceparent
			FROM kernel.events e
			WHERE e.tenant_id = $9 AND e.seq > $2 AND e.seq <= $7 AND e.relayed_at >= $6 AND e.type = ANY($3) AND e.rejected IS NULL
				AND ($8::timestamptz IS NULL OR e.occurred_at >= $8)
			ORDER BY e.seq LIMIT $4) b
		LEFT JOIN kernel.tenant_plugins tp ON tp.tenant_id = b.tenant_id AND tp.plugin = $1
		ORDER BY b.seq`
)

// readWindow bounds how far past its position one read of a cursor looks
// (in seqs, as a multiple of the batch): a read costs at most that much
// however rare the cursor's types, whatever plan Postgres picks.
const readWindow = 10

// read reads the next batch of c, among the events up to upTo; for the
// live cursor also the head of the log (0 when nothing follows the
// position).
func (d *dispatcher) read(ctx context.Context, sub subscriber, c *cursor) (evs []logEvent, upTo, head int64, headAt time.Time, err error) {
	types := sub.types
	if c.types != nil {
		types = c.types
	}
	if c.kind == "live" && sub.catchUp && !slices.Contains(types, outbox.PluginEnabled) {
		types = append(slices.Clone(types), outbox.PluginEnabled) // catch-up on enablement
	}
	upTo = c.position + int64(readWindow*d.s.opts.BatchSize)
	if c.until != 0 {
		upTo = min(upTo, c.until)
	}
	args := []any{d.name, c.position, types, d.s.opts.BatchSize, sub.byDefault, c.floor, upTo, c.since}
	var rows pgx.Rows
	switch {
	case c.kind == "live" && d.unsettled:
		// The live cursor's last move goes with this read: one round trip.
		b := &pgx.Batch{}
		b.Queue(`UPDATE kernel.event_cursors SET position = $1, updated_at = now() WHERE id = $2 AND owner = $3`, c.position, c.id, d.s.opts.ReplicaID)
		b.Queue(readLive, args...)
		br := d.s.pool.SendBatch(ctx, b)
		defer br.Close()
		tag, err := br.Exec()
		if err != nil {
			return nil, 0, 0, time.Time{}, err
		}
		if tag.RowsAffected() == 0 {
			return nil, 0, 0, time.Time{}, errFenced
		}
		d.unsettled = false
		rows, err = br.Query()
		if err != nil {
			return nil, 0, 0, time.Time{}, err
		}
	case c.kind == "live":
		rows, err = d.s.pool.Query(ctx, readLive, args...)
	case c.tenant == nil:
		rows, err = d.s.pool.Query(ctx, readAll, args...)
	default:
		rows, err = d.s.pool.Query(ctx, readTenant, append(args, *c.tenant)...)
	}
	if err != nil {
		return nil, 0, 0, time.Time{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			h                         *int64
			hAt                       *time.Time
			seq                       *int64
			id                        uuid.UUID
			tenant                    *uuid.UUID
			typ, actor, reqID, source *string
			data                      []byte
			occurred, relayed         *time.Time
			enabled, early            *bool
			traceparent               *string
		)
		dest := []any{&seq, &id, &typ, &tenant, &actor, &reqID, &data, &occurred, &source, &relayed, &enabled, &traceparent}
		if c.kind == "live" {
			dest = append(append([]any{&h, &hAt}, dest...), &early)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, 0, time.Time{}, err
		}
		if h != nil {
			head, headAt = *h, *hAt
		}
		if seq == nil {
			continue // the live read's head row with no event
		}
		ev := &pluginv1.Event{
			Id: id.String(), Type: *typ, Actor: *actor, RequestId: *reqID, DataJson: data, Source: *source,
			OccurredAtUnixMs: occurred.UnixMilli(), Attempt: 1,
		}
		if tenant != nil {
			ev.TenantId = tenant.String()
		}
		evs = append(evs, logEvent{seq: *seq, tenant: tenant, enabled: *enabled, early: early != nil && *early, relayedAt: *relayed, ev: ev, traceparent: *traceparent})
	}
	return evs, upTo, head, headAt, rows.Err()
}

// cursorBatch delivers the next batch of cursor c and moves it on: events
// of an institution that has the plugin disabled are passed over, an
// ordered event that must wait behind an earlier one becomes a delivery
// row, and so does each event whose delivery failed. It returns how many
// events it passed.
func (d *dispatcher) cursorBatch(ctx context.Context, sub subscriber, c *cursor) (int, error) {
	evs, upTo, head, headAt, err := d.read(ctx, sub, c)
	if err != nil {
		return 0, err
	}
	full := len(evs) == d.s.opts.BatchSize
	var created []*cursor
	caughtUp := map[string]int64{} // institution → the enablement its new catch-up runs up to
	if c.kind == "live" && sub.catchUp {
		for _, e := range evs {
			if cs := d.catchUpOnEnable(sub, e); len(cs) > 0 {
				created = append(created, cs...)
				caughtUp[tenantKey(e.tenant)] = e.seq
			}
		}
		// The new catch-ups hold the institution's later ordered events back.
		d.others = append(d.others, created...)
	}
	var send []logEvent
	var rows []deliveryRow
	for _, e := range evs {
		typ := e.ev.Type
		if sub.subs[typ] == nil || !e.enabled || !c.selects(typ) {
			continue
		}
		if e.early && sub.catchesUp(typ) {
			continue // the catch-up of the enablement that follows it in the log delivers it
		}
		t := tenantKey(e.tenant)
		if at, ok := caughtUp[t]; ok && e.seq <= at && slices.ContainsFunc(created, func(x *cursor) bool { return x.selects(typ) && tenantKey(x.tenant) == t }) {
			continue // the catch-up delivers it
		}
		if sub.isOrdered(typ) && d.blocked(sub, t, e.seq, c) {
			rows = append(rows, d.row(sub, e, 0, "", 0))
			d.hold(t, e.seq)
			continue
		}
		send = append(send, e)
	}
	failed, dead := 0, 0 // of this batch's deliveries
	if len(send) > 0 {
		results, err := d.deliver(ctx, send)
		if err != nil {
			d.reload.Store(true) // drop the catch-ups not created
			return 0, err
		}
		for i, e := range send {
			r := results[i]
			switch {
			case r.err == "":
			case !r.attempted:
				rows = append(rows, d.row(sub, e, 0, "", 0))
				d.hold(tenantKey(e.tenant), e.seq)
			default:
				failed++
				row := d.row(sub, e, 1, r.err, d.s.backoff(1))
				if row.attempts >= row.max {
					dead++
				}
				rows = append(rows, row)
				if sub.isOrdered(e.ev.Type) {
					d.hold(tenantKey(e.tenant), e.seq)
				}
			}
		}
		if failed > 0 {
			d.s.logger.Warn("deliveries failed; retrying them", "subscriber", d.name, "cursor", c.kind, "count", failed, "first_error", firstError(results))
		}
	}
	// Where the cursor goes: after a full batch, to its last event; else
	// to the end of what it read (the head, for the live cursor, when that
	// was within the window), and a catch-up or replay that reached its
	// end is done.
	next, done := c.position, false
	switch {
	case full:
		next = evs[len(evs)-1].seq
		if c.kind == "live" {
			c.floor = evs[len(evs)-1].relayedAt.Add(-floorSlack)
		}
	case c.kind == "live" && head > c.position && head <= upTo:
		next, c.floor = head, headAt.Add(-floorSlack)
	case c.kind == "live" && head > c.position:
		next = upTo
	case c.kind != "live":
		next, done = upTo, upTo >= c.until
	}
	d.more = d.more || full || (c.kind == "live" && head > next) || (c.kind != "live" && !done)
	if err := d.settle(ctx, c, next, done, rows, created); err != nil {
		d.reload.Store(true)
		return 0, err
	}
	d.s.metrics.settled(d.name, "failed", failed-dead)
	d.s.metrics.settled(d.name, "dead", dead)
	if len(rows) > 0 {
		d.rows = true
	}
	if len(created) > 0 {
		d.more = true // the new catch-ups have work
	}
	return len(evs), nil
}

// hold records that an institution's ordered events wait from seq on.
func (d *dispatcher) hold(tenant string, seq int64) {
	if d.held == nil {
		d.held = map[string]int64{}
	}
	if m, ok := d.held[tenant]; !ok || seq < m {
		d.held[tenant] = seq
	}
}

// result is one event's outcome from the plugin.
type result struct {
	err       string
	attempted bool
}

func firstError(rs []result) string {
	for _, r := range rs {
		if r.err != "" {
			return r.err
		}
	}
	return ""
}

// deliver sends events in one call. A call that fails as a whole (the
// plugin died or timed out) fails every event once; supervisor.ErrNotRunning
// is returned as it is (nothing was attempted). A kernel event's sealed
// fields are opened here, for the call only (the log and the delivery rows
// keep them sealed); one that cannot be opened (EDULURE_SECRET_KEY changed)
// is not sent and fails with the reason.
func (d *dispatcher) deliver(ctx context.Context, evs []logEvent) ([]result, error) {
	ctx, span := d.traceBatch(ctx, evs)
	defer span.End()
	out := make([]result, len(evs))
	in := make([]*pluginv1.Event, 0, len(evs))
	sent := make([]int, 0, len(evs))
	for i, e := range evs {
		ev := e.ev
		if ev.Source == KernelSource {
			opened, err := outbox.Open(d.s.opts.Sealer, ev.Id, ev.Type, ev.DataJson)
			if err != nil {
				out[i] = result{err: "opening the event's sealed fields: " + err.Error(), attempted: true}
				continue
			}
			ev = proto.Clone(ev).(*pluginv1.Event)
			ev.DataJson = opened
		}
		in, sent = append(in, ev), append(sent, i)
	}
	if len(in) > 0 {
		resp, err := d.s.sup.DeliverEvents(ctx, d.name, in, d.s.opts.DeliveryTimeout)
		if errors.Is(err, supervisor.ErrNotRunning) || ctx.Err() != nil {
			return nil, errors.Join(err, ctx.Err())
		}
		for j, i := range sent {
			switch {
			case err != nil:
				out[i] = result{err: err.Error(), attempted: true}
			case j >= len(resp.Results) || resp.Results[j] == nil || resp.Results[j].EventId != in[j].Id:
				out[i] = result{err: "the plugin answered for another event", attempted: true}
			default:
				out[i] = result{err: truncate(resp.Results[j].Error, 2000), attempted: resp.Results[j].Attempted || resp.Results[j].Error == ""}
			}
		}
	}
	// Delivered events are counted here; failures, dead letters and skips
	// where their rows are written (cursorBatch, record).
	delivered, failed := 0, 0
	for i, r := range out {
		switch {
		case r.err == "" && r.attempted:
			delivered++
			d.s.metrics.delivered(d.name, time.UnixMilli(evs[i].ev.OccurredAtUnixMs))
		case r.err != "":
			failed++
		}
	}
	d.s.metrics.settled(d.name, "delivered", delivered)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("edulure.events.delivered", delivered), attribute.Int("edulure.events.failed", failed))
		if failed > 0 {
			span.SetStatus(codes.Error, "some deliveries failed")
		}
	}
	return out, nil
}

// enablement is the data of tenancy.plugin.enabled.v1 that matters here.
type enablement struct {
	Plugin     string `json:"plugin"`
	WasEnabled *bool  `json:"was_enabled"`
}

// catchUpOnEnable returns the catch-up cursors an event asks for: when it
// is the institution turning this plugin on (not a change of settings of
// a plugin already on), one per distinct catch-up of the subscriptions,
// reading the institution's history up to the enablement.
func (d *dispatcher) catchUpOnEnable(sub subscriber, e logEvent) []*cursor {
	if e.ev.Type != outbox.PluginEnabled || e.tenant == nil {
		return nil
	}
	var en enablement
	if json.Unmarshal(e.ev.DataJson, &en) != nil || en.Plugin != d.name || (en.WasEnabled != nil && *en.WasEnabled) {
		return nil
	}
	return catchUps(sub, sub.types, e.tenant, e.seq, time.Now())
}

// catchUps groups types by the catch-up their subscriptions declare and
// makes a cursor for each group, up to until.
func catchUps(sub subscriber, types []string, tenant *uuid.UUID, until int64, now time.Time) []*cursor {
	if until <= 0 {
		return nil
	}
	var out []*cursor
	bySince := map[int64]*cursor{}
	for _, t := range types {
		x := sub.subs[t]
		if x == nil {
			continue
		}
		var since *time.Time
		switch x.CatchUp {
		case "retained":
		case "since":
			s := time.UnixMilli(x.CatchUpSinceUnixMs)
			since = &s
		case "window":
			s := now.Add(-time.Duration(x.CatchUpWindowSeconds) * time.Second)
			since = &s
		default:
			continue
		}
		key := int64(0)
		if since != nil {
			key = since.UnixMilli()
		}
		c := bySince[key]
		if c == nil {
			c = &cursor{kind: "catchup", until: until, tenant: tenant, since: since}
			bySince[key] = c
			out = append(out, c)
		}
		c.types = append(c.types, t)
	}
	return out
}

// subscriptionsChanged records the subscriber's new subscriptions (all of
// them for a subscriber installed just now) and starts the catch-ups they
// declare, over every institution, up to the live cursor: the live cursor
// delivers what follows.
func (d *dispatcher) subscriptionsChanged(ctx context.Context, sub subscriber) error {
	if d.known == nil {
		rows, err := d.s.pool.Query(ctx, `SELECT type FROM kernel.event_subscriptions WHERE subscriber = $1`, d.name)
		if err != nil {
			return err
		}
		types, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		d.known = map[string]bool{}
		for _, t := range types {
			d.known[t] = true
		}
	}
	var fresh []string
	for _, t := range sub.types {
		if !d.known[t] {
			fresh = append(fresh, t)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	created := catchUps(sub, fresh, nil, d.live.position, time.Now())
	tx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if err := d.fence(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO kernel.event_subscriptions (subscriber, type, since_seq)
		SELECT $1, t, $3 FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING`, d.name, fresh, d.live.position); err != nil {
		return err
	}
	if err := d.insertCursors(ctx, tx, created, "subscribed"); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	for _, t := range fresh {
		d.known[t] = true
	}
	d.others = append(d.others, created...)
	if len(created) > 0 {
		d.s.logger.Info("catching up a new subscription", "subscriber", d.name, "types", fresh, "up_to_seq", d.live.position)
	}
	return nil
}

func (d *dispatcher) insertCursors(ctx context.Context, tx pgx.Tx, cs []*cursor, reason string) error {
	for _, c := range cs {
		if err := tx.QueryRow(ctx, `INSERT INTO kernel.event_cursors (subscriber, kind, position, until_seq, tenant_id, types, since, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, d.name, c.kind, c.position, c.until, c.tenant, c.types, c.since, reason).Scan(&c.id); err != nil {
			return fmt.Errorf("creating a catch-up: %w", err)
		}
	}
	return nil
}

// settle records a batch in one transaction: the delivery rows, the new
// catch-ups, and the cursor's new position (or, for a catch-up or replay
// that reached its end, its deletion). The live cursor's update is also the
// fencing check; the common case, the live cursor moving on with nothing
// else to write, is that one statement.
func (d *dispatcher) settle(ctx context.Context, c *cursor, next int64, done bool, rows []deliveryRow, created []*cursor) error {
	switch {
	case c.kind == "live" && len(rows) == 0 && len(created) == 0:
		// Written with the next read, or before the dispatcher sleeps
		// (flushLive): until then a crash delivers the batch again, as at
		// least once allows.
		if next != c.position {
			c.position, d.unsettled = next, true
		}
		return nil
	case c.kind != "live" && len(rows) == 0 && len(created) == 0:
		// One statement, fenced by the live cursor's owner.
		q := `UPDATE kernel.event_cursors c SET position = $4, updated_at = now() WHERE c.id = $1`
		args := []any{c.id, d.name, d.s.opts.ReplicaID, next}
		if done {
			q, args = `DELETE FROM kernel.event_cursors c WHERE c.id = $1`, args[:3]
		}
		tag, err := d.s.pool.Exec(ctx, q+` AND EXISTS (SELECT 1 FROM kernel.event_cursors l WHERE l.subscriber = $2 AND l.kind = 'live' AND l.owner = $3)`, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errFenced
		}
		c.position = next
		if done {
			d.others = slices.DeleteFunc(d.others, func(x *cursor) bool { return x == c })
		}
		return nil
	}
	tx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if c.kind == "live" {
		tag, err := tx.Exec(ctx, `UPDATE kernel.event_cursors SET position = $1, updated_at = now() WHERE id = $2 AND owner = $3`, next, c.id, d.s.opts.ReplicaID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errFenced
		}
		defer func() { d.unsettled = d.unsettled && c.position != next }()
	} else if err := d.fence(ctx, tx); err != nil {
		return err
	}
	if err := d.insertRows(ctx, tx, rows); err != nil {
		return err
	}
	if err := d.insertCursors(ctx, tx, created, "enabled"); err != nil {
		return err
	}
	switch {
	case c.kind == "live":
	case done:
		if _, err := tx.Exec(ctx, `DELETE FROM kernel.event_cursors WHERE id = $1`, c.id); err != nil {
			return err
		}
	default:
		if _, err := tx.Exec(ctx, `UPDATE kernel.event_cursors SET position = $1, updated_at = now() WHERE id = $2`, next, c.id); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	c.position = next
	if done {
		d.others = slices.DeleteFunc(d.others, func(x *cursor) bool { return x == c })
		d.s.logger.Debug("a catch-up or replay finished", "subscriber", d.name, "kind", c.kind, "cursor", c.id)
	}
	for _, x := range created {
		d.s.logger.Info("catching up an institution that enabled the plugin", "subscriber", d.name, "tenant", tenantKey(x.tenant), "types", x.types, "up_to_seq", x.until)
	}
	return nil
}

// flushLive writes the live cursor's last move, if it has not been.
func (d *dispatcher) flushLive(ctx context.Context) error {
	if !d.unsettled {
		return nil
	}
	tag, err := d.s.pool.Exec(ctx, `UPDATE kernel.event_cursors SET position = $1, updated_at = now() WHERE id = $2 AND owner = $3`, d.live.position, d.live.id, d.s.opts.ReplicaID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return errFenced
	}
	d.unsettled = false
	return nil
}
