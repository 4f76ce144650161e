package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// background runs work that must not be on a request's path, such as the
// account-dependent part of a password-reset request: the answer is sent
// before it starts, so its timing reveals nothing. Work is bounded (a full
// queue drops new work, logged) and Wait lets it finish.
type background struct {
	wg   sync.WaitGroup
	slot chan struct{}
	hold atomic.Pointer[chan struct{}] // tests: work waits until it is closed
}

func newBackground(max int) *background { return &background{slot: make(chan struct{}, max)} }

// goBackground runs fn in its own goroutine with a deadline of the request
// timeout, detached from the request.
func (s *Server) goBackground(log hclog.Logger, what string, fn func(ctx context.Context) error) {
	select {
	case s.bg.slot <- struct{}{}:
	default:
		log.Warn("background work dropped: too much in flight", "work", what)
		return
	}
	s.bg.wg.Add(1)
	go func() {
		defer func() { <-s.bg.slot; s.bg.wg.Done() }()
		if hold := s.bg.hold.Load(); hold != nil {
			<-*hold
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.Config.RequestTimeout)
		defer cancel()
		start := time.Now()
		if err := fn(ctx); err != nil {
			log.Error("background work failed", "work", what, "error", err, "duration_ms", time.Since(start).Milliseconds())
		}
	}()
}

// Wait returns once the background work started so far has finished. The
// kernel calls it on shutdown, before closing the database pool.
func (s *Server) Wait() { s.bg.wg.Wait() }
