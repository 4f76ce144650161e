// Package events relays events from the transactional outboxes (the
// kernel's and each plugin's) into the event log and delivers them to
// subscribed plugins, at least once, with retries, dead letters, replay,
// catch-up and per-institution ordering where a subscription asks for it.
//
// The event log (kernel.events, partitioned by day) is read by cursors:
// each subscriber has a live cursor, and a catch-up or a replay is a
// cursor of its own over a bounded part of the log. A delivery row exists
// only for an event whose delivery failed (its retry state or dead letter)
// or that waits behind such an event of its institution, so a healthy
// subscriber costs one cursor update per batch.
//
// The work is split into leases (the relay, the log's maintenance, and
// one per subscriber) held as Postgres advisory locks on one connection
// per replica: each replica takes its fair share, a replica that goes away
// releases its leases with its connection, and the others take them over
// within a second. Wake-ups come from the committing side (the kernel after
// its own transactions, a plugin through the EventsPublished hint), so no
// publisher pays a NOTIFY; a replica that does not hold the lease passes
// the wake-up on with one coalesced NOTIFY. A slow poll catches anything
// else.
package events

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
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
	LeaseCheck      time.Duration // how often a replica rebalances its leases
	// Retention is how long the log keeps an event (and a plugin's inbox
	// its ID, and the delivery rows of recovered failures): a day's
	// partition is dropped once it is older than this and every cursor has
	// passed it. It is also the catch-up window. Default 30 days.
	Retention  time.Duration
	PruneEvery time.Duration // how often the log is maintained (default 10m)
	// ReplicaID names this replica in the leases and the cursors' owner
	// column; default a random UUID.
	ReplicaID string

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
	def(&o.LeaseCheck, time.Second)
	def(&o.Retention, 30*24*time.Hour)
	def(&o.PruneEvery, 10*time.Minute)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.ReplicaID == "" {
		o.ReplicaID = uuid.NewString()
	}
}

// Hooks let the job system act on relayed events in the relay's transaction.
type Hooks interface {
	// EventsRelayed is called inside the relay transaction with the event
	// log sequence numbers just written (accepted events only).
	EventsRelayed(ctx context.Context, tx Tx, seqs []int64) error
}

// Service is the relay, the dispatchers and the log's maintenance of one
// kernel replica, each running while the replica holds its lease.
type Service struct {
	opts   Options
	pool   *pgxpool.Pool
	sup    *supervisor.Supervisor
	logger hclog.Logger
	hooks  Hooks

	wakeRelay chan struct{}
	rebalance chan struct{} // plugins changed: revisit the leases now
	notify    chan string   // a wake-up for another replica's lease: NOTIFY it
	mu        sync.Mutex
	dirty     map[string]bool        // sources with news since the last relay pass
	relaying  bool                   // this replica holds the relay lease
	dispatch  map[string]*dispatcher // by subscriber, while this replica holds its lease

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
		wakeRelay: make(chan struct{}, 1), rebalance: make(chan struct{}, 1), notify: make(chan string, 64),
		dirty: map[string]bool{}, dispatch: map[string]*dispatcher{},
		ctx: ctx, cancel: cancel,
		tracer: opts.Tracing.Provider.Tracer("github.com/edulure/edulure/kernel/events"), metrics: newMetrics(opts.Metrics),
	}
}

// SetHooks sets the job system's hooks; call before Start.
func (s *Service) SetHooks(h Hooks) { s.hooks = h }

// Retention is how long the log keeps events: the catch-up window.
func (s *Service) Retention() time.Duration { return s.opts.Retention }

// Start takes this replica's share of the leases and keeps it.
func (s *Service) Start() {
	s.sup.OnEventsPublished(func(plugin string) { s.Wake(plugin) })
	s.sup.OnChange(s.pluginsChanged)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.lease() }()
	go func() { defer s.wg.Done(); s.passOn() }()
}

// Close stops relaying and delivering; in-flight deliveries are abandoned
// and redelivered by whichever replica takes the lease next.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Wake tells the relay that source ("kernel" or a plugin's name) committed
// events. It never blocks.
func (s *Service) Wake(source string) {
	s.mu.Lock()
	s.dirty[source] = true
	relaying := s.relaying
	s.mu.Unlock()
	if relaying {
		poke(s.wakeRelay)
		return
	}
	s.passOnWake(wakeRelay)
}

// Relaying reports whether this replica holds the relay's lease.
func (s *Service) Relaying() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relaying
}

// Delivering lists the subscribers this replica delivers to.
func (s *Service) Delivering() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.dispatch))
	for name := range s.dispatch {
		out = append(out, name)
	}
	return out
}

// Wake-up payloads of the NOTIFY channel.
const (
	wakeChannel = "edulure_events_wake"
	wakeRelay   = "relay"   // a source has news: the relay's holder relays
	wakeDeliver = "deliver" // the log or the delivery rows have news: every dispatcher looks
)

// passOnWake asks the replicas holding other leases to look, with one
// coalesced NOTIFY per kind.
func (s *Service) passOnWake(kind string) {
	select {
	case s.notify <- kind:
	default:
	}
}

// passOn sends the NOTIFYs passOnWake asks for, at most one at a time of
// each kind however many arrive.
func (s *Service) passOn() {
	for {
		var kind string
		select {
		case <-s.ctx.Done():
			return
		case kind = <-s.notify:
		}
		kinds := map[string]bool{kind: true}
	drain:
		for {
			select {
			case k := <-s.notify:
				kinds[k] = true
			default:
				break drain
			}
		}
		for k := range kinds {
			ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
			if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", wakeChannel, k); err != nil && s.ctx.Err() == nil {
				s.logger.Debug("passing a wake-up on failed; the lease holder will poll", "error", err)
			}
			cancel()
		}
	}
}

// woken handles a NOTIFY from another replica.
func (s *Service) woken(kind string) {
	switch kind {
	case wakeRelay:
		s.markAllDirty()
	default:
		s.wakeDispatchers(nil, true)
	}
}

func (s *Service) markAllDirty() {
	s.mu.Lock()
	s.dirty["*"] = true
	s.mu.Unlock()
	poke(s.wakeRelay)
}

func (s *Service) pluginsChanged() {
	poke(s.rebalance)
	s.wakeDispatchers(nil, true) // a plugin may have started running, or changed its subscriptions
	s.markAllDirty()
}

// wakeDispatchers nudges this replica's dispatchers of the given
// subscribers (all when nil); reload makes them re-read their cursors and
// subscriptions (a replay or catch-up was added).
func (s *Service) wakeDispatchers(subscribers map[string]bool, reload bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, d := range s.dispatch {
		if subscribers == nil || subscribers[name] {
			d.wake(reload)
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

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
