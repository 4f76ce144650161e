package messaging

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
)

// hub wakes the inbox streams of this plugin process. A notification
// delivered in the app sends a Postgres NOTIFY (tenant:user:seq) when its
// transaction commits, whichever replica made it; each process LISTENs on
// one connection of its own, reads the item once, and hands it to every
// stream of that person. A stream that falls behind, or that may have
// missed something while the listener reconnected, is told to catch up
// from the database: the stream's Last-Event-ID is its position, so
// nothing is lost or repeated.
type hub struct {
	log     hclog.Logger
	connect func(ctx context.Context) (*pgx.Conn, error)
	load    func(ctx context.Context, tenant, user string, seq int64) (*InboxItem, error)

	mu      sync.Mutex
	subs    map[string]map[*subscriber]struct{}
	started bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

// subscriber is one open stream.
type subscriber struct {
	key   string
	items chan *InboxItem // the next items, in order
	wake  chan struct{}   // catch up from the database
}

func newHub(log hclog.Logger, connect func(ctx context.Context) (*pgx.Conn, error),
	load func(ctx context.Context, tenant, user string, seq int64) (*InboxItem, error)) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{log: log, connect: connect, load: load, subs: map[string]map[*subscriber]struct{}{}, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// subscribe registers a stream of a person; the listener starts with the
// first. Close it with unsubscribe.
func (h *hub) subscribe(tenant, user string) *subscriber {
	s := &subscriber{key: tenant + ":" + user, items: make(chan *InboxItem, 64), wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[s.key] == nil {
		h.subs[s.key] = map[*subscriber]struct{}{}
	}
	h.subs[s.key][s] = struct{}{}
	if !h.started {
		h.started = true
		go h.listen()
	}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[s.key], s)
	if len(h.subs[s.key]) == 0 {
		delete(h.subs, s.key)
	}
}

// close stops the listener.
func (h *hub) close() {
	h.cancel()
	h.mu.Lock()
	started := h.started
	h.mu.Unlock()
	if started {
		<-h.done
	}
}

func (h *hub) listen() {
	defer close(h.done)
	backoff := 100 * time.Millisecond
	for h.ctx.Err() == nil {
		conn, err := h.connect(h.ctx)
		if err == nil {
			_, err = conn.Exec(h.ctx, "LISTEN "+inboxChannel)
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.Background())
			}
			if h.ctx.Err() != nil {
				return
			}
			h.log.Warn("inbox listener cannot connect; retrying", "error", err, "in", backoff)
			select {
			case <-h.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		// Whatever was committed while nobody listened: every stream
		// catches up.
		h.wakeAll()
		for {
			n, err := conn.WaitForNotification(h.ctx)
			if err != nil {
				if h.ctx.Err() == nil {
					h.log.Warn("inbox listener lost its connection; reconnecting", "error", err)
				}
				break
			}
			h.dispatch(n.Payload)
		}
		conn.Close(context.Background())
	}
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, group := range h.subs {
		for s := range group {
			s.poke()
		}
	}
}

func (s *subscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch hands one delivered item to the person's streams.
func (h *hub) dispatch(payload string) {
	parts := strings.Split(payload, ":")
	if len(parts) != 3 {
		return
	}
	key := parts[0] + ":" + parts[1]
	h.mu.Lock()
	n := len(h.subs[key])
	h.mu.Unlock()
	if n == 0 {
		return
	}
	seq, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	item, err := h.load(ctx, parts[0], parts[1], seq)
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[key] {
		if err != nil || item == nil {
			s.poke()
			continue
		}
		select {
		case s.items <- item:
		default: // behind: it reads the database instead
			s.poke()
		}
	}
}
