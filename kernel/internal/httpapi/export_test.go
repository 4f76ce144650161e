package httpapi

import "context"

// HoldBackground makes background work wait until release is called, so a
// test can look at an answer before any of that work has run.
func HoldBackground(s *Server) (release func()) {
	ch := make(chan struct{})
	s.bg.hold.Store(&ch)
	return func() { close(ch) }
}

// PruneIdempotencyKeys deletes expired Idempotency-Key records now.
func PruneIdempotencyKeys(ctx context.Context, s *Server) (int64, error) {
	return s.pruneIdempotencyKeys(ctx)
}
