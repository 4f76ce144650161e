package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/telemetry"
	"github.com/edulure/edulure/sdk/wire"
)

// Subscription asks the kernel to deliver one event type to Handler, or
// in batches to Batch.
//
// Delivery is at least once: the same event can arrive again after a crash
// or a timeout, with the same ID. Event.Tx (and Batch.Tx) records the ID in
// the plugin's inbox in the same transaction as the handler's changes, so a
// handler that does its work there applies each event once.
//
// Since: v1.1
type Subscription struct {
	Type string // owner.noun.verb.vN, e.g. courses.lesson.completed.v1
	// Ordered delivers one institution's events of this type one at a time,
	// in the order the kernel relayed them; a failing event holds back the
	// institution's later ones until it succeeds or is dead-lettered.
	// Unordered subscriptions are handled concurrently and faster.
	Ordered bool
	// MaxAttempts before the delivery is dead-lettered; 0: the kernel's
	// default (plugins.hcl, events.max_attempts).
	MaxAttempts int
	// Handler handles one event at a time. Set Handler or Batch.
	Handler EventHandler
	// Batch handles the events of this type in batches, one institution's
	// at a time, each batch in one transaction (Batch.Tx), which costs the
	// database much less per event than a transaction each. If it fails,
	// the batch's events are handled again one per batch, so that one bad
	// event fails alone. Set Handler or Batch. Since: v1.2
	Batch BatchHandler
	// CatchUp is which past events of this type the plugin receives when an
	// institution enables it, and when the subscription (or the plugin) is
	// new; the zero value: none. They come through the same delivery as
	// live events, oldest first. Since: v1.2
	CatchUp CatchUp
}

// EventHandler handles one delivered event. Returning an error makes the
// kernel retry the delivery with exponential backoff.
//
// Since: v1.1
type EventHandler func(ctx context.Context, ev *Event) error

// BatchHandler handles a batch of delivered events of one type and one
// institution, oldest first. Returning an error fails the batch: its
// events are then handled again one per batch, and each that fails is
// retried by the kernel with exponential backoff.
//
// Since: v1.2
type BatchHandler func(ctx context.Context, b *Batch) error

// CatchUp is a subscription's catch-up: which of the events that occurred
// before the plugin was enabled for an institution (or before the
// subscription or the plugin was installed) it receives. The kernel keeps
// events for its retention (30 days by default, EDULURE_EVENTS_RETENTION):
// that is the catch-up window. The zero value asks for none.
//
// Since: v1.2
type CatchUp struct {
	policy string
	since  time.Time
	window time.Duration
}

// CatchUpRetained asks for every past event the kernel's log still holds.
//
// Since: v1.2
func CatchUpRetained() CatchUp { return CatchUp{policy: wire.CatchUpRetained} }

// CatchUpSince asks for the past events that occurred at or after t.
//
// Since: v1.2
func CatchUpSince(t time.Time) CatchUp { return CatchUp{policy: wire.CatchUpSince, since: t} }

// CatchUpWindow asks for the past events that occurred within d before the
// catch-up begins (the institution enabled the plugin, or the plugin
// started with the new subscription).
//
// Since: v1.2
func CatchUpWindow(d time.Duration) CatchUp { return CatchUp{policy: wire.CatchUpWindow, window: d} }

// wire is the catch-up as the manifest carries it.
func (c CatchUp) wire(sub *pluginv1.Subscription) {
	sub.CatchUp = c.policy
	if c.policy == wire.CatchUpSince {
		sub.CatchUpSinceUnixMs = c.since.UnixMilli()
	}
	if c.policy == wire.CatchUpWindow {
		sub.CatchUpWindowSeconds = int64((c.window + time.Second - 1) / time.Second)
	}
}

// Batch is a batch of delivered events of one type and one institution,
// oldest first.
//
// Since: v1.2
type Batch struct {
	Type     string
	TenantID string // "" for platform events
	Events   []*Event

	rt *runtime
}

// Tx runs fn in one transaction scoped to the batch's institution, with the
// batch's events not handled before: it first records all their IDs in the
// plugin's inbox in one statement, and gives fn those that were not there
// (oldest first). When none is new (a redelivery of a batch whose
// transaction committed), fn is not called and Tx returns nil.
func (b *Batch) Tx(ctx context.Context, fn func(tx pgx.Tx, events []*Event) error) error {
	ids := make([]uuid.UUID, len(b.Events))
	for i, ev := range b.Events {
		id, err := uuid.Parse(ev.ID)
		if err != nil {
			return fmt.Errorf("event ID %q is not a UUID: %w", ev.ID, err)
		}
		ids[i] = id
	}
	return b.rt.tx(ctx, b.TenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "INSERT INTO edulure_inbox (event_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id", ids)
		if err != nil {
			return fmt.Errorf("recording %d events in the inbox: %w", len(ids), err)
		}
		added, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("recording %d events in the inbox: %w", len(ids), err)
		}
		if len(added) == 0 {
			return nil // all handled before
		}
		fresh := b.Events
		if len(added) < len(ids) {
			isNew := make(map[uuid.UUID]bool, len(added))
			for _, id := range added {
				isNew[id] = true
			}
			fresh = nil
			for i, ev := range b.Events {
				if isNew[ids[i]] {
					fresh = append(fresh, ev)
					delete(isNew, ids[i]) // a duplicate in the batch counts once
				}
			}
		}
		return fn(tx, fresh)
	})
}

// Host is the kernel's services, for calls the plugin makes on behalf of
// this work (Membership, Authorize, Audit).
func (b *Batch) Host() Host { return b.rt.hostOrNone() }

// Event is one delivered event: the envelope and its data.
//
// Since: v1.1
type Event struct {
	ID         string // UUIDv7, the idempotency key
	Type       string
	TenantID   string // "" for platform events
	Actor      string // "user:<id>", "apikey:<id>", "plugin:<name>" or "system"
	OccurredAt time.Time
	RequestID  string
	Source     string // the publishing plugin, or "kernel"
	Data       json.RawMessage
	Attempt    int // 1 on the first delivery

	rt *runtime
}

var _ Scope = (*Event)(nil)

// Tenant is the event's institution ("" for a platform event).
func (e *Event) Tenant() string { return e.TenantID }

// Decode reads the event's data into v. Unknown fields are ignored: a
// publisher may add fields to a version of an event type, never remove them.
func (e *Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decoding %s event %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Tx runs fn in a transaction scoped to the event's institution that first
// records the event's ID in the plugin's inbox. When the ID is already there
// (a redelivery of an event whose transaction committed), fn is not called
// and Tx returns nil: the handler's changes are applied once.
func (e *Event) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return e.rt.tx(ctx, e.TenantID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO edulure_inbox (event_id) VALUES ($1) ON CONFLICT DO NOTHING", e.ID)
		if err != nil {
			return fmt.Errorf("recording event %s in the inbox: %w", e.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil // handled before
		}
		return fn(tx)
	})
}

// Publish writes an event to the plugin's outbox inside tx, for the event's
// institution, with the event as its cause (same actor and request ID).
func (e *Event) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error {
	return e.rt.publish(ctx, tx, Outgoing{
		Type: eventType, TenantID: e.TenantID, Actor: e.Actor, RequestID: e.RequestID, Data: data,
	})
}

// Host is the kernel's services, for calls the plugin makes on behalf of
// this work (Membership, Authorize, Audit).
func (e *Event) Host() Host { return e.rt.hostOrNone() }

func (e *Event) config(ctx context.Context) (json.RawMessage, error) {
	return tenantConfig(ctx, e.rt, e.TenantID)
}
func (e *Event) runtime() *runtime { return e.rt }

// tenantConfig reads an institution's own configuration from the kernel.
func tenantConfig(ctx context.Context, rt *runtime, tenantID string) (json.RawMessage, error) {
	if tenantID == "" || rt == nil {
		return nil, nil
	}
	cfg, _, err := rt.host.TenantConfig(ctx, tenantID)
	return cfg, err
}

// Outgoing is an event to publish.
//
// Since: v1.1
type Outgoing struct {
	Type      string
	TenantID  string // required: a plugin's events belong to an institution
	Actor     string
	RequestID string
	Data      any // encoded as JSON; must match the type's schema
}

// Publish writes ev to the plugin's outbox inside tx (a transaction from
// InTenant for ev.TenantID). Request.Publish, Event.Publish and
// JobRun.Publish fill in the envelope. When InTenant commits a transaction
// that published, it wakes the kernel's relay at once; after a transaction
// begun some other way, call Published.
func (db *DB) Publish(ctx context.Context, tx pgx.Tx, ev Outgoing) error {
	if db == nil || db.rt == nil {
		return errors.New("publishing: this DB is not the plugin's own (Env.DB)")
	}
	s, ok := db.rt.publishes[ev.Type]
	if !ok {
		return fmt.Errorf("publishing %q: the manifest does not declare it in Publishes", ev.Type)
	}
	if ev.TenantID == "" {
		return fmt.Errorf("publishing %s: a plugin's event needs an institution (TenantID)", ev.Type)
	}
	data, err := json.Marshal(ev.Data)
	if err != nil {
		return fmt.Errorf("publishing %s: encoding data: %w", ev.Type, err)
	}
	doc, err := schema.Decode(data)
	if err != nil {
		return fmt.Errorf("publishing %s: %w", ev.Type, err)
	}
	if vs := schema.Validate(s, doc, "data"); len(vs) > 0 {
		return fmt.Errorf("publishing %s: the data does not match the schema: %s", ev.Type, violationText(vs))
	}
	actor := ev.Actor
	if actor == "" {
		actor = "plugin:" + db.rt.wire.Name
	}
	id := uuid.Must(uuid.NewV7())
	// The trace context of the publishing work (a request's, an event's, a
	// job's), so that the delivery links to it. Untraced, the column is
	// left to its default: a kernel older than v1.2 provisions none.
	traceparent, _ := telemetry.Inject(ctx)
	if otx, ok := tx.(*outboxTx); ok && otx.db == db {
		// Written with the transaction's other events before it commits.
		otx.pending = append(otx.pending, outboxRow{id: id, typ: ev.Type, tenant: ev.TenantID, actor: actor, requestID: ev.RequestID, data: string(data), traceparent: traceparent})
		db.published.Add(1)
		return nil
	}
	if traceparent != "" {
		_, err = tx.Exec(ctx, `INSERT INTO edulure_outbox (id, type, tenant_id, actor, request_id, data, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id, ev.Type, ev.TenantID, actor, ev.RequestID, data, traceparent)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO edulure_outbox (id, type, tenant_id, actor, request_id, data) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, ev.Type, ev.TenantID, actor, ev.RequestID, data)
	}
	if err != nil {
		return fmt.Errorf("publishing %s: writing to the outbox: %w", ev.Type, err)
	}
	db.published.Add(1)
	return nil
}

func violationText(vs []schema.Violation) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += "; "
		}
		out += v.Field + " " + v.Message
	}
	return out
}
