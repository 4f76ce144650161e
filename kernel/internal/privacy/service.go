package privacy

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
)

// Options tune the lifecycle.
type Options struct {
	// MaxAttempts is how many times a request's round of steps is tried
	// before it is failed and waits for an admin (default 10).
	MaxAttempts int
	// BackoffInitial is the delay after a failed attempt, doubling up to
	// BackoffMax (defaults 30s and 1h).
	BackoffInitial, BackoffMax time.Duration
	// CallTimeout bounds one call into a plugin (default 10m).
	CallTimeout time.Duration
	// ExportRetention is how long a person's export can be downloaded
	// (default 7 days); OffboardingRetention an institution's (30 days).
	ExportRetention, OffboardingRetention time.Duration
	// LinkExpiry is how long a signed download URL works (default 5m).
	LinkExpiry time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Sealer opens the sealed answers kept for Idempotency-Key retries,
	// which an erasure searches for the person.
	Sealer *seal.Sealer
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	def(&o.BackoffInitial, 30*time.Second)
	def(&o.BackoffMax, time.Hour)
	def(&o.CallTimeout, 10*time.Minute)
	def(&o.ExportRetention, 7*24*time.Hour)
	def(&o.OffboardingRetention, 30*24*time.Hour)
	def(&o.LinkExpiry, 5*time.Minute)
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service is the lifecycle of one replica.
type Service struct {
	opts    Options
	pool    *pgxpool.Pool
	plugins *supervisor.Supervisor
	store   *blobstore.Store // nil without object storage: no exports
	logger  hclog.Logger
	queue   *river.Client[pgx.Tx]
}

// New makes the lifecycle; Register adds its work to the job queue and
// Start hands it the queue.
func New(pool *pgxpool.Pool, plugins *supervisor.Supervisor, logger hclog.Logger, opts Options) *Service {
	opts.defaults()
	return &Service{opts: opts, pool: pool, plugins: plugins, store: plugins.Storage(), logger: logger.Named("privacy")}
}

// Register adds the lifecycle's kinds of work to the job queue
// (jobs.Options.Register).
func (s *Service) Register(w *river.Workers) error {
	if err := river.AddWorkerSafely(w, &exportWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &requestWorker{s: s}); err != nil {
		return err
	}
	return river.AddWorkerSafely(w, &cleanupWorker{s: s})
}

// Start hands the lifecycle the job queue its work runs on, and schedules
// the hourly removal of expired export bundles.
func (s *Service) Start(queue *river.Client[pgx.Tx]) error {
	s.queue = queue
	_, err := queue.PeriodicJobs().AddSafely(river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return cleanupArgs{}, nil },
		&river.PeriodicJobOpts{ID: "edulure/privacy-cleanup", RunOnStart: true}))
	return err
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// backoff is the delay before attempt+1 of a round.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.opts.BackoffInitial
	for i := 1; i < attempt && d < s.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, s.opts.BackoffMax)
}

func (s *Service) requireStorage() error {
	if s.store == nil {
		return sdk.Errorf(sdk.ErrUnavailable, "this platform has no object storage (EDULURE_BLOB_URL), where exports are kept").WithCode("storage-not-configured")
	}
	return nil
}

// Actor names who asked, as requests and their history record it:
// "user:<id>", "apikey:<id>", "operator:<id>", "system:<what>".
type Actor string

// callCtx bounds one call into a plugin.
func (s *Service) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.CallTimeout)
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if len(msg) > 2000 {
		msg = msg[:2000] + "..."
	}
	return msg
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
