// Package jobs runs the jobs plugins declare: on a cron schedule, when an
// event arrives, or on demand. River (schema river) queues, retries and
// times out the attempts and elects the replica that enqueues scheduled
// ticks; kernel.job_runs keeps each run's history and, through a unique
// index on (plugin, job, institution, tick), makes each scheduled tick run
// once however many replicas enqueue it.
package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// Options tune the job system.
type Options struct {
	MaxAttempts    int           // attempts of a run whose job sets none (default 5)
	Timeout        time.Duration // one attempt, when the job sets none (default 1m)
	BackoffInitial time.Duration // delay before the second attempt; doubles (default 5s)
	BackoffMax     time.Duration // default 10m
	Workers        int           // attempts running at once on this replica (default 10)
	FetchPoll      time.Duration // River's poll for new work (default 1s; inserts also notify)

	Tracing *telemetry.Tracing    // spans of attempts; nil: none
	Metrics prometheus.Registerer // attempts by outcome, durations; nil: not registered
	// Sealer opens the sealed secret fields of the kernel event that
	// triggers a job (outbox.Open).
	Sealer *seal.Sealer

	// Register adds the kernel's own kinds of work to the queue (the
	// personal data lifecycle's exports and erasures), which then runs
	// them beside the plugins' jobs; they are inserted with Client.
	Register func(*river.Workers) error
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, time.Minute)
	def(&o.BackoffInitial, 5*time.Second)
	def(&o.BackoffMax, 10*time.Minute)
	def(&o.FetchPoll, time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Workers <= 0 {
		o.Workers = 10
	}
}

// Service is the job system of one replica.
type Service struct {
	opts   Options
	pool   *pgxpool.Pool
	sup    *supervisor.Supervisor
	logger hclog.Logger
	client *river.Client[pgx.Tx]

	mu       sync.Mutex
	periodic map[string]rivertype.PeriodicJobHandle // by "plugin/job/schedule"

	tracer  trace.Tracer
	metrics *metrics
}

// New makes the job system; Start runs it.
func New(pool *pgxpool.Pool, sup *supervisor.Supervisor, logger hclog.Logger, opts Options) (*Service, error) {
	opts.defaults()
	if opts.Tracing == nil {
		opts.Tracing = telemetry.Off()
	}
	s := &Service{opts: opts, pool: pool, sup: sup, logger: logger.Named("jobs"), periodic: map[string]rivertype.PeriodicJobHandle{},
		tracer: opts.Tracing.Provider.Tracer("github.com/edulure/edulure/kernel/jobs"), metrics: newMetrics(opts.Metrics)}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &tickWorker{s: s}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &runWorker{s: s}); err != nil {
		return nil, err
	}
	if opts.Register != nil {
		if err := opts.Register(workers); err != nil {
			return nil, err
		}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:            "river",
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}},
		Workers:           workers,
		RetryPolicy:       &retryPolicy{initial: opts.BackoffInitial, max: opts.BackoffMax},
		FetchPollInterval: opts.FetchPoll,
		FetchCooldown:     min(100*time.Millisecond, opts.FetchPoll),
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, fmt.Errorf("starting the job queue: %w", err)
	}
	s.client = client
	return s, nil
}

// Start runs River and keeps the scheduled jobs in step with the loaded
// plugins.
func (s *Service) Start(ctx context.Context) error {
	s.syncSchedules()
	s.sup.OnChange(s.syncSchedules)
	return s.client.Start(ctx)
}

// Client is the queue, for the kinds of work Options.Register added.
func (s *Service) Client() *river.Client[pgx.Tx] { return s.client }

// Close stops taking work and waits for running attempts (up to ctx).
func (s *Service) Close(ctx context.Context) {
	if err := s.client.Stop(ctx); err != nil {
		s.logger.Warn("stopping the job queue", "error", err)
	}
}

// syncSchedules adds a River periodic job per scheduled plugin job and
// removes those of jobs that are gone.
func (s *Service) syncSchedules() {
	want := map[string]*river.PeriodicJob{}
	for _, p := range s.sup.Loaded() {
		for _, j := range p.Manifest.Jobs {
			if j.Schedule == "" {
				continue
			}
			sched, err := parseSchedule(j.Schedule)
			if err != nil {
				continue // refused at load
			}
			key := p.Name + "/" + j.Name + "/" + j.Schedule
			plugin, job := p.Name, j.Name
			want[key] = river.NewPeriodicJob(sched, func() (river.JobArgs, *river.InsertOpts) {
				return tickArgs{Plugin: plugin, Job: job, Tick: previousTick(sched, time.Now())}, &river.InsertOpts{MaxAttempts: 5}
			}, &river.PeriodicJobOpts{ID: periodicID(key)})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, h := range s.periodic {
		if _, ok := want[key]; !ok {
			s.client.PeriodicJobs().Remove(h)
			delete(s.periodic, key)
		}
	}
	for key, pj := range want {
		if _, ok := s.periodic[key]; ok {
			continue
		}
		h, err := s.client.PeriodicJobs().AddSafely(pj)
		if err != nil {
			s.logger.Error("scheduling job", "job", key, "error", err)
			continue
		}
		s.periodic[key] = h
	}
}

// previousTick is the latest time the schedule fires at or before now: the
// tick the periodic enqueuer is firing for (it runs at or just after it).
func previousTick(sched cron.Schedule, now time.Time) time.Time {
	now = now.Truncate(time.Second)
	for back := time.Second; back < 800*24*time.Hour; back *= 2 {
		t := sched.Next(now.Add(-back))
		if t.After(now) {
			continue
		}
		for {
			n := sched.Next(t)
			if n.After(now) {
				return t
			}
			t = n
		}
	}
	return now
}

type retryPolicy struct{ initial, max time.Duration }

func (p *retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := p.initial
	for i := 1; i < job.Attempt && d < p.max; i++ {
		d *= 2
	}
	return time.Now().Add(min(d, p.max))
}

// jobDef finds a loaded plugin's job.
func (s *Service) jobDef(plugin, job string) (supervisor.Loaded, *pluginv1.Job, bool) {
	for _, p := range s.sup.Loaded() {
		if p.Name != plugin {
			continue
		}
		for _, j := range p.Manifest.Jobs {
			if j.Name == job {
				return p, j, true
			}
		}
	}
	return supervisor.Loaded{}, nil, false
}

func (s *Service) limits(j *pluginv1.Job) (attempts int, timeout time.Duration) {
	attempts, timeout = int(j.MaxAttempts), time.Duration(j.TimeoutSeconds)*time.Second
	if attempts <= 0 {
		attempts = s.opts.MaxAttempts
	}
	if timeout <= 0 {
		timeout = s.opts.Timeout
	}
	return attempts, timeout
}

// newRun is a run to create.
type newRun struct {
	plugin, job string
	tenant      *uuid.UUID
	trigger     string
	scheduledAt time.Time
	eventID     *uuid.UUID
	requestedBy string
	args        json.RawMessage
	traceparent string // of the request or event that asked for the run
}

// createRuns inserts runs (skipping those that exist: the same tick or event)
// and queues their first attempts, in tx. It returns the runs created.
func (s *Service) createRuns(ctx context.Context, tx pgx.Tx, j *pluginv1.Job, runs []newRun) ([]uuid.UUID, error) {
	attempts, timeout := s.limits(j)
	var created []uuid.UUID
	var params []river.InsertManyParams
	for _, r := range runs {
		id := uuid.Must(uuid.NewV7())
		args := r.args
		if len(args) == 0 {
			args = json.RawMessage("{}")
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO kernel.job_runs (id, plugin, job, tenant_id, trigger, scheduled_at, event_id, requested_by, args, max_attempts, timeout_ms, traceparent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT DO NOTHING`,
			id, r.plugin, r.job, r.tenant, r.trigger, r.scheduledAt, r.eventID, r.requestedBy, args, attempts, timeout.Milliseconds(), r.traceparent)
		if err != nil {
			return nil, fmt.Errorf("recording run of %s/%s: %w", r.plugin, r.job, err)
		}
		if tag.RowsAffected() == 0 {
			continue // this tick or event already has its run
		}
		created = append(created, id)
		params = append(params, river.InsertManyParams{
			Args:       runArgs{RunID: id, Plugin: r.plugin, Job: r.job, TimeoutMs: timeout.Milliseconds()},
			InsertOpts: &river.InsertOpts{MaxAttempts: attempts},
		})
	}
	if len(params) > 0 {
		if _, err := s.client.InsertManyFastTx(ctx, tx, params); err != nil {
			return nil, fmt.Errorf("queueing runs: %w", err)
		}
	}
	return created, nil
}

func parseSchedule(spec string) (cron.Schedule, error) { return cron.ParseStandard(spec) }

// periodicID is a River periodic job ID for a "plugin/job/schedule" key
// (IDs allow no spaces, schedules have them).
func periodicID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "edulure/" + hex.EncodeToString(sum[:8])
}
