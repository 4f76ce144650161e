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
	// (a JSON object; "{}" when none).
	OperatorConfig json.RawMessage
}

// TenantSetting is the Postgres setting row-level security reads the
// current institution from. The SDK sets it per transaction.
const TenantSetting = "edulure.tenant_id"

// DB is the plugin's database: a pgx pool connected as the plugin's role.
//
// Since: v1.0
type DB struct {
	Pool *pgxpool.Pool

	events    *eventCatalogue // what Publish needs from the manifest
	published atomic.Int64    // publishes so far, to tell whether a transaction published
}

// NewDB is a DB on pool for the plugin whose manifest is m: its Publish
// checks events against the types m publishes.
//
// Since: v1.1
func NewDB(pool *pgxpool.Pool, m Manifest) (*DB, error) {
	cat, err := newEventCatalogue(m)
	if err != nil {
		return nil, err
	}
	return &DB{Pool: pool, events: cat}, nil
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
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if db.published.Load() != before {
		db.hint() // the transaction (or a concurrent one) published: wake the relay
	}
	return nil
}

// Host is the kernel's services a plugin may call. Each call crosses the
// process boundary (a gRPC round trip): prefer the local answers a Request
// already carries (Principal.Can, Request.Config) on hot paths.
//
// Since: v1.0
type Host interface {
	// Authorize asks for a resource-level decision: may p do permission on res?
	Authorize(ctx context.Context, p Principal, permission string, res Resource) (bool, error)
	// Audit appends an entry to the institution's tamper-evident audit log.
	Audit(ctx context.Context, e AuditEntry) error
	// TenantConfig reads the plugin's configuration for an institution and
	// whether the plugin is enabled there.
	TenantConfig(ctx context.Context, tenantID string) (config json.RawMessage, enabled bool, err error)
}

// Resource is the object of a resource-level decision.
type Resource struct {
	Type     string
	ID       string
	TenantID string // the institution that owns it
}

// AuditEntry is one audit log entry written by a plugin.
type AuditEntry struct {
	TenantID   string
	Actor      Principal
	Action     string // prefixed with the plugin's name: gamification.points.award
	TargetType string
	TargetID   string
	Details    any // encoded as JSON
	RequestID  string
}

// HostFuncs is a Host built from functions, for tests: a nil field answers
// with ErrUnavailable.
type HostFuncs struct {
	AuthorizeFunc    func(ctx context.Context, p Principal, permission string, res Resource) (bool, error)
	AuditFunc        func(ctx context.Context, e AuditEntry) error
	TenantConfigFunc func(ctx context.Context, tenantID string) (json.RawMessage, bool, error)
}

var _ Host = HostFuncs{}

// Authorize calls AuthorizeFunc.
func (h HostFuncs) Authorize(ctx context.Context, p Principal, permission string, res Resource) (bool, error) {
	if h.AuthorizeFunc == nil {
		return false, Errorf(ErrUnavailable, "no Authorize in this host")
	}
	return h.AuthorizeFunc(ctx, p, permission, res)
}

// Audit calls AuditFunc.
func (h HostFuncs) Audit(ctx context.Context, e AuditEntry) error {
	if h.AuditFunc == nil {
		return Errorf(ErrUnavailable, "no Audit in this host")
	}
	return h.AuditFunc(ctx, e)
}

// TenantConfig calls TenantConfigFunc.
func (h HostFuncs) TenantConfig(ctx context.Context, tenantID string) (json.RawMessage, bool, error) {
	if h.TenantConfigFunc == nil {
		return nil, false, Errorf(ErrUnavailable, "no TenantConfig in this host")
	}
	return h.TenantConfigFunc(ctx, tenantID)
}
