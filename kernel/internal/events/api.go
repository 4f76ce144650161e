package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// EventInfo is one event of the log.
type EventInfo struct {
	Seq        int64                      `json:"seq"`
	ID         string                     `json:"id"`
	Type       string                     `json:"type"`
	Source     string                     `json:"source"`
	TenantID   *string                    `json:"tenant_id"`
	Actor      string                     `json:"actor"`
	RequestID  string                     `json:"request_id"`
	OccurredAt time.Time                  `json:"occurred_at"`
	RelayedAt  time.Time                  `json:"relayed_at"`
	Rejected   *string                    `json:"rejected,omitempty"`
	Data       map[string]json.RawMessage `json:"data,omitempty" doc:"The event's data: for callers allowed to read events' data, and in the one event a delivery names."`
	Deliveries map[string]int             `json:"deliveries" doc:"Its subscribers by the state of its delivery: delivered (the subscriber's cursor has passed it, or a failure was retried successfully), pending (not read yet, or to be retried), dead, skipped (the institution has the plugin off)."`
}

// DeliveryInfo is one delivery row: an event whose delivery to a
// subscriber failed, or waits behind one that did.
type DeliveryInfo struct {
	ID            int64      `json:"id"`
	EventSeq      int64      `json:"event_seq"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Subscriber    string     `json:"subscriber"`
	TenantID      *string    `json:"tenant_id"`
	Ordered       bool       `json:"ordered"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	MaxAttempts   int        `json:"max_attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastError     *string    `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	Event         *EventInfo `json:"event,omitempty"`
}

// Filter selects events or deliveries. Tenant uuid.Nil: every institution's
// and the platform's (operators).
type Filter struct {
	Tenant     uuid.UUID
	Type       string
	Subscriber string
	Status     string
	From, To   time.Time // events that occurred in [From, To); zero: unbounded
	WithData   bool      // include events' data
	Before     int64     // cursor: seq or delivery ID below this
	Limit      int
}

func tenantArg(t uuid.UUID) *uuid.UUID {
	if t == uuid.Nil {
		return nil
	}
	return &t
}

func uuidString(u *uuid.UUID) *string {
	if u == nil {
		return nil
	}
	s := u.String()
	return &s
}

func timeArg(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Events lists the event log, newest first. An event is relayed after it
// occurred, so the lower time bound also bounds relayed_at, which spares
// the older partitions.
func (s *Service) Events(ctx context.Context, f Filter) ([]EventInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e.seq, e.id, e.type, e.source, e.tenant_id, e.actor, e.request_id, e.occurred_at, e.relayed_at, e.rejected,
			CASE WHEN $7 THEN e.data END
		FROM kernel.events e
		WHERE ($1::uuid IS NULL OR e.tenant_id = $1) AND ($2 = '' OR e.type = $2) AND ($3 = 0 OR e.seq < $3)
			AND ($5::timestamptz IS NULL OR (e.occurred_at >= $5 AND e.relayed_at >= $5))
			AND ($6::timestamptz IS NULL OR e.occurred_at < $6)
		ORDER BY e.seq DESC LIMIT $4`, tenantArg(f.Tenant), f.Type, f.Before, f.Limit, timeArg(f.From), timeArg(f.To), f.WithData)
	if err != nil {
		return nil, err
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (EventInfo, error) {
		var e EventInfo
		var id uuid.UUID
		var tenant *uuid.UUID
		err := row.Scan(&e.Seq, &id, &e.Type, &e.Source, &tenant, &e.Actor, &e.RequestID, &e.OccurredAt, &e.RelayedAt, &e.Rejected, &e.Data)
		e.ID, e.TenantID = id.String(), uuidString(tenant)
		return e, err
	})
	if err != nil || len(evs) == 0 {
		return evs, err
	}
	return evs, s.deliveryCounts(ctx, evs)
}

// deliveryCounts fills in each event's Deliveries: from its delivery rows,
// and for each other subscriber of its type, from that subscriber's live
// cursor and the institution's current setting.
func (s *Service) deliveryCounts(ctx context.Context, evs []EventInfo) error {
	seqs := make([]int64, len(evs))
	var tenants []uuid.UUID
	for i, e := range evs {
		seqs[i] = e.Seq
		if e.TenantID != nil {
			tenants = append(tenants, uuid.MustParse(*e.TenantID))
		}
	}
	type key struct {
		seq int64
		sub string
	}
	rowStatus := map[key]string{}
	rows, err := s.pool.Query(ctx, `SELECT d.event_seq, d.subscriber, d.status FROM kernel.deliveries d JOIN unnest($1::bigint[]) AS b(seq) ON d.event_seq = b.seq`, seqs)
	if err != nil {
		return err
	}
	var k key
	var status string
	if _, err := pgx.ForEachRow(rows, []any{&k.seq, &k.sub, &status}, func() error { rowStatus[k] = status; return nil }); err != nil {
		return err
	}
	position := map[string]int64{}
	rows, err = s.pool.Query(ctx, `SELECT subscriber, position FROM kernel.event_cursors WHERE kind = 'live'`)
	if err != nil {
		return err
	}
	var sub string
	var pos int64
	if _, err := pgx.ForEachRow(rows, []any{&sub, &pos}, func() error { position[sub] = pos; return nil }); err != nil {
		return err
	}
	type setting struct {
		tenant uuid.UUID
		plugin string
	}
	enabled := map[setting]bool{}
	rows, err = s.pool.Query(ctx, `SELECT tenant_id, plugin, enabled FROM kernel.tenant_plugins WHERE tenant_id = ANY($1)`, tenants)
	if err != nil {
		return err
	}
	var st setting
	var on bool
	if _, err := pgx.ForEachRow(rows, []any{&st.tenant, &st.plugin, &on}, func() error { enabled[st] = on; return nil }); err != nil {
		return err
	}
	subscribers := map[string][]string{}
	byDefault := map[string]bool{}
	for _, p := range s.sup.Loaded() {
		byDefault[p.Name] = p.EnabledByDefault
		for _, x := range p.Manifest.Subscriptions {
			subscribers[x.Type] = append(subscribers[x.Type], p.Name)
		}
	}
	for i := range evs {
		e := &evs[i]
		e.Deliveries = map[string]int{}
		if e.Rejected != nil {
			continue
		}
		for _, sub := range subscribers[e.Type] {
			if st, ok := rowStatus[key{e.Seq, sub}]; ok {
				e.Deliveries[st]++
				continue
			}
			if e.TenantID != nil {
				on, set := enabled[setting{uuid.MustParse(*e.TenantID), sub}]
				if !set {
					on = byDefault[sub]
				}
				if !on {
					e.Deliveries["skipped"]++
					continue
				}
			}
			if pos, ok := position[sub]; ok && e.Seq <= pos {
				e.Deliveries["delivered"]++
			} else {
				e.Deliveries["pending"]++
			}
		}
	}
	return nil
}

const deliveryColumns = `d.id, d.event_seq, d.event_id, d.type, d.subscriber, d.tenant_id, d.ordered, d.status, d.attempts, d.max_attempts,
	d.next_attempt_at, d.last_error, d.created_at, d.updated_at, d.delivered_at`

func scanDelivery(row pgx.CollectableRow) (DeliveryInfo, error) {
	var d DeliveryInfo
	var eid uuid.UUID
	var tenant *uuid.UUID
	var next time.Time
	err := row.Scan(&d.ID, &d.EventSeq, &eid, &d.EventType, &d.Subscriber, &tenant, &d.Ordered, &d.Status, &d.Attempts, &d.MaxAttempts,
		&next, &d.LastError, &d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt)
	d.EventID, d.TenantID = eid.String(), uuidString(tenant)
	if d.Status == "pending" {
		d.NextAttemptAt = &next
	}
	return d, err
}

// Deliveries lists delivery rows, newest first.
func (s *Service) Deliveries(ctx context.Context, f Filter) ([]DeliveryInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+deliveryColumns+`
		FROM kernel.deliveries d
		WHERE ($1::uuid IS NULL OR d.tenant_id = $1) AND ($2 = '' OR d.subscriber = $2) AND ($3 = '' OR d.status = $3)
			AND ($4 = '' OR d.type = $4) AND ($5 = 0 OR d.id < $5)
		ORDER BY d.id DESC LIMIT $6`, tenantArg(f.Tenant), f.Subscriber, f.Status, f.Type, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanDelivery)
}

// Delivery returns one delivery row with its event (data included).
func (s *Service) Delivery(ctx context.Context, tenant uuid.UUID, id int64) (DeliveryInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+deliveryColumns+`, d.source, d.actor, d.request_id, d.occurred_at, d.data
		FROM kernel.deliveries d
		WHERE d.id = $1 AND ($2::uuid IS NULL OR d.tenant_id = $2)`, id, tenantArg(tenant))
	if err != nil {
		return DeliveryInfo{}, err
	}
	d, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (DeliveryInfo, error) {
		var d DeliveryInfo
		var eid uuid.UUID
		var tenant *uuid.UUID
		var next time.Time
		e := &EventInfo{}
		err := row.Scan(&d.ID, &d.EventSeq, &eid, &d.EventType, &d.Subscriber, &tenant, &d.Ordered, &d.Status, &d.Attempts, &d.MaxAttempts,
			&next, &d.LastError, &d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt, &e.Source, &e.Actor, &e.RequestID, &e.OccurredAt, &e.Data)
		d.EventID, d.TenantID = eid.String(), uuidString(tenant)
		if d.Status == "pending" {
			d.NextAttemptAt = &next
		}
		e.Seq, e.ID, e.Type, e.TenantID = d.EventSeq, d.EventID, d.EventType, d.TenantID
		d.Event = e
		return d, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return DeliveryInfo{}, sdk.Errorf(sdk.ErrNotFound, "no delivery %d", id)
	}
	if err != nil {
		return DeliveryInfo{}, err
	}
	// The event's delivery counts, as the list of events shows them.
	evs := []EventInfo{*d.Event}
	if err := s.deliveryCounts(ctx, evs); err != nil {
		return DeliveryInfo{}, err
	}
	d.Event = &evs[0]
	return d, nil
}

// ReplayRange selects delivery rows to deliver again, or to discard.
type ReplayRange struct {
	Tenant     uuid.UUID // uuid.Nil: any (operators)
	IDs        []int64   // these deliveries; or, when empty, the range below
	Subscriber string
	Status     string // default "dead"
	FromID     int64  // inclusive; 0: no lower bound
	ToID       int64  // inclusive; 0: no upper bound
}

const selectRows = `($1::uuid IS NULL OR tenant_id = $1)
	AND (COALESCE(cardinality($2::bigint[]), 0) > 0 AND id = ANY($2)
		OR COALESCE(cardinality($2::bigint[]), 0) = 0 AND status = $3 AND ($4 = '' OR subscriber = $4)
			AND ($5 = 0 OR id >= $5) AND ($6 = 0 OR id <= $6))`

// Replay sets the selected delivery rows back to pending with fresh
// attempts, in tx (so the caller audits it in the same transaction). A
// delivered event is delivered again (its subscriber deduplicates by event
// ID). It returns how many it replayed; call Replayed after tx commits.
func (s *Service) Replay(ctx context.Context, tx pgx.Tx, r ReplayRange) (int64, error) {
	if r.Status == "" {
		r.Status = "dead"
	}
	tag, err := tx.Exec(ctx, `
		UPDATE kernel.deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
		WHERE `+selectRows+` AND status <> 'pending'`,
		tenantArg(r.Tenant), r.IDs, r.Status, r.Subscriber, r.FromID, r.ToID)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Discard deletes the selected dead letters (by default; or the settled
// rows of another status), in tx, and returns how many.
func (s *Service) Discard(ctx context.Context, tx pgx.Tx, r ReplayRange) (int64, error) {
	if r.Status == "" {
		r.Status = "dead"
	}
	// Only dead letters: a delivered or skipped row is the record of what
	// became of its event, kept until retention prunes it.
	tag, err := tx.Exec(ctx, `DELETE FROM kernel.deliveries WHERE `+selectRows+` AND status = 'dead'`,
		tenantArg(r.Tenant), r.IDs, r.Status, r.Subscriber, r.FromID, r.ToID)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// MaxOpenReplays is how many log replays of one subscriber may run at once
// for one institution (and for the platform's operators).
const MaxOpenReplays = 5

// LogReplay asks for a part of the log to be delivered to a subscriber
// again, through a cursor of its own.
type LogReplay struct {
	Tenant     uuid.UUID // uuid.Nil: every institution's and the platform's (operators)
	Subscriber string
	Type       string // "": every type the subscriber subscribes to
	FromSeq    int64  // inclusive
	ToSeq      int64  // inclusive; 0: the head of the log
}

// ReplayLog creates the replay cursor in tx and returns its ID and the
// range it covers; call Replayed after tx commits. A subscriber that is
// not loaded, or does not subscribe to Type, is refused.
func (s *Service) ReplayLog(ctx context.Context, tx pgx.Tx, r LogReplay) (id, from, to int64, err error) {
	var types []string
	found := false
	for _, p := range s.sup.Loaded() {
		if p.Name != r.Subscriber {
			continue
		}
		for _, x := range p.Manifest.Subscriptions {
			found = true
			if r.Type == "" || x.Type == r.Type {
				types = append(types, x.Type)
			}
		}
	}
	switch {
	case !found:
		return 0, 0, 0, sdk.Invalid(sdk.FieldError{Field: "subscriber", Message: fmt.Sprintf("no loaded plugin %q subscribes to events", r.Subscriber)})
	case len(types) == 0:
		return 0, 0, 0, sdk.Invalid(sdk.FieldError{Field: "type", Message: fmt.Sprintf("plugin %q does not subscribe to %s", r.Subscriber, r.Type)})
	}
	// Replays of one subscriber for one institution (or the platform) are
	// counted under a lock: each open one is a cursor its dispatcher reads
	// every round, for every institution's deliveries.
	scope := r.Subscriber + ":"
	if r.Tenant != uuid.Nil {
		scope += r.Tenant.String()
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('edulure.replay:' || $1::text, 0))`, scope); err != nil {
		return 0, 0, 0, err
	}
	var open int
	err = tx.QueryRow(ctx, `SELECT count(*) FROM kernel.event_cursors WHERE subscriber = $1 AND kind = 'replay' AND tenant_id IS NOT DISTINCT FROM $2::uuid`,
		r.Subscriber, tenantArg(r.Tenant)).Scan(&open)
	if err != nil {
		return 0, 0, 0, err
	}
	if open >= MaxOpenReplays {
		return 0, 0, 0, sdk.Errorf(sdk.ErrConflict, "%d replays of the log to %s are still running here (at most %d at once); retry when one has finished",
			open, r.Subscriber, MaxOpenReplays).WithCode("too-many-replays")
	}
	// The end of the range: the newest event the caller may see (an
	// institution's admin, its own institution's).
	var head int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(seq), 0) FROM kernel.events WHERE $1::uuid IS NULL OR tenant_id = $1`, tenantArg(r.Tenant)).Scan(&head); err != nil {
		return 0, 0, 0, err
	}
	to = r.ToSeq
	if to == 0 || to > head {
		to = head
	}
	from = max(r.FromSeq, 1)
	if from > to {
		return 0, 0, 0, sdk.Invalid(sdk.FieldError{Field: "from_seq", Message: fmt.Sprintf("there are no events to replay from seq %d on (the newest is %d)", r.FromSeq, head)})
	}
	err = tx.QueryRow(ctx, `INSERT INTO kernel.event_cursors (subscriber, kind, position, until_seq, tenant_id, types, reason)
		VALUES ($1, 'replay', $2, $3, $4, $5, 'replay') RETURNING id`, r.Subscriber, from-1, to, tenantArg(r.Tenant), types).Scan(&id)
	return id, from, to, err
}

// Replayed wakes the dispatchers to re-read their delivery rows and
// cursors after a committed replay, here and on the other replicas.
func (s *Service) Replayed() {
	s.wakeDispatchers(nil, true)
	s.passOnWake(wakeDeliver)
}
