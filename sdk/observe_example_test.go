package sdk_test

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/edulure/edulure/sdk"
)

// Leaderboard counts what it serves with a collector of its own and traces
// its ranking with a span of its own.
type Leaderboard struct {
	env    *sdk.Env
	served prometheus.Counter
}

// Provision registers the collector: the kernel's /metrics shows it as
// leaderboard_served_total{plugin="leaderboard"}.
func (p *Leaderboard) Provision(_ context.Context, env *sdk.Env) error {
	p.env = env
	p.served = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leaderboard_served_total", // <plugin>_...: the kernel drops other names
		Help: "Leaderboards served.",
	})
	return env.Metrics.Register(p.served)
}

func (p *Leaderboard) get(ctx context.Context, _ *sdk.Request) (*sdk.Response, error) {
	// A child of the SDK's span of the request; SQL run with ctx nests
	// under it. A no-op when the kernel does not trace.
	ctx, span := p.env.Tracer.Start(ctx, "rank learners")
	defer span.End()
	ranks := rank(ctx)
	span.SetAttributes(attribute.Int("leaderboard.rows", len(ranks)))
	p.served.Inc()
	return sdk.JSON(http.StatusOK, ranks)
}

func rank(context.Context) []string { return []string{"ada", "grace"} }

func (p *Leaderboard) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "leaderboard", Version: "1.0.0",
		Permissions: []sdk.Permission{{Name: "leaderboard.board.read", DefaultRoles: []string{"learner"}}},
		Routes:      []sdk.Route{{Method: "GET", Path: "/api/v1/leaderboard", Permission: "leaderboard.board.read", Handler: p.get}},
	}
}

// Env.Metrics takes the plugin's Prometheus collectors and Env.Tracer
// starts spans of its own (see Leaderboard's Provision and get).
func ExampleEnv() {
	var _ sdk.Provisioner = (*Leaderboard)(nil)
	// func main() { sdk.Serve(func() *Leaderboard { return &Leaderboard{} }) }
}
