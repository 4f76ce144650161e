package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/seal"
)

// TopicPlugins is the change-notification topic of a tenant's plugin
// settings: "plugins:<tenant_id>".
const TopicPlugins = "plugins"

// Setting is one institution's setting of one plugin.
type Setting struct {
	Enabled bool            `json:"enabled"`
	Config  json.RawMessage `json:"config"` // without the secret settings
	// Secrets are the secret settings the institution has set, by name,
	// sealed: they are opened only to give the plugin its configuration
	// (Supervisor.TenantConfig).
	Secrets map[string]Secret `json:"-"`
	Stored  bool              `json:"-"` // false: the plugins.hcl default applies
}

// Secret is one secret setting of an institution, sealed with the kernel's
// secret key (kernel.tenant_plugin_secrets).
type Secret struct {
	sealed    []byte
	ChangedAt time.Time
}

// String shows that a secret is set, never its value.
func (Secret) String() string { return "(secret)" }

// Enablement caches each institution's plugin settings. An entry is dropped
// when the settings change, on this replica at once and on the others when
// they hear the change notification. Secret settings stay sealed in the
// cache as in the database.
type Enablement struct {
	pool     *pgxpool.Pool
	sealer   *seal.Sealer
	defaults func(plugin string) (enabledByDefault, installed bool)

	mu      sync.RWMutex
	gen     uint64 // bumped by every drop, so a load that raced one is not cached
	tenants map[uuid.UUID]map[string]Setting
}

func newEnablement(pool *pgxpool.Pool, sealer *seal.Sealer, defaults func(string) (bool, bool)) *Enablement {
	return &Enablement{pool: pool, sealer: sealer, defaults: defaults, tenants: map[uuid.UUID]map[string]Setting{}}
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
	rows, err := e.pool.Query(ctx, `
		SELECT p.plugin, p.enabled, p.config, s.name, s.sealed, s.changed_at
		FROM kernel.tenant_plugins p
		LEFT JOIN kernel.tenant_plugin_secrets s ON s.tenant_id = p.tenant_id AND s.plugin = p.plugin
		WHERE p.tenant_id = $1`, tenant)
	if err != nil {
		return nil, err
	}
	m = map[string]Setting{}
	var (
		plugin  string
		st      Setting
		name    *string
		sealed  []byte
		changed *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&plugin, &st.Enabled, &st.Config, &name, &sealed, &changed}, func() error {
		cur, seen := m[plugin]
		if !seen {
			cur = Setting{Enabled: st.Enabled, Config: st.Config, Stored: true}
		}
		if name != nil && changed != nil {
			if cur.Secrets == nil {
				cur.Secrets = map[string]Secret{}
			}
			cur.Secrets[*name] = Secret{sealed: sealed, ChangedAt: *changed}
		}
		m[plugin] = cur
		st, name, sealed, changed = Setting{}, nil, nil, nil
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

// Put stores a setting in tx, and the changes of secret settings: each
// name in secrets gets the new value (JSON), or none when it is nil; the
// secrets not named keep theirs. The caller sends the change notification.
func (e *Enablement) Put(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, plugin string, st Setting, secrets map[string]json.RawMessage, by uuid.UUID) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO kernel.tenant_plugins (tenant_id, plugin, enabled, config, updated_by)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, plugin) DO UPDATE
		SET enabled = EXCLUDED.enabled, config = EXCLUDED.config, updated_by = EXCLUDED.updated_by, updated_at = now()`,
		tenant, plugin, st.Enabled, st.Config, by)
	if err != nil {
		return err
	}
	for name, v := range secrets {
		if v == nil {
			_, err = tx.Exec(ctx, `DELETE FROM kernel.tenant_plugin_secrets WHERE tenant_id = $1 AND plugin = $2 AND name = $3`, tenant, plugin, name)
		} else {
			if e.sealer == nil {
				return errors.New("no secret key to seal a secret setting with")
			}
			_, err = tx.Exec(ctx, `
				INSERT INTO kernel.tenant_plugin_secrets (tenant_id, plugin, name, sealed) VALUES ($1, $2, $3, $4)
				ON CONFLICT (tenant_id, plugin, name) DO UPDATE SET sealed = EXCLUDED.sealed, changed_at = now()`,
				tenant, plugin, name, e.sealer.Seal(v, secretPurpose(tenant, plugin, name)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Open returns the configuration plugin gets for tenant: st.Config with the
// secret settings in names (the ones its manifest declares) opened and put
// in. Without any, it is st.Config as it is.
func (e *Enablement) Open(tenant uuid.UUID, plugin string, st Setting, names []string) (json.RawMessage, error) {
	if len(st.Secrets) == 0 || len(names) == 0 {
		return st.Config, nil
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(st.Config, &cfg); err != nil || cfg == nil {
		cfg = map[string]json.RawMessage{}
	}
	opened := false
	for _, name := range names {
		s, ok := st.Secrets[name]
		if !ok {
			continue
		}
		if e.sealer == nil {
			return nil, errors.New("no secret key to open secret settings with")
		}
		v, err := e.sealer.Open(s.sealed, secretPurpose(tenant, plugin, name))
		if err != nil {
			return nil, fmt.Errorf("opening secret setting %q of plugin %q for institution %s: %w", name, plugin, tenant, err)
		}
		cfg[name], opened = v, true
	}
	if !opened {
		return st.Config, nil
	}
	return json.Marshal(cfg)
}

// TenantConfig is plugin's setting for tenant, with the configuration the
// plugin gets: the institution's settings with the secret settings its
// manifest declares opened and put in. It is the one place that opens
// them; the request's forward and Host.TenantConfig call it.
func (s *Supervisor) TenantConfig(ctx context.Context, tenant uuid.UUID, plugin string) (Setting, json.RawMessage, error) {
	st, err := s.Enablement.Get(ctx, tenant, plugin)
	if err != nil || len(st.Secrets) == 0 {
		return st, st.Config, err
	}
	var names []string
	if m, ok := s.Manifest(plugin); ok {
		names = m.Secrets
	}
	cfg, err := s.Enablement.Open(tenant, plugin, st, names)
	if err != nil {
		return Setting{}, nil, err
	}
	return st, cfg, nil
}

// secretPurpose binds a sealed secret setting to its institution, plugin
// and name: a value copied to another row does not open.
func secretPurpose(tenant uuid.UUID, plugin, name string) []byte {
	return []byte("plugin-secret:" + tenant.String() + "/" + plugin + "/" + name)
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
