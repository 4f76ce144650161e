package plugintest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
)

// EventTimeout is the deadline of one delivery (the kernel's default,
// plugins.hcl events.delivery_timeout).
//
// Since: v1.1
const EventTimeout = 30 * time.Second

// ErrSkipped is what Deliver and RunJob return, without calling the
// plugin, for an institution where the plugin is turned off (SetEnabled):
// the kernel marks such a delivery or run skipped rather than failed, and
// does not retry it.
//
// Since: v1.1
var ErrSkipped = errors.New("plugintest: skipped: the plugin is not enabled for the institution")

// Event is one event for Deliver, as the kernel would deliver it.
//
// Since: v1.1
type Event struct {
	// ID is the event's ID, the key Event.Tx deduplicates by: deliver the
	// same ID twice to test a redelivery. "": a new UUIDv7 (NewEventID).
	ID string
	// Type is one of the types the plugin subscribes to.
	Type string
	// TenantID is the institution the event belongs to; "" for a platform
	// event.
	TenantID string
	// Actor is who caused the event: "user:<id>", "apikey:<id>",
	// "plugin:<name>" or "system" (the default).
	Actor string
	// RequestID is the request that caused the event; "" when none.
	RequestID string
	// Source is the publisher: a plugin's name or "kernel" (the default).
	Source string
	// OccurredAt is when the event happened; zero: now.
	OccurredAt time.Time
	// Data is the event's data, a JSON object: a []byte, json.RawMessage or
	// string sent as is, or any other value encoded as JSON; nil: {}.
	// The kernel checks data against the publisher's schema before
	// delivering it; the harness delivers it as given, so a test can check
	// how the handler treats data it does not expect.
	Data any
	// Attempt is the delivery attempt, 1 (the default) on the first.
	Attempt int
}

// NewEventID returns a new UUIDv7, the form of the kernel's event IDs.
//
// Since: v1.1
func NewEventID() string { return uuid.Must(uuid.NewV7()).String() }

// Deliver delivers ev to the plugin's subscription for its type through
// the code path of a served plugin (HandleEvents), and returns the
// handler's error (nil when it handled the event). The error crosses the
// process boundary as text, as with the kernel: only its message is kept.
//
// A handler that does its work in sdk.Event.Tx applies an event once:
// deliver the same Event (same ID) twice and the second delivery changes
// nothing. The events the handler published are in Published.
//
// Deliver returns ErrSkipped, without calling the handler, for an
// institution where the plugin is turned off. An event the kernel would
// never deliver (a type the plugin does not subscribe to, IDs that are not
// UUIDs, data that is not a JSON object) fails the test.
//
// Since: v1.1
func (h *Harness) Deliver(t testing.TB, ev Event) error {
	t.Helper()
	if _, ok := h.subs[ev.Type]; !ok {
		t.Fatalf("plugintest: Deliver: plugin %q does not subscribe to %q, so the kernel never delivers it", h.manifest.Name, ev.Type)
	}
	in := h.wireEvent(t, ev)
	if ev.TenantID != "" {
		if _, enabled := h.tenantConfig(ev.TenantID); !enabled {
			return ErrSkipped
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	out := h.rt.HandleEvents(ctx, &pluginv1.HandleEventsRequest{
		Events: []*pluginv1.Event{in}, DeadlineUnixMs: deadline.UnixMilli(),
	})
	if len(out.Results) != 1 || out.Results[0].EventId != in.Id {
		t.Fatalf("plugintest: Deliver: the plugin answered %v for event %s", out.Results, in.Id)
	}
	if r := out.Results[0]; r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

// DeliverBatch delivers evs to the plugin in one call, as the kernel
// delivers a batch (HandleEvents), and returns one error per event, in
// order (nil when handled). A Batch subscription gets its events grouped by
// type and institution; an ordered subscription's events of an institution
// are handled in order, those after a failure not at all (their error says
// they were held back). An institution where the plugin is turned off gets
// ErrSkipped without the plugin seeing its events.
//
// Since: v1.2
func (h *Harness) DeliverBatch(t testing.TB, evs ...Event) []error {
	t.Helper()
	errs := make([]error, len(evs))
	var in []*pluginv1.Event
	var at []int
	for i, ev := range evs {
		if _, ok := h.subs[ev.Type]; !ok {
			t.Fatalf("plugintest: DeliverBatch: plugin %q does not subscribe to %q, so the kernel never delivers it", h.manifest.Name, ev.Type)
		}
		w := h.wireEvent(t, ev)
		if ev.TenantID != "" {
			if _, enabled := h.tenantConfig(ev.TenantID); !enabled {
				errs[i] = ErrSkipped
				continue
			}
		}
		in, at = append(in, w), append(at, i)
	}
	if len(in) == 0 {
		return errs
	}
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	out := h.rt.HandleEvents(ctx, &pluginv1.HandleEventsRequest{Events: in, DeadlineUnixMs: deadline.UnixMilli()})
	if len(out.Results) != len(in) {
		t.Fatalf("plugintest: DeliverBatch: the plugin answered %d results for %d events", len(out.Results), len(in))
	}
	for k, r := range out.Results {
		if r.EventId != in[k].Id {
			t.Fatalf("plugintest: DeliverBatch: result %d is for event %s, not %s", k, r.EventId, in[k].Id)
		}
		if r.Error != "" {
			errs[at[k]] = errors.New(r.Error)
		}
	}
	return errs
}

// wireEvent is ev as the kernel sends it, with the defaults filled in.
func (h *Harness) wireEvent(t testing.TB, ev Event) *pluginv1.Event {
	t.Helper()
	if ev.ID == "" {
		ev.ID = NewEventID()
	}
	if !isUUID(ev.ID) {
		t.Fatalf("plugintest: event ID %q is not a UUID, as the kernel's always are: use NewEventID", ev.ID)
	}
	if ev.TenantID != "" && !isUUID(ev.TenantID) {
		t.Fatalf("plugintest: event tenant ID %q is not a UUID, as the kernel's always are: use NewTenant", ev.TenantID)
	}
	data := jsonObject(t, "event data", ev.Data)
	if ev.Actor == "" {
		ev.Actor = "system"
	}
	if ev.Source == "" {
		ev.Source = "kernel"
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = time.Now()
	}
	if ev.Attempt <= 0 {
		ev.Attempt = 1
	}
	return &pluginv1.Event{
		Id: ev.ID, Type: ev.Type, TenantId: ev.TenantID, Actor: ev.Actor,
		OccurredAtUnixMs: ev.OccurredAt.UnixMilli(), RequestId: ev.RequestID,
		DataJson: data, Source: ev.Source, Attempt: uint32(ev.Attempt),
	}
}

// jsonObject encodes v as Request.Body does and checks that it is a JSON
// object, as event data and job arguments always are. nil is {}.
func jsonObject(t testing.TB, what string, v any) []byte {
	t.Helper()
	if v == nil {
		return []byte("{}")
	}
	b, err := encodeBody(v)
	if err != nil {
		t.Fatalf("plugintest: encoding the %s: %v", what, err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		t.Fatalf("plugintest: the %s must be a JSON object, as the kernel's always is, not %s", what, b)
	}
	return b
}

// PublishedEvent is an event the plugin published: a row of its outbox.
//
// Since: v1.1
type PublishedEvent struct {
	ID         string
	Type       string
	TenantID   string
	Actor      string // who caused it; "plugin:<name>" when the publisher named no one
	RequestID  string
	Data       json.RawMessage // as stored (jsonb: keys sorted, no spaces)
	OccurredAt time.Time
	Source     string // the plugin's name, as the kernel's relay sets it
}

// Decode reads the event's data into v.
func (e PublishedEvent) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decoding published %s event %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Event is the published event as the kernel delivers it to subscribers,
// with the same ID: pass it to another plugin's Harness.Deliver to test the
// two plugins together.
func (e PublishedEvent) Event() Event {
	return Event{
		ID: e.ID, Type: e.Type, TenantID: e.TenantID, Actor: e.Actor, RequestID: e.RequestID,
		Source: e.Source, OccurredAt: e.OccurredAt, Data: e.Data,
	}
}

// Published lists the events the plugin published for institution
// tenantID ("" for every institution), oldest first: what its handlers,
// event handlers and jobs wrote to its outbox in transactions that
// committed. A rolled-back transaction's events are not there, as the
// kernel never relays them. The harness has no relay, so the list only
// grows; compare lengths, or use a new institution per test.
//
// Since: v1.1
func (h *Harness) Published(t testing.TB, tenantID string) []PublishedEvent {
	t.Helper()
	if tenantID != "" && !isUUID(tenantID) {
		t.Fatalf("plugintest: Published: tenant ID %q is not a UUID", tenantID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table := pgx.Identifier{h.spec.Schema(), storage.Outbox}.Sanitize()
	rows, _ := h.admin.Query(ctx, `
		SELECT id::text, type, tenant_id::text, actor, request_id, data, occurred_at, $2::text
		FROM `+table+`
		WHERE $1::text = '' OR tenant_id = NULLIF($1::text, '')::uuid
		ORDER BY seq`, tenantID, h.manifest.Name)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[PublishedEvent])
	if err != nil {
		t.Fatalf("plugintest: reading plugin %q's outbox: %v", h.manifest.Name, err)
	}
	if out == nil {
		out = []PublishedEvent{}
	}
	return out
}
