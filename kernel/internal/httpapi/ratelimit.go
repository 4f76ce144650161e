package httpapi

import (
	"math"
	"net/http"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/edulure/edulure/kernel/internal/problem"
)

// limiter is a token bucket per key (client IP, account), kept in a bounded
// LRU so that a flood of distinct keys cannot exhaust memory. Limits are per
// kernel replica; the account lockout in the database holds across replicas.
type limiter struct {
	perWindow int
	window    time.Duration
	buckets   *expirable.LRU[string, *rate.Limiter]
}

func newLimiter(perWindow int, window time.Duration) *limiter {
	return &limiter{perWindow: perWindow, window: window, buckets: expirable.NewLRU[string, *rate.Limiter](100_000, nil, 2*window)}
}

// allow takes one token for key, or says how many seconds to wait.
func (l *limiter) allow(key string) (bool, int) {
	b, ok := l.buckets.Get(key)
	if !ok {
		b = rate.NewLimiter(rate.Limit(float64(l.perWindow)/l.window.Seconds()), l.perWindow)
		l.buckets.Add(key, b)
	}
	r := b.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}

func tooMany(what string, retry int) *problem.Problem {
	p := problem.New(http.StatusTooManyRequests, "rate-limited", "too many "+what+"; retry later")
	p.RetryAfter = max(retry, 1)
	return p
}

func (s *Server) limitByIP(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ok, retry := s.ipLimit.allow(c.RealIP()); !ok {
			return tooMany("authentication requests from this address", retry)
		}
		return next(c)
	}
}
