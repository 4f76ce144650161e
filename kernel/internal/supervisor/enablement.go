package supervisor

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TopicPlugins is the change-notification topic of a tenant's plugin
// settings: "plugins:<tenant_id>".
const TopicPlugins = "plugins"

// Setting is one institution's setting of one plugin.
type Setting struct {
	Enabled bool            `json:"enabled"`
	Config  json.RawMessage `json:"config"`
	Stored  bool            `json:"-"` // false: the plugins.hcl default applies
}

// Enablement caches each institution's plugin settings. An entry is dropped
// when the settings change, on this replica at once and on the others when
// they hear the change notification.
type Enablement struct {
	pool     *pgxpool.Pool
	defaults func(plugin string) (enabledByDefault, installed bool)

	mu      sync.RWMutex
	gen     uint64 // bumped by every drop, so a load that raced one is not cached
	tenants map[uuid.UUID]map[string]Setting
}

func newEnablement(pool *pgxpool.Pool, defaults func(string) (bool, bool)) *Enablement {
	return &Enablement{pool: pool, defaults: defaults, tenants: map[uuid.UUID]map[string]Setting{}}
}

// Get returns the effective setting of plugin for tenant.
func (e *Enablement) Get(ctx context.Context, tenant uuid.UUID, plugin string) (Setting, error) {
	stored, err := e.stored(ctx, tenant)
	if err != nil {
		return Setting{}, err
	}
	if st, ok := stored[plugin]; ok {
		return st, nil
	}
	def, _ := e.defaults(plugin)
	return Setting{Enabled: def, Config: json.RawMessage("{}")}, nil
}

func (e *Enablement) stored(ctx context.Context, tenant uuid.UUID) (map[string]Setting, error) {
	e.mu.RLock()
	m, ok := e.tenants[tenant]
	gen := e.gen
	e.mu.RUnlock()
	if ok {
		return m, nil
	}
	rows, err := e.pool.Query(ctx, "SELECT plugin, enabled, config FROM kernel.tenant_plugins WHERE tenant_id = $1", tenant)
	if err != nil {
		return nil, err
	}
	m = map[string]Setting{}
	var plugin string
	var st Setting
	_, err = pgx.ForEachRow(rows, []any{&plugin, &st.Enabled, &st.Config}, func() error {
		st.Stored = true
		m[plugin] = st
		st = Setting{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.tenants) > 100_000 { // bound memory; entries reload on demand
		clear(e.tenants)
	}
	if e.gen == gen {
		e.tenants[tenant] = m
	}
	e.mu.Unlock()
	return m, nil
}

// Put stores a setting in tx. The caller sends the change notification.
func (e *Enablement) Put(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, plugin string, st Setting, by uuid.UUID) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO kernel.tenant_plugins (tenant_id, plugin, enabled, config, updated_by)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, plugin) DO UPDATE
		SET enabled = EXCLUDED.enabled, config = EXCLUDED.config, updated_by = EXCLUDED.updated_by, updated_at = now()`,
		tenant, plugin, st.Enabled, st.Config, by)
	return err
}

// Drop forgets a tenant's cached settings.
func (e *Enablement) Drop(tenant uuid.UUID) {
	e.mu.Lock()
	delete(e.tenants, tenant)
	e.gen++
	e.mu.Unlock()
}

// DropAll forgets every cached setting (after the change listener
// reconnects, since notifications may have been missed).
func (e *Enablement) DropAll() {
	e.mu.Lock()
	clear(e.tenants)
	e.gen++
	e.mu.Unlock()
}
