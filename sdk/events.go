package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
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

	db *DB
}

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
	if e.db == nil {
		return Errorf(ErrUnavailable, "the plugin has no database")
	}
	return e.db.InTenant(ctx, e.TenantID, func(tx pgx.Tx) error {
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
// institution, with the event as its cause (same request ID).
func (e *Event) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error {
	return e.db.Publish(ctx, tx, Outgoing{
		Type: eventType, TenantID: e.TenantID, Actor: e.Actor, RequestID: e.RequestID, Data: data,
	})
}

// Publish writes an event to the plugin's outbox inside tx, for the
// principal's institution. It is delivered if and only if tx commits. The
// type must be one the manifest publishes, and data must match its schema.
func (r *Request) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error {
	if r.db == nil {
		return Errorf(ErrUnavailable, "the plugin has no database")
	}
	return r.db.Publish(ctx, tx, Outgoing{
		Type: eventType, TenantID: r.Principal.TenantID, Actor: r.Principal.Actor(), RequestID: r.RequestID, Data: data,
	})
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
	if db == nil || db.events == nil {
		return errors.New("publishing: this DB was not built from the plugin's manifest (use sdk.NewDB)")
	}
	schema, ok := db.events.schemas[ev.Type]
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
	if err := ValidateEventData(schema, data); err != nil {
		return fmt.Errorf("publishing %s: %w", ev.Type, err)
	}
	actor := ev.Actor
	if actor == "" {
		actor = "plugin:" + db.events.plugin
	}
	_, err = tx.Exec(ctx, `INSERT INTO edulure_outbox (id, type, tenant_id, actor, request_id, data) VALUES ($1, $2, $3, $4, $5, $6)`,
		uuid.Must(uuid.NewV7()), ev.Type, ev.TenantID, actor, ev.RequestID, data)
	if err != nil {
		return fmt.Errorf("publishing %s: writing to the outbox: %w", ev.Type, err)
	}
	db.published.Add(1)
	return nil
}

// Published tells the kernel that a transaction that published events has
// committed, so it relays them now rather than at its next poll.
func (db *DB) Published() { db.hint() }

func (db *DB) hint() {
	if db != nil && db.events != nil && db.events.wake != nil {
		db.events.wake()
	}
}

// eventCatalogue is what publishing needs from the manifest.
type eventCatalogue struct {
	plugin  string
	schemas map[string]*jsonschema.Schema
	wake    func() // set by the served plugin: the EventsPublished hint
}

// CompileEventSchema compiles an event type's JSON Schema.
//
// Since: v1.1
func CompileEventSchema(eventType string, schema []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("event %s: schema is not JSON: %w", eventType, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // "format": "uuid" is a rule, not a note
	url := "edulure:///events/" + eventType + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("event %s: %w", eventType, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("event %s: schema does not compile: %w", eventType, err)
	}
	return s, nil
}

// ValidateEventData checks data (JSON) against an event type's schema and
// says, in one line, where it does not match.
//
// Since: v1.1
func ValidateEventData(schema *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("data is not JSON: %w", err)
	}
	if err := schema.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("data does not match the schema: %s", oneLine(ve))
		}
		return fmt.Errorf("data does not match the schema: %w", err)
	}
	return nil
}

// oneLine is the validation's leaf errors, joined.
func oneLine(ve *jsonschema.ValidationError) string {
	var parts []string
	for _, u := range ve.BasicOutput().Errors {
		if u.Error != nil {
			parts = append(parts, fmt.Sprintf("at %q: %s", "/"+strings.TrimPrefix(u.InstanceLocation, "/"), u.Error.String()))
		}
	}
	if len(parts) == 0 {
		return ve.Error()
	}
	return strings.Join(parts, "; ")
}

func newEventCatalogue(m Manifest) (*eventCatalogue, error) {
	cat := &eventCatalogue{plugin: m.Name, schemas: map[string]*jsonschema.Schema{}}
	for _, e := range m.Publishes {
		s, err := CompileEventSchema(e.Type, e.Schema)
		if err != nil {
			return nil, err
		}
		cat.schemas[e.Type] = s
	}
	return cat, nil
}
