package app

import (
	"cmp"
	"context"
	"fmt"
	"github.com/riverqueue/river"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob"

	"github.com/edulure/edulure/kernel/internal/auditcheck"
	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/config"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/events"
	"github.com/edulure/edulure/kernel/internal/httpapi"
	"github.com/edulure/edulure/kernel/internal/jobs"
	"github.com/edulure/edulure/kernel/internal/objectstore"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/privacy"
	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/kernel/internal/token"
	"github.com/edulure/edulure/migrations"
	"github.com/edulure/edulure/policies"
	"github.com/edulure/edulure/sdk/telemetry"
)

// Kernel is an assembled kernel.
type Kernel struct {
	Config  config.Config
	Logger  hclog.Logger
	Pool    *pgxpool.Pool
	Keyring *token.Keyring
	API     *httpapi.Server
	Plugins *supervisor.Supervisor
	Events  *events.Service
	Jobs    *jobs.Service
	Privacy *privacy.Service
	// AuditCheck signs the audit chains' checkpoints and verifies the
	// chains against them (hourly).
	AuditCheck *auditcheck.Service
	Blobs      *blob.Bucket // plugins' object storage; nil without EDULURE_BLOB_URL
	// Tracing is the kernel's tracer provider (a no-op one when tracing is
	// off). Its plugins trace with the same OTEL_* settings.
	Tracing *telemetry.Tracing
	// Metrics is the kernel's Prometheus registry, read by /metrics with
	// the plugins' own metrics.
	Metrics *prometheus.Registry

	ownTracing bool // New set Tracing up: Close shuts it down
	closeOnce  sync.Once
}

// Option changes what New assembles.
type Option func(*options)

type options struct{ tracing *telemetry.Tracing }

// WithTracing makes the kernel trace with t rather than with the exporter
// its OTEL_* settings configure (a test's in-memory exporter). Plugins still
// get the OTEL_* settings of the configuration. The caller shuts t down.
func WithTracing(t *telemetry.Tracing) Option { return func(o *options) { o.tracing = t } }

// NewLogger makes the kernel's logger: JSON when not on a terminal (or when
// asked), human-readable text on one.
func NewLogger(cfg config.Config, out io.Writer) hclog.Logger {
	json := cfg.LogFormat == "json"
	if cfg.LogFormat == "auto" {
		f, ok := out.(*os.File)
		json = !ok || !isatty.IsTerminal(f.Fd())
	}
	return hclog.New(&hclog.LoggerOptions{Name: "edulure", Level: hclog.LevelFromString(cfg.LogLevel), JSONFormat: json, Output: out})
}

// Open connects to the database and applies migrations if configured.
func Open(ctx context.Context, cfg config.Config, log hclog.Logger) (*pgxpool.Pool, error) {
	pool, err := database.Connect(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, err
	}
	if cfg.MigrateOnStart {
		applied, err := database.MigrateKernel(ctx, pool, migrations.FS)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("migrating: %w", err)
		}
		if len(applied) > 0 {
			log.Info("applied migrations", "versions", applied)
		}
	}
	return pool, nil
}

// ServiceName is the kernel's service.name in traces, unless
// OTEL_SERVICE_NAME names it; its plugins are "<it>-plugin-<name>".
const ServiceName = "edulure"

// New assembles a kernel on an open pool.
func New(ctx context.Context, cfg config.Config, log hclog.Logger, pool *pgxpool.Pool, opts ...Option) (*Kernel, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	sealer, err := seal.New(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	tracing, ownTracing := o.tracing, false
	if tracing == nil {
		if tracing, err = telemetry.New(ctx, func(k string) string { return cfg.OTel[k] }, telemetry.Service{Name: ServiceName, Version: Version}); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		ownTracing = true
	}
	built := false
	defer func() {
		if !built && ownTracing {
			_ = tracing.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	if tracing.Enabled {
		log.Info("tracing", "service", cmp.Or(cfg.OTel["OTEL_SERVICE_NAME"], ServiceName))
	}
	reg := prometheus.NewRegistry()
	keyring, err := token.NewKeyring(ctx, pool, sealer, token.Options{Issuer: cfg.Issuer, TTL: cfg.AccessTokenTTL})
	if err != nil {
		return nil, fmt.Errorf("loading signing keys: %w", err)
	}
	if n, err := outbox.SealStored(ctx, pool, sealer); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("sealed the secrets that earlier events kept in the clear", "events", n)
	}
	cat, err := authz.NewCatalogue("kernel", authz.KernelPermissions)
	if err != nil {
		return nil, err
	}
	engine, err := authz.NewEngine(ctx, policies.FS, cat.Defaults())
	if err != nil {
		return nil, err
	}
	var blobs *blob.Bucket
	if cfg.BlobURL != "" {
		if blobs, err = objectstore.Open(ctx, cfg.BlobURL); err != nil {
			return nil, err
		}
	}
	closeBlobs := func() {
		if blobs != nil {
			blobs.Close()
		}
	}
	plugins := supervisor.New(supervisor.Deps{Logger: log, Pool: pool, Authz: engine, Catalogue: cat, Blobs: blobs, Sealer: sealer, Tracing: tracing, Metrics: reg, Signer: keyring}, supervisor.Options{
		ConfigPath: cfg.PluginsFile, DatabaseURL: cfg.DatabaseURL, RolePrefix: cfg.DBRolePrefix,
		Secret: cfg.SecretKey, KernelVersion: Version,
		PluginEnv: func(name string) []string { return telemetry.PluginEnv(cfg.OTel, ServiceName, name) },
	})
	if err := plugins.Load(ctx); err != nil {
		plugins.Close()
		closeBlobs()
		return nil, fmt.Errorf("loading plugins: %w", err)
	}
	evs := events.New(pool, plugins, log, events.Options{
		MaxAttempts: cfg.EventsMaxAttempts, BackoffInitial: cfg.EventsBackoff, BackoffMax: cfg.EventsBackoffMax, Poll: cfg.EventsPoll,
		Retention: cfg.EventsRetention, PruneEvery: cfg.EventsPruneEvery,
		Tracing: tracing, Metrics: reg,
		Sealer: sealer,
	})
	priv := privacy.New(pool, plugins, log, privacy.Options{
		MaxAttempts: cfg.PrivacyMaxAttempts, BackoffInitial: cfg.PrivacyBackoff, BackoffMax: cfg.PrivacyBackoffMax, CallTimeout: cfg.PrivacyCallTimeout,
		ExportRetention: cfg.ExportRetention, OffboardingRetention: cfg.OffboardingRetention, LinkExpiry: cfg.ExportLinkTTL, Sealer: sealer,
	})
	checks := auditcheck.New(pool, keyring, log)
	jobSys, err := jobs.New(pool, plugins, log, jobs.Options{
		MaxAttempts: cfg.JobsMaxAttempts, Timeout: cfg.JobsTimeout, BackoffInitial: cfg.JobsBackoff, FetchPoll: cfg.JobsPoll, Workers: cfg.JobsWorkers,
		Tracing: tracing, Metrics: reg,
		Register: func(w *river.Workers) error {
			if err := priv.Register(w); err != nil {
				return err
			}
			return checks.Register(w)
		},
		Sealer: sealer,
	})
	if err != nil {
		plugins.Close()
		closeBlobs()
		return nil, err
	}
	evs.SetHooks(jobSys)
	if err := priv.Start(jobSys.Client()); err != nil {
		plugins.Close()
		closeBlobs()
		return nil, err
	}
	if err := checks.Start(jobSys.Client()); err != nil {
		plugins.Close()
		closeBlobs()
		return nil, err
	}
	api, err := httpapi.New(ctx, httpapi.Deps{Config: cfg, Logger: log, Pool: pool, Keyring: keyring, Authz: engine, Catalogue: cat, Sealer: sealer, Plugins: plugins, Events: evs, Jobs: jobSys, Privacy: priv, AuditCheck: checks, Registry: reg, Tracing: tracing})
	if err != nil {
		plugins.Close()
		closeBlobs()
		return nil, err
	}
	evs.Start()
	if err := jobSys.Start(context.WithoutCancel(ctx)); err != nil {
		evs.Close()
		plugins.Close()
		closeBlobs()
		return nil, fmt.Errorf("starting jobs: %w", err)
	}
	built = true
	return &Kernel{Config: cfg, Logger: log, Pool: pool, Keyring: keyring, API: api, Plugins: plugins, Events: evs, Jobs: jobSys, Privacy: priv, AuditCheck: checks, Blobs: blobs,
		Tracing: tracing, Metrics: reg, ownTracing: ownTracing}, nil
}

// Version is the kernel's version, told to plugins.
var Version = "0.3.0"

// Serve runs the kernel until ctx ends: on SIGHUP it reloads plugins.hcl;
// at the end it drains HTTP requests, then stops the plugins.
func (k *Kernel) Serve(ctx context.Context) error {
	defer k.Close()
	k.API.Run(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				res, err := k.Plugins.Reload(ctx)
				if err != nil {
					k.Logger.Error("reloading plugins.hcl", "error", err)
					continue
				}
				k.Logger.Info("reloaded plugins.hcl", "started", res.Started, "upgraded", res.Upgraded, "restarted", res.Restarted, "removed", res.Removed, "failed", res.Failed)
			}
		}
	}()
	if k.Config.PprofAddr != "" {
		go servePprof(ctx, k.Config.PprofAddr, k.Logger)
	}
	tuneGC()
	// Start-up (compiling the policy, migrations, starting plugins) leaves
	// tens of megabytes of garbage that the runtime would hand back to the
	// system only slowly: hand it back now, once.
	debug.FreeOSMemory()
	k.Logger.Info("serving", "addr", k.Config.Addr, "plugins", len(k.Plugins.Statuses()))
	return k.API.Serve(ctx, k.Config.Addr)
}

// Close releases what New acquired (jobs, event relay, plugins; the pool is
// the caller's), after the API's background work has finished. Running job
// attempts get 10 seconds to finish.
func (k *Kernel) Close() {
	k.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k.API.Wait() // background work of answered requests
		k.Jobs.Close(ctx)
		k.Events.Close()
		k.Plugins.Close()
		if k.Blobs != nil {
			k.Blobs.Close()
		}
		if k.ownTracing {
			if err := k.Tracing.Shutdown(ctx); err != nil { // export what is buffered
				k.Logger.Warn("flushing traces", "error", err)
			}
		}
	})
}
