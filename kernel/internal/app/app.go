package app

import (
	"context"
	"fmt"
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
	"gocloud.dev/blob"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/config"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/events"
	"github.com/edulure/edulure/kernel/internal/httpapi"
	"github.com/edulure/edulure/kernel/internal/jobs"
	"github.com/edulure/edulure/kernel/internal/objectstore"
	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/kernel/internal/token"
	"github.com/edulure/edulure/migrations"
	"github.com/edulure/edulure/policies"
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
	Blobs   *blob.Bucket // plugins' object storage; nil without EDULURE_BLOB_URL

	closeOnce sync.Once
}

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

// New assembles a kernel on an open pool.
func New(ctx context.Context, cfg config.Config, log hclog.Logger, pool *pgxpool.Pool) (*Kernel, error) {
	sealer, err := seal.New(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	keyring, err := token.NewKeyring(ctx, pool, sealer, token.Options{Issuer: cfg.Issuer, TTL: cfg.AccessTokenTTL})
	if err != nil {
		return nil, fmt.Errorf("loading signing keys: %w", err)
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
	plugins := supervisor.New(supervisor.Deps{Logger: log, Pool: pool, Authz: engine, Catalogue: cat, Blobs: blobs, Sealer: sealer}, supervisor.Options{
		ConfigPath: cfg.PluginsFile, DatabaseURL: cfg.DatabaseURL, RolePrefix: cfg.DBRolePrefix,
		Secret: cfg.SecretKey, KernelVersion: Version,
	})
	if err := plugins.Load(ctx); err != nil {
		plugins.Close()
		closeBlobs()
		return nil, fmt.Errorf("loading plugins: %w", err)
	}
	evs := events.New(pool, plugins, log, events.Options{
		MaxAttempts: cfg.EventsMaxAttempts, BackoffInitial: cfg.EventsBackoff, BackoffMax: cfg.EventsBackoffMax, Poll: cfg.EventsPoll,
		Retention: cfg.EventsRetention, PruneEvery: cfg.EventsPruneEvery,
	})
	jobSys, err := jobs.New(pool, plugins, log, jobs.Options{
		MaxAttempts: cfg.JobsMaxAttempts, Timeout: cfg.JobsTimeout, BackoffInitial: cfg.JobsBackoff, FetchPoll: cfg.JobsPoll, Workers: cfg.JobsWorkers,
	})
	if err != nil {
		plugins.Close()
		closeBlobs()
		return nil, err
	}
	evs.SetHooks(jobSys)
	api, err := httpapi.New(ctx, httpapi.Deps{Config: cfg, Logger: log, Pool: pool, Keyring: keyring, Authz: engine, Catalogue: cat, Sealer: sealer, Plugins: plugins, Events: evs, Jobs: jobSys})
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
	return &Kernel{Config: cfg, Logger: log, Pool: pool, Keyring: keyring, API: api, Plugins: plugins, Events: evs, Jobs: jobSys, Blobs: blobs}, nil
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
// the caller's). Running job attempts get 10 seconds to finish.
func (k *Kernel) Close() {
	k.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k.Jobs.Close(ctx)
		k.Events.Close()
		k.Plugins.Close()
		if k.Blobs != nil {
			k.Blobs.Close()
		}
	})
}
