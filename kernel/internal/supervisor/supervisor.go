package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"gocloud.dev/blob"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/objectstore"
	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/sdk/blobstore"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// State is where a plugin is in its life.
type State string

const (
	StateStarting    State = "starting"
	StateRunning     State = "running"
	StateRestarting  State = "restarting"  // crashed; waiting to start again
	StateQuarantined State = "quarantined" // crashed too often; not restarted until a reload
	StateFailed      State = "failed"      // refused: checksum, manifest or migrations
	StateStopped     State = "stopped"
)

// Options tune the supervisor.
type Options struct {
	ConfigPath    string // plugins.hcl; "" runs no plugins
	DatabaseURL   string // the kernel's; plugins get their own role on the same database
	RolePrefix    string // prefix of plugin role names (see storage.Spec)
	Secret        []byte // derives plugin role passwords
	KernelVersion string

	StartTimeout   time.Duration // process start to configured
	BackoffInitial time.Duration // first restart delay
	BackoffMax     time.Duration
	MaxCrashes     int           // crashes within CrashWindow that quarantine a plugin
	CrashWindow    time.Duration //
	HealthInterval time.Duration
	DrainTimeout   time.Duration // how long a stopping instance may finish requests
	MetricsTimeout time.Duration // how long /metrics waits for a plugin's own metrics

	// PluginEnv is the environment a plugin process gets beyond PATH and
	// EDULURE_PLUGIN_NAME: the OTEL_* settings of its tracing. Nil: none.
	PluginEnv func(plugin string) []string
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.StartTimeout, 30*time.Second)
	def(&o.BackoffInitial, 250*time.Millisecond)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.CrashWindow, 2*time.Minute)
	def(&o.HealthInterval, 5*time.Second)
	def(&o.DrainTimeout, 30*time.Second)
	def(&o.MetricsTimeout, 2*time.Second)
	if o.MaxCrashes <= 0 {
		o.MaxCrashes = 5
	}
}

// Deps are the kernel services the supervisor uses.
type Deps struct {
	Logger    hclog.Logger
	Pool      *pgxpool.Pool // the kernel's pool: creates plugin roles and schemas
	Authz     *authz.Engine
	Catalogue *authz.Catalogue
	// Blobs is the bucket of plugins' object storage (EDULURE_BLOB_URL);
	// nil: none, and storage calls answer UNAVAILABLE.
	Blobs *blob.Bucket
	// Sealer seals institutions' secret settings (EDULURE_SECRET_KEY).
	Sealer *seal.Sealer
	// Tracing makes the spans of calls into plugins; nil: none.
	Tracing *telemetry.Tracing
	// Metrics registers the per-plugin series (requests, states, restarts);
	// nil: not registered.
	Metrics prometheus.Registerer
	// Signer signs payloads for plugins with the capability "sign" (the
	// kernel's keyring); nil: Sign answers UNAVAILABLE.
	Signer Signer
}

// Supervisor starts, watches, restarts and stops the plugins of plugins.hcl,
// and routes requests to them. Safe for concurrent use.
type Supervisor struct {
	opts   Options
	logger hclog.Logger
	pool   *pgxpool.Pool
	authz  *authz.Engine
	cat    *authz.Catalogue
	blobs  *blobstore.Store // nil without a bucket
	signer Signer           // nil: none

	// Enablement is each institution's choice of plugins.
	Enablement *Enablement

	ctx    context.Context // lifetime of monitors
	cancel context.CancelFunc
	wg     sync.WaitGroup

	reload sync.Mutex // one Load/Reload/Close at a time
	mu     sync.RWMutex
	slots  map[string]*slot
	table  atomic.Pointer[routeTable]

	tableVersion atomic.Uint64

	onChange  []func()                            // see OnChange
	published atomic.Pointer[func(plugin string)] // see OnEventsPublished

	tracing bool         // Tracer records: spans for calls into plugins
	tracer  trace.Tracer // noop when not tracing
	metrics *metrics
}

// slot is one plugin of plugins.hcl across its processes: restarts and
// upgrades replace the instance, the slot stays.
type slot struct {
	name string
	inst atomic.Pointer[instance] // nil while not running

	mu        sync.Mutex
	cfg       PluginConfig
	manifest  *Manifest // of the last instance that started; routes stay registered across restarts
	state     State
	restarts  int
	lastError string
	warnings  []string
	since     time.Time
	crashes   []time.Time
	stop      context.CancelFunc // ends the monitor
	done      chan struct{}

	streams streamCounts // across the slot's instances
}

// New makes a supervisor; Load starts the plugins.
func New(d Deps, opts Options) *Supervisor {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{
		opts: opts, logger: d.Logger.Named("plugin"), pool: d.Pool, authz: d.Authz, cat: d.Catalogue, signer: d.Signer,
		ctx: ctx, cancel: cancel, slots: map[string]*slot{},
	}
	s.Enablement = newEnablement(d.Pool, d.Sealer, s.defaultEnabled)
	s.table.Store(&routeTable{})
	if d.Blobs != nil {
		s.blobs = blobstore.New(d.Blobs, objectstore.NewIndex(d.Pool), blobstore.Options{
			Limits: s.storageLimits, SigningKey: s.derive("edulure blob URL signing key"),
		})
	}
	if d.Tracing == nil {
		d.Tracing = telemetry.Off()
	}
	s.tracing, s.tracer = d.Tracing.Enabled, d.Tracing.Provider.Tracer(tracerName)
	s.metrics = newMetrics(s, d.Metrics)
	return s
}

// Storage is the plugins' object storage, for the signed URLs the kernel
// serves; nil without a bucket.
func (s *Supervisor) Storage() *blobstore.Store { return s.blobs }

// storageLimits are a plugin's limits of plugins.hcl; a plugin that is not
// loaded may store nothing.
func (s *Supervisor) storageLimits(plugin string) blobstore.Limits {
	s.mu.RLock()
	sl, ok := s.slots[plugin]
	s.mu.RUnlock()
	if !ok {
		return blobstore.Limits{}
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return blobstore.Limits{Bytes: sl.cfg.Limits.StorageBytes, ObjectBytes: sl.cfg.Limits.StorageObjectBytes}
}

// Load reads plugins.hcl and starts every plugin in it. A plugin that is
// refused (checksum, manifest, migrations) is logged and left out; the
// others start. Only an unreadable plugins.hcl is an error.
func (s *Supervisor) Load(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	if s.opts.ConfigPath == "" {
		return nil
	}
	cfg, err := LoadConfig(s.opts.ConfigPath)
	if err != nil {
		return err
	}
	for _, pc := range cfg.Plugins {
		s.add(ctx, pc)
	}
	return nil
}

// add starts a new slot for pc.
func (s *Supervisor) add(ctx context.Context, pc PluginConfig) {
	sl := &slot{name: pc.Name, cfg: pc, state: StateStarting, since: time.Now()}
	s.mu.Lock()
	s.slots[pc.Name] = sl
	s.mu.Unlock()
	inst, err := s.start(ctx, pc, s.otherRoutes(pc.Name))
	if err == nil {
		err = s.install(sl, inst)
	}
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			s.setState(sl, StateFailed, err)
			s.logger.Error("plugin refused", "plugin", pc.Name, "path", pc.Path, "error", err)
			return
		}
		s.logger.Error("plugin failed to start", "plugin", pc.Name, "error", err)
		s.recordCrash(sl, err)
	}
	s.watch(sl)
}

// install makes inst the slot's serving instance: its permissions join the
// catalogue and OPA's default grants, its routes the route table.
func (s *Supervisor) install(sl *slot, inst *instance) error {
	if err := s.cat.Replace(sl.name, inst.manifest.Permissions); err != nil {
		inst.stop(0)
		return &refusal{fmt.Errorf("permissions: %w", err)}
	}
	if err := s.authz.SetDefaults(s.ctx, s.cat.Defaults()); err != nil {
		inst.stop(0)
		return fmt.Errorf("loading default grants: %w", err)
	}
	sl.mu.Lock()
	old := sl.inst.Swap(inst)
	sl.manifest = inst.manifest
	sl.cfg = inst.cfg
	sl.warnings = inst.warnings
	sl.state, sl.since, sl.lastError = StateRunning, time.Now(), ""
	sl.mu.Unlock()
	s.rebuildTable()
	if old != nil && old != inst {
		go old.stop(s.opts.DrainTimeout)
	}
	return nil
}

func (s *Supervisor) setState(sl *slot, st State, err error) {
	sl.mu.Lock()
	sl.state, sl.since = st, time.Now()
	if err != nil {
		sl.lastError = err.Error()
	}
	sl.mu.Unlock()
	s.changed()
}

// recordCrash counts a crash and says whether the slot is now quarantined.
func (s *Supervisor) recordCrash(sl *slot, err error) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	now := time.Now()
	kept := sl.crashes[:0]
	for _, t := range sl.crashes {
		if now.Sub(t) < s.opts.CrashWindow {
			kept = append(kept, t)
		}
	}
	sl.crashes = append(kept, now)
	sl.lastError = err.Error()
	sl.since = now
	if len(sl.crashes) >= s.opts.MaxCrashes {
		sl.state = StateQuarantined
		sl.lastError = fmt.Sprintf("quarantined after %d crashes within %s; last: %v", len(sl.crashes), s.opts.CrashWindow, err)
		return true
	}
	sl.state = StateRestarting
	return false
}

// watch runs the slot's monitor: it notices a dead process or failed health
// checks and restarts the plugin with exponential backoff, until the slot
// is quarantined, refused or stopped.
func (s *Supervisor) watch(sl *slot) {
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	sl.mu.Lock()
	sl.stop, sl.done = cancel, done
	sl.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		s.monitor(ctx, sl)
	}()
}

func (s *Supervisor) monitor(ctx context.Context, sl *slot) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = s.opts.BackoffInitial, s.opts.BackoffMax
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastHealth, healthFailures := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sl.mu.Lock()
		state := sl.state
		sl.mu.Unlock()
		switch state {
		case StateQuarantined, StateFailed, StateStopped:
			return
		case StateRestarting:
			delay := bo.NextBackOff()
			s.logger.Info("restarting plugin", "plugin", sl.name, "in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			sl.mu.Lock()
			cfg := sl.cfg
			sl.mu.Unlock()
			inst, err := s.start(ctx, cfg, s.otherRoutes(sl.name))
			if err == nil {
				err = s.install(sl, inst)
			}
			if err != nil {
				var r *refusal
				if errors.As(err, &r) {
					s.setState(sl, StateFailed, err)
					s.logger.Error("plugin refused on restart", "plugin", sl.name, "error", err)
					return
				}
				if s.recordCrash(sl, err) {
					s.logger.Error("plugin quarantined", "plugin", sl.name, "error", err)
					return
				}
				continue
			}
			sl.mu.Lock()
			sl.restarts++
			sl.mu.Unlock()
			lastHealth, healthFailures = time.Now(), 0
		case StateRunning:
			inst := sl.inst.Load()
			if inst == nil {
				continue
			}
			if time.Since(inst.started) > s.opts.CrashWindow {
				bo.Reset()
			}
			if inst.exited() {
				s.crashed(sl, inst, errors.New("the plugin process exited"))
				continue
			}
			if time.Since(lastHealth) >= s.opts.HealthInterval {
				lastHealth = time.Now()
				if err := s.checkHealth(ctx, inst); err != nil {
					healthFailures++
					s.logger.Warn("plugin health check failed", "plugin", sl.name, "failures", healthFailures, "error", err)
					if healthFailures >= 3 {
						s.crashed(sl, inst, fmt.Errorf("3 health checks failed; last: %w", err))
						healthFailures = 0
					}
				} else {
					healthFailures = 0
				}
			}
		}
	}
}

// crashed handles the end of inst, unless it was already replaced (an
// upgrade stops the old instance on purpose).
func (s *Supervisor) crashed(sl *slot, inst *instance, err error) {
	if !sl.inst.CompareAndSwap(inst, nil) {
		return
	}
	inst.client.Kill()
	s.logger.Error("plugin crashed", "plugin", sl.name, "pid", inst.pid, "error", err)
	if s.recordCrash(sl, err) {
		s.logger.Error("plugin quarantined", "plugin", sl.name, "error", err)
	}
}

func (s *Supervisor) checkHealth(ctx context.Context, inst *instance) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := inst.rpc.Health(ctx, &pluginv1.HealthRequest{})
	if err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("plugin reports %s: %s", out.Status, out.Message)
	}
	return nil
}

// otherRoutes are the routes of every plugin but name, for conflict checks.
func (s *Supervisor) otherRoutes(name string) map[string][]*Route {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]*Route{}
	for n, sl := range s.slots {
		if n == name {
			continue
		}
		sl.mu.Lock()
		if sl.manifest != nil {
			out[n] = sl.manifest.Routes
		}
		sl.mu.Unlock()
	}
	return out
}

// knownPermission reports whether a permission exists outside plugin name.
func (s *Supervisor) knownPermission(name string) func(string) bool {
	return func(p string) bool {
		owner := s.cat.Owner(p)
		return owner != "" && owner != name
	}
}

func (s *Supervisor) defaultEnabled(plugin string) (bool, bool) {
	s.mu.RLock()
	sl, ok := s.slots[plugin]
	s.mu.RUnlock()
	if !ok {
		return false, false
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.cfg.EnabledByDefault, sl.manifest != nil
}

// Status is what operators see of one plugin.
type Status struct {
	Name             string    `json:"name"`
	Version          string    `json:"version"`
	Description      string    `json:"description,omitempty"`
	State            State     `json:"state"`
	Since            time.Time `json:"since"`
	Restarts         int       `json:"restarts"`
	LastError        string    `json:"last_error,omitempty"`
	PID              int       `json:"pid,omitempty"`
	Path             string    `json:"path"`
	EnabledByDefault bool      `json:"enabled_by_default"`
	Routes           []string  `json:"routes"`
	Permissions      []string  `json:"permissions"`
	Publishes        []string  `json:"publishes"`
	Subscribes       []string  `json:"subscribes"`
	Jobs             []string  `json:"jobs"`
	InFlight         int       `json:"in_flight"`
	// Warnings are what the kernel found questionable at load without
	// refusing the plugin: columns that look personal and that no data
	// class describes.
	Warnings []string `json:"warnings,omitempty"`
}

// Statuses lists the plugins by name.
func (s *Supervisor) Statuses() []Status {
	s.mu.RLock()
	slots := make([]*slot, 0, len(s.slots))
	for _, sl := range s.slots {
		slots = append(slots, sl)
	}
	s.mu.RUnlock()
	out := make([]Status, 0, len(slots))
	for _, sl := range slots {
		out = append(out, sl.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status of one plugin.
func (s *Supervisor) Status(name string) (Status, bool) {
	s.mu.RLock()
	sl, ok := s.slots[name]
	s.mu.RUnlock()
	if !ok {
		return Status{}, false
	}
	return sl.status(), true
}

func (sl *slot) status() Status {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	st := Status{
		Name: sl.name, Version: sl.cfg.Version, State: sl.state, Since: sl.since, Restarts: sl.restarts,
		LastError: sl.lastError, Path: sl.cfg.Path, EnabledByDefault: sl.cfg.EnabledByDefault,
		Routes: []string{}, Permissions: []string{}, Publishes: []string{}, Subscribes: []string{}, Jobs: []string{},
		Warnings: sl.warnings,
	}
	if inst := sl.inst.Load(); inst != nil {
		st.PID = inst.pid
		st.InFlight = len(inst.sem)
	}
	if m := sl.manifest; m != nil {
		st.Description = m.Description
		for _, r := range m.Routes {
			st.Routes = append(st.Routes, r.Key)
		}
		for _, p := range m.Permissions {
			st.Permissions = append(st.Permissions, p.Name)
		}
		for _, e := range m.Publishes {
			st.Publishes = append(st.Publishes, e.Type)
		}
		st.Subscribes = append(st.Subscribes, m.Subscribes...)
		for _, j := range m.Jobs {
			st.Jobs = append(st.Jobs, j.Name)
		}
	}
	return st
}

// Close stops every plugin, letting in-flight requests finish first.
func (s *Supervisor) Close() {
	s.reload.Lock()
	defer s.reload.Unlock()
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	slots := s.slots
	s.slots = map[string]*slot{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sl := range slots {
		s.setState(sl, StateStopped, nil)
		if inst := sl.inst.Swap(nil); inst != nil {
			wg.Add(1)
			go func() { defer wg.Done(); inst.stop(s.opts.DrainTimeout) }()
		}
	}
	wg.Wait()
	s.table.Store(&routeTable{})
}
