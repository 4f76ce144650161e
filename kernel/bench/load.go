package bench

import (
	"fmt"
	"math"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// load is one HTTP load for dur: closed-model, conns connections each
// sending its next request as soon as the previous one is answered; or,
// with rate set, open-model, rate requests a second whatever the answers
// (as many connections as that takes, from conns up).
type load struct {
	name    string
	conns   int
	rate    float64 // requests per second; 0: closed model
	dur     time.Duration
	targets []vegeta.Target // taken round-robin
	// targeter, when set, makes each request instead (a new body each time).
	targeter vegeta.Targeter
	status   int // every answer must have it
}

// loadResult is what a load measured.
type loadResult struct {
	RPS      float64       // successful requests per second
	P50, P99 time.Duration // latency
	Requests uint64
	Failures int
}

func (r loadResult) String() string {
	return fmt.Sprintf("%.0f req/s, p50 %s, p99 %s (%d requests, %d failed)", r.RPS, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Requests, r.Failures)
}

// run applies the load; a warm-up of a second (opening the connections,
// filling caches) comes first and is not counted.
func (l load) run() (loadResult, error) {
	if _, err := l.attack(min(time.Second, l.dur)); err != nil {
		return loadResult{}, fmt.Errorf("%s: warming up: %w", l.name, err)
	}
	return l.attack(l.dur)
}

func (l load) attack(dur time.Duration) (loadResult, error) {
	n, most := uint64(l.conns), uint64(l.conns)
	// A zero pacer is an unbounded rate: with MaxWorkers = connections,
	// each worker waits for its answer before sending again.
	pacer := vegeta.ConstantPacer{}
	if l.rate > 0 {
		// Enough connections for the rate at a few times its expected
		// latency; more would let a stall of the shared machine turn the
		// load generator into the bottleneck (thousands of goroutines).
		pacer, most = vegeta.ConstantPacer{Freq: int(math.Round(l.rate)), Per: time.Second}, 64
	}
	atk := vegeta.NewAttacker(
		vegeta.Workers(n), vegeta.MaxWorkers(most),
		vegeta.Connections(l.conns), vegeta.MaxConnections(int(most)),
		vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second),
		vegeta.MaxBody(0), vegeta.Redirects(vegeta.NoFollow),
	)
	var m vegeta.Metrics
	failures := 0
	var firstErr string
	tr := l.targeter
	if tr == nil {
		tr = vegeta.NewStaticTargeter(l.targets...)
	}
	for res := range atk.Attack(tr, pacer, dur, l.name) {
		if int(res.Code) != l.status {
			failures++
			if firstErr == "" {
				firstErr = fmt.Sprintf("status %d %s", res.Code, res.Error)
			}
		}
		m.Add(res)
	}
	m.Close()
	r := loadResult{
		RPS: m.Throughput, P50: m.Latencies.P50, P99: m.Latencies.P99,
		Requests: m.Requests, Failures: failures,
	}
	if failures > 0 {
		return r, fmt.Errorf("%s: %d of %d requests failed, first: %s", l.name, failures, m.Requests, firstErr)
	}
	return r, nil
}

// post is a POST target without a body, with a bearer token.
func post(url, token string) vegeta.Target {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	return vegeta.Target{Method: http.MethodPost, URL: url, Header: h}
}

// get is a GET target with a bearer token ("" for none).
func get(url, token string) vegeta.Target {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return vegeta.Target{Method: http.MethodGet, URL: url, Header: h}
}

func target(ts ...vegeta.Target) []vegeta.Target { return ts }
