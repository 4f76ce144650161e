package events

import (
	"context"
	"encoding/json"
	"errors"
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
	Data       map[string]json.RawMessage `json:"data,omitempty" doc:"The event's data, in the one event a delivery names."`
	Deliveries map[string]int             `json:"deliveries" doc:"How many of its deliveries are in each state (pending, delivered, dead, skipped)."`
}

// DeliveryInfo is one delivery of an event to a subscriber.
type DeliveryInfo struct {
	ID            int64      `json:"id"`
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
	Before     int64 // cursor: seq or delivery ID below this
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

// Events lists the event log, newest first.
func (s *Service) Events(ctx context.Context, f Filter) ([]EventInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e.seq, e.id, e.type, e.source, e.tenant_id, e.actor, e.request_id, e.occurred_at, e.relayed_at, e.rejected,
			`+deliveryCounts+`
		FROM kernel.events e
		WHERE ($1::uuid IS NULL OR e.tenant_id = $1) AND ($2 = '' OR e.type = $2) AND ($3 = 0 OR e.seq < $3)
		ORDER BY e.seq DESC LIMIT $4`, tenantArg(f.Tenant), f.Type, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (EventInfo, error) {
		var e EventInfo
		var id uuid.UUID
		var tenant *uuid.UUID
		err := row.Scan(&e.Seq, &id, &e.Type, &e.Source, &tenant, &e.Actor, &e.RequestID, &e.OccurredAt, &e.RelayedAt, &e.Rejected, &e.Deliveries)
		e.ID, e.TenantID = id.String(), uuidString(tenant)
		return e, err
	})
}

// deliveryCounts is the column of an event's delivery counts by status.
const deliveryCounts = `COALESCE((SELECT jsonb_object_agg(status, n) FROM (
	SELECT status, count(*) AS n FROM kernel.deliveries d WHERE d.event_seq = e.seq GROUP BY status) c), '{}')`

const deliveryColumns = `d.id, e.id, e.type, d.subscriber, d.tenant_id, d.ordered, d.status, d.attempts, d.max_attempts,
	d.next_attempt_at, d.last_error, d.created_at, d.updated_at, d.delivered_at`

func scanDelivery(row pgx.CollectableRow) (DeliveryInfo, error) {
	var d DeliveryInfo
	var eid uuid.UUID
	var tenant *uuid.UUID
	var next time.Time
	err := row.Scan(&d.ID, &eid, &d.EventType, &d.Subscriber, &tenant, &d.Ordered, &d.Status, &d.Attempts, &d.MaxAttempts,
		&next, &d.LastError, &d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt)
	d.EventID, d.TenantID = eid.String(), uuidString(tenant)
	if d.Status == "pending" {
		d.NextAttemptAt = &next
	}
	return d, err
}

// Deliveries lists deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, f Filter) ([]DeliveryInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+deliveryColumns+`
		FROM kernel.deliveries d JOIN kernel.events e ON e.seq = d.event_seq
		WHERE ($1::uuid IS NULL OR d.tenant_id = $1) AND ($2 = '' OR d.subscriber = $2) AND ($3 = '' OR d.status = $3)
			AND ($4 = '' OR e.type = $4) AND ($5 = 0 OR d.id < $5)
		ORDER BY d.id DESC LIMIT $6`, tenantArg(f.Tenant), f.Subscriber, f.Status, f.Type, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanDelivery)
}

// Delivery returns one delivery with its event (data included).
func (s *Service) Delivery(ctx context.Context, tenant uuid.UUID, id int64) (DeliveryInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+deliveryColumns+`
		FROM kernel.deliveries d JOIN kernel.events e ON e.seq = d.event_seq
		WHERE d.id = $1 AND ($2::uuid IS NULL OR d.tenant_id = $2)`, id, tenantArg(tenant))
	if err != nil {
		return DeliveryInfo{}, err
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeliveryInfo{}, sdk.Errorf(sdk.ErrNotFound, "no delivery %d", id)
	}
	if err != nil {
		return DeliveryInfo{}, err
	}
	var e EventInfo
	var eid uuid.UUID
	var etenant *uuid.UUID
	err = s.pool.QueryRow(ctx, `
		SELECT e.seq, e.id, e.type, e.source, e.tenant_id, e.actor, e.request_id, e.occurred_at, e.relayed_at, e.rejected, e.data,
			`+deliveryCounts+`
		FROM kernel.events e JOIN kernel.deliveries d ON d.event_seq = e.seq WHERE d.id = $1`, id).
		Scan(&e.Seq, &eid, &e.Type, &e.Source, &etenant, &e.Actor, &e.RequestID, &e.OccurredAt, &e.RelayedAt, &e.Rejected, &e.Data, &e.Deliveries)
	if err != nil {
		return DeliveryInfo{}, err
	}
	e.ID, e.TenantID = eid.String(), uuidString(etenant)
	d.Event = &e
	return d, nil
}

// ReplayRange selects deliveries to deliver again.
type ReplayRange struct {
	Tenant     uuid.UUID // uuid.Nil: any (operators)
	IDs        []int64   // these deliveries; or, when empty, the range below
	Subscriber string
	Status     string // default "dead"
	FromID     int64  // inclusive; 0: no lower bound
	ToID       int64  // inclusive; 0: no upper bound
}

// Replay sets the selected deliveries back to pending with fresh attempts,
// in tx (so the caller audits it in the same transaction). A delivered event
// is delivered again (its subscriber deduplicates by event ID). It returns
// how many it replayed; call Replayed after tx commits.
func (s *Service) Replay(ctx context.Context, tx pgx.Tx, r ReplayRange) (int64, error) {
	if r.Status == "" {
		r.Status = "dead"
	}
	tag, err := tx.Exec(ctx, `
		UPDATE kernel.deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
		WHERE ($1::uuid IS NULL OR tenant_id = $1)
			AND (COALESCE(cardinality($2::bigint[]), 0) > 0 AND id = ANY($2)
				OR COALESCE(cardinality($2::bigint[]), 0) = 0 AND status = $3 AND ($4 = '' OR subscriber = $4)
					AND ($5 = 0 OR id >= $5) AND ($6 = 0 OR id <= $6))
			AND status <> 'pending'`,
		tenantArg(r.Tenant), r.IDs, r.Status, r.Subscriber, r.FromID, r.ToID)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Replayed wakes the dispatchers after a committed replay (on a standby,
// the wake-up is passed on to the leader).
func (s *Service) Replayed() {
	s.wakeDispatchers(nil)
	if !s.Leader() {
		s.Wake(KernelSource)
	}
}
