package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Env is what a plugin gets in Provision.
//
// Since: v1.0
type Env struct {
	// Logger writes to the kernel's log, named after the plugin.
	Logger hclog.Logger
	// DB is connected as the plugin's own database role, with its schema
	// first on the search path. The kernel gives every plugin one, with or
	// without migrations; nil only when served without a database.
	DB *DB
	// Host calls back into the kernel.
	Host Host
	// OperatorConfig is the plugin's block of configuration in plugins.hcl
	// (a JSON object; "{}" when none). Config[T] and OperatorConfig[T]
	// layer it over the defaults for you.
	OperatorConfig json.RawMessage
	// Metrics registers the plugin's Prometheus collectors. The kernel
	// publishes them on its /metrics with the label plugin="<name>". Each
	// metric's name must start with the plugin's name and an underscore
	// (gamification_points_awarded_total): the kernel leaves out any other,
	// so that no plugin can shadow the kernel's series or another plugin's.
	// Since: v1.2
	Metrics prometheus.Registerer
	// Tracer starts spans of the plugin's own (ctx, span :=
	// env.Tracer.Start(ctx, "rank learners"); defer span.End()). Under a
	// handler's context they join the request's trace, beside the SDK's
	// spans of the handler and of each SQL statement. It records nothing
	// unless the kernel traces. Since: v1.2
	Tracer trace.Tracer

	rt *runtime
}

// TenantSetting is the Postgres setting row-level security reads the
// current institution from. The SDK sets it per transaction.
const TenantSetting = "edulure.tenant_id"

// DB is the plugin's database: a pgx pool connected as the plugin's role.
// Request.Tx, Event.Tx and JobRun.Tx are the usual way in; DB is for work
// outside them (a background loop, a migration check in Provision).
//
// Since: v1.0
type DB struct {
	Pool *pgxpool.Pool

	rt        *runtime     // the manifest's event schemas, for Publish
	wake      func()       // the EventsPublished hint; nil in tests
	published atomic.Int64 // publishes so far, to tell whether a transaction published
}

// InTenant runs fn in a transaction in which row-level security admits only
// rows of tenantID. An empty tenantID leaves the setting unset: the
// transaction then sees no tenant-scoped rows at all. The transaction
// commits when fn returns nil and rolls back otherwise.
func (db *DB) InTenant(ctx context.Context, tenantID string, fn func(tx pgx.Tx) error) error {
	var opts pgx.TxOptions
	set := tenantID != ""
	if id, err := uuid.Parse(tenantID); err == nil && set {
		// One round trip instead of two: BEGIN and the setting together. The
		// ID is inlined as a parsed UUID's canonical form, never as given.
		opts.BeginQuery = "BEGIN; SELECT set_config('" + TenantSetting + "', '" + id.String() + "', true)"
		set = false
	}
	tx, err := db.Pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	if set {
		if _, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", TenantSetting, tenantID); err != nil {
			return fmt.Errorf("setting the transaction's tenant: %w", err)
		}
	}
	before := db.published.Load()
	otx := &outboxTx{Tx: tx, db: db}
	if err := fn(otx); err != nil {
		return err
	}
	if err := otx.Commit(ctx); err != nil {
		return err
	}
	if db.published.Load() != before {
		db.Published() // the transaction (or a concurrent one) published: wake the relay
	}
	return nil
}

// Published tells the kernel that a transaction that published events has
// committed, so it relays them now rather than at its next poll. InTenant
// does it for you; call it after a transaction begun some other way.
func (db *DB) Published() {
	if db != nil && db.wake != nil {
		db.wake()
	}
}

// outboxTx is the transaction InTenant hands to fn. Publish holds the
// events published in it and writes them to the outbox in one statement
// just before the commit (or before a nested transaction begins), rather
// than one statement (and one round trip) per event: a transaction that
// publishes a hundred events costs its database one more statement, not a
// hundred. The events still exist if and only if the transaction commits,
// in the order they were published.
type outboxTx struct {
	pgx.Tx
	db      *DB
	pending []outboxRow
}

// outboxRow is an event held until the transaction's commit.
type outboxRow struct {
	id                                  uuid.UUID
	typ, tenant, actor, requestID, data string
	traceparent                         string // "": untraced
}

// flush writes the held events.
func (t *outboxTx) flush(ctx context.Context) error {
	if len(t.pending) == 0 {
		return nil
	}
	n := len(t.pending)
	ids := make([]uuid.UUID, n)
	types, tenants, actors, reqIDs, data := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	traces := make([]string, n)
	traced := false
	for i, r := range t.pending {
		ids[i], types[i], tenants[i], actors[i], reqIDs[i], data[i] = r.id, r.typ, r.tenant, r.actor, r.requestID, r.data
		traces[i] = r.traceparent
		traced = traced || r.traceparent != ""
	}
	var err error
	if traced {
		// The traceparent column only when tracing: a kernel older than
		// v1.2 provisions none.
		_, err = t.Tx.Exec(ctx, `INSERT INTO edulure_outbox (id, type, tenant_id, actor, request_id, data, traceparent)
		SELECT e.id, e.type, e.tenant::uuid, e.actor, e.request_id, e.data::jsonb, e.traceparent
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS e(id, type, tenant, actor, request_id, data, traceparent, n)
		ORDER BY e.n`, ids, types, tenants, actors, reqIDs, data, traces)
	} else {
		_, err = t.Tx.Exec(ctx, `INSERT INTO edulure_outbox (id, type, tenant_id, actor, request_id, data)
		SELECT e.id, e.type, e.tenant::uuid, e.actor, e.request_id, e.data::jsonb
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS e(id, type, tenant, actor, request_id, data, n)
		ORDER BY e.n`, ids, types, tenants, actors, reqIDs, data)
	}
	if err != nil {
		return fmt.Errorf("publishing %d events: writing to the outbox: %w", n, err)
	}
	t.pending = t.pending[:0]
	return nil
}

// Commit writes the held events, then commits.
func (t *outboxTx) Commit(ctx context.Context) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	return t.Tx.Commit(ctx)
}

// Begin writes the held events first, so that a nested transaction's
// events follow them.
func (t *outboxTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Begin(ctx)
}
