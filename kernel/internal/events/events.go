// Package events relays events from the transactional outboxes (the
// kernel's and each plugin's) into the event log and delivers them to
// subscribed plugins, at least once, with retries, dead letters and
// per-institution ordering where a subscription asks for it.
//
// One replica at a time (the holder of a Postgres advisory lock) relays and
// delivers; the others stand by and take over within a second of its
// connection going away. Wake-ups come from the committing side (the kernel
// after its own transactions, a plugin through the EventsPublished hint), so
// no publisher pays a NOTIFY; a standby replica that receives a hint passes
// it on with one coalesced NOTIFY. A slow poll catches anything else.
package events

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/sdk/telemetry"
)

// Options tune the relay and delivery.
type Options struct {
	MaxAttempts     int           // delivery attempts before a dead letter (a subscription may set its own)
	BackoffInitial  time.Duration // delay after the first failed attempt; doubles per attempt
	BackoffMax      time.Duration
	Poll            time.Duration // fallback poll when no wake-up arrives
	BatchSize       int           // events per relay transaction and per delivery call
	DeliveryTimeout time.Duration // one delivery call
	LeaderRetry     time.Duration // how often a standby tries to become the relay

	Tracing *telemetry.Tracing    // spans of deliveries; nil: none
	Metrics prometheus.Registerer // deliveries by outcome, lag; nil: not registered
	// Sealer opens the sealed secret fields of kernel events (outbox.Open)
	// for the subscribers they are delivered to.
	Sealer *seal.Sealer
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.BackoffInitial, time.Second)
	def(&o.BackoffMax, 10*time.Minute)
	def(&o.Poll, time.Second)
	def(&o.DeliveryTimeout, 30*time.Second)
	def(&o.LeaderRetry, time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
}

// Hooks let the job system act on relayed events in the relay's transaction.
type Hooks interface {
	// EventsRelayed is called inside the relay transaction with the event
	// log sequence numbers just written (accepted events only).
	EventsRelayed(ctx context.Context, tx Tx, seqs []int64) error
}

// Service is the relay and the dispatchers of one kernel replica.
type Service struct {
	opts   Options
	pool   *pgxpool.Pool
	sup    *supervisor.Supervisor
	logger hclog.Logger
	hooks  Hooks

	wakeRelay chan struct{}
	mu        sync.Mutex
	dirty     map[string]bool // sources with news since the last relay pass
	leader    bool
	dispatch  map[string]*dispatcher // by subscriber, while leader
	notify    chan struct{}          // standby: pass a wake-up on to the leader
	leadCtx   context.Context        // while leader: ends when leadership does

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	tracer  trace.Tracer
	metrics *metrics
}

// New makes the service; Start runs it.
func New(pool *pgxpool.Pool, sup *supervisor.Supervisor, logger hclog.Logger, opts Options) *Service {
	opts.defaults()
	if opts.Tracing == nil {
		opts.Tracing = telemetry.Off()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		opts: opts, pool: pool, sup: sup, logger: logger.Named("events"),
		wakeRelay: make(chan struct{}, 1), dirty: map[string]bool{}, dispatch: map[string]*dispatcher{},
		notify: make(chan struct{}, 1), ctx: ctx, cancel: cancel,
		tracer: opts.Tracing.Provider.Tracer("github.com/edulure/edulure/kernel/events"), metrics: newMetrics(opts.Metrics),
	}
}

// SetHooks sets the job system's hooks; call before Start.
func (s *Service) SetHooks(h Hooks) { s.hooks = h }

// Start begins leader election; the winner relays and delivers.
func (s *Service) Start() {
	s.sup.OnEventsPublished(func(plugin string) { s.Wake(plugin) })
	s.sup.OnChange(s.pluginsChanged)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.elect() }()
	go func() { defer s.wg.Done(); s.passOn() }()
}

// Close stops relaying and delivering; in-flight deliveries are abandoned
// and redelivered by whichever replica relays next.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Wake tells the relay that source ("kernel" or a plugin's name) committed
// events. It never blocks.
func (s *Service) Wake(source string) {
	s.mu.Lock()
	s.dirty[source] = true
	leader := s.leader
	s.mu.Unlock()
	ch := s.wakeRelay
	if !leader {
		ch = s.notify
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Leader reports whether this replica is relaying and delivering.
func (s *Service) Leader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

// wakeChannel is the NOTIFY channel a standby uses to pass a wake-up on.
const wakeChannel = "edulure_events_wake"

// leaderLock is the advisory lock key of the relay (an arbitrary constant).
const leaderLock = 0x6564756c_72656c61 // "edulrela"

// elect tries to take the relay lock; while held, it runs the relay and the
// dispatchers and listens for wake-ups passed on by standbys.
func (s *Service) elect() {
	for s.ctx.Err() == nil {
		if err := s.leadOnce(); err != nil && s.ctx.Err() == nil {
			s.logger.Warn("event relay leadership ended", "error", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(jitter(s.opts.LeaderRetry)):
		}
	}
}

func (s *Service) leadOnce() error {
	conn, err := s.pool.Acquire(s.ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(s.ctx, "SELECT pg_try_advisory_lock($1)", int64(leaderLock)).Scan(&got); err != nil {
		return err
	}
	if !got {
		return nil
	}
	// Session state (lock and LISTEN) must not return to the pool.
	defer conn.Conn().Close(context.Background()) //nolint:errcheck
	if _, err := conn.Exec(s.ctx, "LISTEN "+wakeChannel); err != nil {
		return err
	}
	s.logger.Info("this replica relays and delivers events")
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.mu.Lock()
	s.leader, s.leadCtx = true, ctx
	s.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.relay(ctx) }()
	s.syncDispatchers(ctx)
	defer func() {
		cancel()
		wg.Wait()
		s.mu.Lock()
		s.leader = false
		ds := s.dispatch
		s.dispatch = map[string]*dispatcher{}
		s.mu.Unlock()
		for _, d := range ds {
			d.stop()
		}
	}()
	// The listening connection is also the lock's lifeline: when it fails,
	// another replica may already hold the lock, so stop at once.
	for {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		n, err := conn.Conn().WaitForNotification(wctx)
		wcancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil && n != nil:
			s.markAllDirty()
			s.wakeDispatchers(nil) // a replay on a standby, perhaps
		case errors.Is(err, context.DeadlineExceeded):
			if err := conn.Ping(ctx); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// passOn forwards a standby's wake-ups to the leader with NOTIFY, at most
// one at a time however many arrive.
func (s *Service) passOn() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.notify:
			ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
			if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, '')", wakeChannel); err != nil && s.ctx.Err() == nil {
				s.logger.Debug("passing a wake-up on failed; the leader will poll", "error", err)
			}
			cancel()
		}
	}
}

func (s *Service) markAllDirty() {
	s.mu.Lock()
	s.dirty["*"] = true
	s.mu.Unlock()
	select {
	case s.wakeRelay <- struct{}{}:
	default:
	}
}

func (s *Service) pluginsChanged() {
	s.mu.Lock()
	leader, ctx := s.leader, s.leadCtx
	s.mu.Unlock()
	if leader {
		s.syncDispatchers(ctx)
		s.markAllDirty()
	}
}

// wakeDispatchers nudges the dispatchers of the given subscribers (all when
// nil).
func (s *Service) wakeDispatchers(subscribers map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, d := range s.dispatch {
		if subscribers == nil || subscribers[name] {
			d.wake()
		}
	}
}

// backoff is the delay after the attempt-th failed attempt, with jitter.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.opts.BackoffInitial
	for i := 1; i < attempt && d < s.opts.BackoffMax; i++ {
		d *= 2
	}
	return jitter(min(d, s.opts.BackoffMax))
}

// jitter spreads d by up to ±20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}
