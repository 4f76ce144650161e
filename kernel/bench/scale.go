package bench

import (
	"context"
	"fmt"
	"sync"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/edulure/edulure/kernel/internal/app"
)

// tenantsRow compares the plugin no-op route's throughput with requests
// spread over 1,000 institutions (each with the plugin enabled) to the same
// load from one institution.
func (e *env) tenantsRow(ctx context.Context) (Row, error) {
	n := 1000
	if e.opts.Smoke {
		n = 20
	}
	first, err := e.login("learner@bench.test", "bench")
	if err != nil {
		return Row{}, err
	}
	tokens := make([]string, n)
	tokens[0] = first
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 1; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			slug := fmt.Sprintf("bench-%04d", i)
			if _, err := app.CreateTenant(ctx, e.pool, slug, "Institution "+slug); err != nil {
				errs <- err
				return
			}
			// The learner joins every institution; a token per institution.
			if _, err := app.CreateUser(ctx, e.pool, app.UserSpec{Email: "learner@bench.test", Name: "learner", Tenant: slug, Roles: []string{"learner"}}); err != nil {
				errs <- err
				return
			}
			var out struct {
				AccessToken string `json:"access_token"`
			}
			if err := e.call("POST", "/api/v1/auth/switch", first, map[string]string{"tenant": slug}, 200, &out); err != nil {
				errs <- err
				return
			}
			tokens[i] = out.AccessToken
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Row{}, err
	}
	if _, err := e.pool.Exec(ctx, `
		INSERT INTO kernel.tenant_plugins (tenant_id, plugin, enabled)
		SELECT id, 'probe', true FROM kernel.tenants
		ON CONFLICT (tenant_id, plugin) DO UPDATE SET enabled = true`); err != nil {
		return Row{}, err
	}
	e.printf("  %d institutions, each with the probe plugin enabled", n)
	url := e.url + "/api/v1/probe/noop"
	var many []vegeta.Target
	for _, t := range tokens {
		many = append(many, get(url, t))
	}
	res, err := e.best(e.opts.Rounds,
		load{name: "scale.tenants (1)", conns: 64, dur: e.opts.Duration, status: 204, targets: target(get(url, first))},
		load{name: fmt.Sprintf("scale.tenants (%d)", n), conns: 64, dur: e.opts.Duration, status: 204, targets: many},
	)
	if err != nil {
		return Row{}, err
	}
	return row("scale.tenants", res[1].RPS, "req/s", "the same load from 1 institution", res[0].RPS, ratioAtLeast(0.95)), nil
}

// pluginsRow compares the plugin no-op route's throughput with 20 plugins
// loaded to the same with only that plugin loaded.
func (e *env) pluginsRow(ctx context.Context) (Row, error) {
	n := 20
	if e.opts.Smoke {
		n = 4
	}
	base := e.basePlugins()
	probe := base[0]
	many := []pluginEntry{probe}
	for i := 1; i < n; i++ {
		many = append(many, pluginEntry{name: fmt.Sprintf("scale%02d", i), bin: e.plugins["scale"]})
	}
	l := func(k int) load {
		return load{name: fmt.Sprintf("scale.plugins (%d)", k), conns: 64, dur: e.opts.Duration, status: 204,
			targets: target(get(e.url+"/api/v1/probe/noop", e.tokens["learner"]))}
	}
	var one, all loadResult
	for range e.opts.Rounds {
		if err := e.reload(probe); err != nil {
			return Row{}, err
		}
		r, err := e.best(1, l(1))
		if err != nil {
			return Row{}, err
		}
		if r[0].RPS > one.RPS {
			one = r[0]
		}
		if err := e.reload(many...); err != nil {
			return Row{}, err
		}
		if r, err = e.best(1, l(n)); err != nil {
			return Row{}, err
		}
		if r[0].RPS > all.RPS {
			all = r[0]
		}
	}
	if err := e.reload(base...); err != nil {
		return Row{}, err
	}
	return row("scale.plugins", all.RPS, "req/s", "the same with 1 plugin loaded", one.RPS, ratioAtLeast(0.95)), nil
}
