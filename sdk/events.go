package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/telemetry"
)

// Subscription asks the kernel to deliver one event type to Handler.
//
// Delivery is at least once: the same event can arrive again after a crash
// or a timeout, with the same ID. Event.Tx records the ID in the plugin's
// inbox in the same transaction as the handler's changes, so a handler that
// does its work in Event.Tx applies each event once.
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
	Handler     EventHandler
}

// EventHandler handles one delivered event. Returning an error makes the
// kernel retry the delivery with exponential backoff.
//
// Since: v1.1
type EventHandler func(ctx context.Context, ev *Event) error

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
	if traceparent, _ := telemetry.Inject(ctx); traceparent != "" {
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
