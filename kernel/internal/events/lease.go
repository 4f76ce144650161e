package events

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The work of events is split into leases: the relay, the log's
// maintenance, and the delivery to each subscriber. A lease is a Postgres
// session advisory lock (class leaseClass, key a hash of its name) held on
// the replica's lease connection, which also holds the replica's presence
// lock (class presenceClass): counting the presence locks in pg_locks
// tells each replica how many share the work, and each takes its fair
// share, ceil(leases / replicas), preferring the leases that rank highest
// for it by rendezvous hashing so that the shares spread evenly and move
// little when a replica comes or goes. A replica that dies or loses its
// connection loses its locks with it; the others take them over at their
// next check (LeaseCheck, 1 s). A replica gives a lease up on purpose only
// after stopping its work. A replica that lost its connection but still
// runs is fenced off: every transaction of a dispatcher checks that the
// subscriber's live cursor names this replica as its owner, and the replica
// that takes the lease over writes its own name there first.
const (
	leaseClass    int32 = 0x65766c73 // "evls"
	presenceClass int32 = 0x65767072 // "evpr"
)

// Lease names.
const (
	leaseRelay    = "relay"
	leaseMaintain = "maintain"
	leaseDeliver  = "deliver:" // + the subscriber's name
)

func lockKey(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int32(h.Sum32() & math.MaxInt32)
}

// rank orders the leases for one replica (rendezvous hashing).
func rank(replica, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(replica))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return h.Sum64()
}

// worker is the goroutine doing one lease's work.
type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// lease keeps this replica's share of the leases until Close.
func (s *Service) lease() {
	for s.ctx.Err() == nil {
		if err := s.leaseSession(); err != nil && s.ctx.Err() == nil {
			s.logger.Warn("event leases lost with their connection; taking them again", "error", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(jitter(s.opts.LeaseCheck)):
		}
	}
}

// leaseSession holds the leases on one connection until it fails.
func (s *Service) leaseSession() error {
	pc, err := s.pool.Acquire(s.ctx)
	if err != nil {
		return err
	}
	// Session state (the locks, LISTEN) must never return to the pool.
	conn := pc.Hijack()
	defer conn.Close(context.Background()) //nolint:errcheck // closing releases every lock
	var got bool
	if err := conn.QueryRow(s.ctx, "SELECT pg_try_advisory_lock($1, $2)", presenceClass, lockKey(s.opts.ReplicaID)).Scan(&got); err != nil {
		return err
	}
	if !got {
		return fmt.Errorf("another replica holds the presence lock of replica ID %q: give each replica its own", s.opts.ReplicaID)
	}
	if _, err := conn.Exec(s.ctx, "LISTEN "+wakeChannel); err != nil {
		return err
	}
	held := map[string]*worker{}
	defer func() {
		for name, w := range held {
			s.stopWorker(name, w)
		}
	}()
	var last time.Time
	for {
		if time.Since(last) >= s.opts.LeaseCheck {
			if err := s.balance(conn, held); err != nil {
				return err
			}
			last = time.Now()
		}
		// Wait for a wake-up from another replica, a change of plugins, or
		// the next check.
		wctx, cancel := context.WithTimeout(s.ctx, s.opts.LeaseCheck-time.Since(last))
		stop, asked := make(chan struct{}), make(chan bool, 1)
		go func() {
			select {
			case <-s.rebalance:
				asked <- true
				cancel()
			case <-stop:
				asked <- false
			}
		}()
		n, err := conn.WaitForNotification(wctx)
		close(stop)
		if <-asked {
			last = time.Time{}
		}
		cancel()
		switch {
		case s.ctx.Err() != nil:
			return nil
		case err == nil:
			s.woken(n.Payload)
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		default:
			return err
		}
	}
}

// leaseNames are the leases this replica can hold: the relay, the
// maintenance, and the delivery to each loaded subscriber.
func (s *Service) leaseNames() []string {
	names := []string{leaseRelay, leaseMaintain}
	for _, p := range s.sup.Loaded() {
		if len(p.Manifest.Subscriptions) > 0 {
			names = append(names, leaseDeliver+p.Name)
		}
	}
	return names
}

// balance gives up what this replica should not hold and takes its share.
func (s *Service) balance(conn *pgx.Conn, held map[string]*worker) error {
	var replicas int
	err := conn.QueryRow(s.ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid::int8 = $1 AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		presenceClass).Scan(&replicas)
	if err != nil {
		return err
	}
	names := s.leaseNames()
	sort.Slice(names, func(i, j int) bool { return rank(s.opts.ReplicaID, names[i]) > rank(s.opts.ReplicaID, names[j]) })
	share := (len(names) + max(replicas, 1) - 1) / max(replicas, 1)
	wanted := map[string]int{}
	for i, n := range names {
		wanted[n] = i
	}
	// Give up leases no longer wanted, then the lowest ranked beyond the share.
	var mine []string
	for name := range held {
		if _, ok := wanted[name]; !ok {
			if err := s.release(conn, name, held); err != nil {
				return err
			}
			continue
		}
		mine = append(mine, name)
	}
	sort.Slice(mine, func(i, j int) bool { return wanted[mine[i]] < wanted[mine[j]] })
	for len(mine) > share {
		name := mine[len(mine)-1]
		mine = mine[:len(mine)-1]
		if err := s.release(conn, name, held); err != nil {
			return err
		}
	}
	for _, name := range names {
		if len(held) >= share {
			break
		}
		if held[name] != nil {
			continue
		}
		var got bool
		if err := conn.QueryRow(s.ctx, "SELECT pg_try_advisory_lock($1, $2)", leaseClass, lockKey(name)).Scan(&got); err != nil {
			return err
		}
		if got {
			held[name] = s.startWorker(name)
		}
	}
	return nil
}

func (s *Service) release(conn *pgx.Conn, name string, held map[string]*worker) error {
	s.stopWorker(name, held[name])
	delete(held, name)
	_, err := conn.Exec(s.ctx, "SELECT pg_advisory_unlock($1, $2)", leaseClass, lockKey(name))
	return err
}

func (s *Service) startWorker(name string) *worker {
	ctx, cancel := context.WithCancel(s.ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	s.logger.Debug("took an event lease", "lease", name, "replica", s.opts.ReplicaID)
	switch {
	case name == leaseRelay:
		s.mu.Lock()
		s.relaying = true
		s.mu.Unlock()
		go func() { defer close(w.done); s.relay(ctx) }()
	case name == leaseMaintain:
		go func() { defer close(w.done); s.maintain(ctx) }()
	default:
		d := newDispatcher(s, strings.TrimPrefix(name, leaseDeliver))
		s.mu.Lock()
		s.dispatch[d.name] = d
		s.mu.Unlock()
		go func() { defer close(w.done); d.run(ctx) }()
	}
	return w
}

func (s *Service) stopWorker(name string, w *worker) {
	w.cancel()
	<-w.done
	s.mu.Lock()
	switch {
	case name == leaseRelay:
		s.relaying = false
	case strings.HasPrefix(name, leaseDeliver):
		delete(s.dispatch, strings.TrimPrefix(name, leaseDeliver))
	}
	s.mu.Unlock()
	s.logger.Debug("gave up an event lease", "lease", name, "replica", s.opts.ReplicaID)
}
