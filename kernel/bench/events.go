package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/sdk"
)

// eventRows measures delivery to one subscriber (the sink plugin,
// subscribed to the probe plugin's pings), each figure next to a baseline
// of the same run:
//
//   - sustained throughput with a one-event handler, then with a batched
//     one, each against the plugins' own SQL for the same events without
//     the kernel (the publisher's outbox inserts, the subscriber's handler),
//     and the rows Postgres writes per delivered event (pg_stat);
//   - latency, publish to handler, in an open loop at half the batched
//     sustained rate;
//   - a catch-up of 100,000 events for an institution that turns the
//     subscriber on, against the sustained rate.
func (e *env) eventRows(ctx context.Context) ([]Row, error) {
	total, catchUp := 60000, 100000
	if e.opts.Smoke {
		total, catchUp = 2000, 2000
	}
	plain, err := e.plainInserts(ctx, total, 4)
	if err != nil {
		return nil, err
	}
	one, err := e.eventThroughput(ctx, "one-event handler", total, false)
	if err != nil {
		return nil, err
	}
	sinkb := e.basePlugins()
	sinkb[1].bin = e.plugins["sinkb"]
	if err := e.reload(sinkb...); err != nil {
		return nil, err
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck // the next group finds out
	batched, err := e.eventThroughput(ctx, "batched handler", total, true)
	if err != nil {
		return nil, err
	}
	lat, err := e.eventLatency(ctx, batched.rate/2)
	if err != nil {
		return nil, err
	}
	cu, err := e.catchUpRate(ctx, catchUp)
	if err != nil {
		return nil, err
	}
	tp := row("events.throughput", batched.rate, "events/s", "the plugins' own SQL without the kernel (publisher's outbox inserts, subscriber's batched handler)", batched.bound,
		atLeast(10000), ratioAtLeast(0.9))
	tp.Note = fmt.Sprintf("batched handler, %d events, %d writers in transactions of 100; %.0f events per delivery call on average. %.0f plain single-row inserts/s in the same run (ratio %.2f; the first design reached 0.18)",
		total, 4, batched.perCall, plain, batched.rate/plain)
	tpOne := row("events.throughput_one", one.rate, "events/s", "the plugins' own SQL without the kernel (publisher's outbox inserts, subscriber's one transaction per event)", one.bound)
	tpOne.Note = fmt.Sprintf("one-event handler; %.0f events per delivery call on average", one.perCall)
	rw := row("events.rows_written", batched.rows, "rows/event", "rows the plugins themselves write per event (outbox insert, inbox, their own row)", batched.ownRows)
	rw.Note = fmt.Sprintf("pg_stat_user_tables, inserts + updates + deletes per delivered event, batched run: %s; one-event run %.2f rows/event. The first design wrote 7 (outbox insert and delete, log row, delivery row inserted and updated, inbox, the handler's row)",
		batched.byTable, one.rows)
	p50 := row("events.latency_p50", lat.p50, "ms", "the publishing request's own p50 at that load", lat.reqP50, atMost(5))
	p50.Note = fmt.Sprintf("open loop at %.0f events/s (half the batched sustained rate) for %s: %d requests of %d events in one transaction; from the publishing handler's Publish call (just before its commit) to the subscriber's handler",
		lat.rate, lat.dur, lat.requests, lat.perRequest)
	p99 := row("events.latency_p99", lat.p99, "ms", "the publishing request's own p99 at that load", lat.reqP99, atMost(25))
	cr := row("events.catch_up", cu.rate, "events/s", "events.throughput (sustained delivery, batched)", batched.rate, ratioAtLeast(0.9))
	cr.Note = fmt.Sprintf("%d events of one institution, delivered after it turns the subscriber on (catch-up: retained), in %s", catchUp, cu.took.Round(time.Millisecond))
	return []Row{p50, p99, tp, tpOne, cr, rw}, nil
}

// received counts the pings the sink recorded.
func (e *env) received(ctx context.Context) (n int, err error) {
	err = e.pool.QueryRow(ctx, "SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'").Scan(&n)
	return n, err
}

// awaitReceived polls, seldom (counting is work for the database being
// measured; the figures come from the handlers' own timestamps), until
// the sink recorded want pings.
func (e *env) awaitReceived(ctx context.Context, want int, limit time.Duration) error {
	for deadline := time.Now().Add(limit); ; {
		n, err := e.received(ctx)
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d events delivered after %s", n, want, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publish publishes total pings from writers in transactions of per.
func (e *env) publish(total, per, writers int) error {
	return e.publishAs(e.tokens["instructor"], total, per, writers)
}

// publishAs publishes as the holder of tok.
func (e *env) publishAs(tok string, total, per, writers int) error {
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := w * per; b < total; b += per * writers {
				if err := e.call("POST", fmt.Sprintf("/api/v1/probe/publish?n=%d", min(per, total-b)), tok, nil, 200, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// throughput is one sustained delivery measurement.
type throughput struct {
	rate, bound float64 // events/s through the kernel, and of the plugins' own SQL
	perCall     float64 // events per delivery call
	rows        float64 // rows written per event, all tables
	ownRows     float64 // of which the plugins' own inserts
	byTable     string
}

// eventThroughput publishes total pings from 4 writers in transactions of
// 100 and clocks them from the first publish to the last handler entered.
func (e *env) eventThroughput(ctx context.Context, what string, total int, batched bool) (throughput, error) {
	const per, writers = 100, 4
	var out throughput
	if _, err := e.pool.Exec(ctx, "TRUNCATE plugin_sink.received"); err != nil {
		return out, err
	}
	if e.opts.PGStat {
		if _, err := e.pool.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
			return out, err
		}
	}
	written, err := e.rowsWritten(ctx)
	if err != nil {
		return out, err
	}
	cpu := e.cpuTimes()
	start := time.Now()
	if err := e.publish(total, per, writers); err != nil {
		return out, err
	}
	published := time.Since(start)
	if err := e.awaitReceived(ctx, total, 5*time.Minute); err != nil {
		return out, err
	}
	var lastNs int64
	if err := e.pool.QueryRow(ctx, "SELECT max(entered_ns) FROM plugin_sink.received").Scan(&lastNs); err != nil {
		return out, err
	}
	took := time.Unix(0, lastNs).Sub(start)
	out.rate = float64(total) / took.Seconds()
	e.printf("  %s: %d events published in %s, delivered in %s; %s", what, total, published.Round(time.Millisecond), took.Round(time.Millisecond), e.cpuSince(cpu))
	var moves int64
	if out.rows, out.ownRows, moves, out.byTable, err = e.rowsWrittenSince(ctx, written, total); err != nil {
		return out, err
	}
	out.perCall = float64(total) / float64(max(moves, 1)) // the live cursor moves once a call
	e.printf("  %s: Postgres rows written per delivered event: %.2f (%s)", what, out.rows, out.byTable)
	if e.opts.PGStat {
		e.printStatements(ctx)
	}
	if out.bound, err = e.pluginSideRate(ctx, total, per, writers, batched); err != nil {
		return out, err
	}
	e.printf("  %s: %.0f events/s through the kernel, %.0f events/s of the plugins' own SQL without it (%.0f%%)", what, out.rate, out.bound, 100*out.rate/out.bound)
	return out, nil
}

// plainInserts is the rate of single-row inserts from writers, each its
// own transaction: the figure the first events design was compared with.
func (e *env) plainInserts(ctx context.Context, total, writers int) (float64, error) {
	if _, err := e.pool.Exec(ctx, "DROP TABLE IF EXISTS bench_plain; CREATE TABLE bench_plain (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, data jsonb NOT NULL)"); err != nil {
		return 0, err
	}
	start := time.Now()
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range total / writers {
				if _, err := e.pool.Exec(ctx, "INSERT INTO bench_plain (tenant_id, data) VALUES ($1, $2)", e.tenantID, fmt.Sprintf(`{"n":%d}`, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(<-errs); err != nil {
		return 0, err
	}
	rate := float64(total) / time.Since(start).Seconds()
	_, err := e.pool.Exec(ctx, "DROP TABLE bench_plain")
	return rate, err
}

// latency is one open-loop latency measurement.
type latency struct {
	p50, p99, reqP50, reqP99 float64 // ms
	rate                     float64 // events/s
	perRequest, requests     int
	dur                      time.Duration
}

// eventLatency publishes at rate events/s in an open loop (requests of a
// few events, so that the request rate stays modest) and reads each
// event's latency from the handler's timestamp.
func (e *env) eventLatency(ctx context.Context, rate float64) (latency, error) {
	out := latency{dur: 5 * time.Second}
	if e.opts.Smoke {
		out.dur = time.Second
	}
	// Transactions of 100 events, as in the throughput measurement (the
	// SDK writes a transaction's events at its commit, so an event is
	// stamped at most the handler's loop before it).
	out.perRequest = 100
	if e.opts.Smoke {
		out.perRequest = 10
	}
	if _, err := e.pool.Exec(ctx, "TRUNCATE plugin_sink.received"); err != nil {
		return out, err
	}
	l := load{name: "events.latency", conns: 4, rate: rate / float64(out.perRequest), dur: out.dur, status: 200,
		targets: target(post(fmt.Sprintf("%s/api/v1/probe/publish?n=%d", e.url, out.perRequest), e.tokens["instructor"]))}
	out.rate = l.rate * float64(out.perRequest)
	if _, err := l.attack(out.dur / 5); err != nil { // warm up
		return out, err
	}
	if _, err := e.pool.Exec(ctx, "TRUNCATE plugin_sink.received"); err != nil {
		return out, err
	}
	res, err := l.attack(out.dur)
	if err != nil {
		return out, err
	}
	out.requests, out.reqP50, out.reqP99 = int(res.Requests), ms(res.P50), ms(res.P99)
	if err := e.awaitReceived(ctx, int(res.Requests)*out.perRequest, time.Minute); err != nil {
		return out, err
	}
	rows, err := e.pool.Query(ctx, "SELECT entered_ns - sent_ns FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'")
	if err != nil {
		return out, err
	}
	lat, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (float64, error) {
		var ns int64
		err := r.Scan(&ns)
		return float64(ns) / 1e6, err
	})
	if err != nil || len(lat) == 0 {
		return out, errors.Join(err, errors.New("no latencies"))
	}
	sort.Float64s(lat)
	out.p50, out.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	e.printf("  latency at %.0f events/s: p50 %.2f ms, p99 %.2f ms (the publishing request: p50 %.2f ms, p99 %.2f ms)", out.rate, out.p50, out.p99, out.reqP50, out.reqP99)
	return out, nil
}

// catchUp is one catch-up measurement.
type catchUp struct {
	rate float64
	took time.Duration
}

// catchUpRate makes an institution of its own (so that its history is
// only this), turns the sink off there, publishes total pings (which the
// sink's cursor passes over), turns it on again and clocks the catch-up
// from the request that turned it on to the last handler entered.
func (e *env) catchUpRate(ctx context.Context, total int) (catchUp, error) {
	var out catchUp
	if _, err := app.CreateTenant(ctx, e.pool, "catchup", "Catch-up University"); err != nil {
		return out, err
	}
	tok := map[string]string{}
	for _, role := range []string{"admin", "instructor"} {
		if _, err := app.CreateUser(ctx, e.pool, app.UserSpec{Email: role + "@catchup.test", Name: role, Password: password, Tenant: "catchup", Roles: []string{role}}); err != nil {
			return out, err
		}
		var err error
		if tok[role], err = e.login(role+"@catchup.test", "catchup"); err != nil {
			return out, err
		}
	}
	if err := e.call("PUT", "/api/v1/tenant/plugins/sink", tok["admin"], map[string]any{"enabled": false}, 200, nil); err != nil {
		return out, err
	}
	if _, err := e.pool.Exec(ctx, "TRUNCATE plugin_sink.received"); err != nil {
		return out, err
	}
	start := time.Now()
	if err := e.publishAs(tok["instructor"], total, 100, 4); err != nil {
		return out, err
	}
	// Wait for the relay, and for the sink's cursor to pass them over.
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var left int
		if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM plugin_probe.edulure_outbox) +
			(SELECT count(*) FROM kernel.events WHERE seq > (SELECT position FROM kernel.event_cursors WHERE subscriber = 'sink' AND kind = 'live'))`).Scan(&left); err != nil {
			return out, err
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%d events not relayed or passed over after 5 minutes", left)
		}
	}
	if n, err := e.received(ctx); err != nil || n != 0 {
		return out, errors.Join(err, fmt.Errorf("the sink, turned off, received %d events", n))
	}
	e.printf("  catch-up: %d events published and passed over in %s", total, time.Since(start).Round(time.Millisecond))
	cpu := e.cpuTimes()
	t0 := time.Now()
	if err := e.call("PUT", "/api/v1/tenant/plugins/sink", tok["admin"], map[string]any{"enabled": true}, 200, nil); err != nil {
		return out, err
	}
	if err := e.awaitReceived(ctx, total, 5*time.Minute); err != nil {
		return out, err
	}
	var lastNs int64
	if err := e.pool.QueryRow(ctx, "SELECT max(entered_ns) FROM plugin_sink.received").Scan(&lastNs); err != nil {
		return out, err
	}
	out.took = time.Unix(0, lastNs).Sub(t0)
	out.rate = float64(total) / out.took.Seconds()
	e.printf("  catch-up: %d events in %s, %.0f events/s; %s", total, out.took.Round(time.Millisecond), out.rate, e.cpuSince(cpu))
	return out, nil
}

// printStatements lists the statements that took the most time.
func (e *env) printStatements(ctx context.Context) {
	rows, err := e.pool.Query(ctx, `SELECT calls, round(total_exec_time)::bigint, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`)
	if err != nil {
		e.printf("  pg_stat_statements: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var calls, ms, n int64
		var q string
		if err := rows.Scan(&calls, &ms, &n, &q); err != nil {
			return
		}
		e.printf("  %7d calls %6d ms %7d rows  %s", calls, ms, n, q)
	}
}

// pluginSideRate measures what the plugins' own SQL costs without the
// kernel: the publisher's outbox inserts (transactions of per, one
// statement each, as the SDK writes them) and the
// subscriber's deduplicating transactions (its inbox row and its own row:
// one transaction per event, or, batched, one per 500 events with one
// statement for each table), run one after the other by as many workers.
// Delivery through the kernel cannot beat it: it bounds events.throughput.
func (e *env) pluginSideRate(ctx context.Context, total, per, workers int, batched bool) (float64, error) {
	_, err := e.pool.Exec(ctx, `
		DROP SCHEMA IF EXISTS bench_floor CASCADE;
		CREATE SCHEMA bench_floor;
		CREATE TABLE bench_floor.outbox (
			seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id uuid NOT NULL UNIQUE, type text NOT NULL,
			tenant_id uuid NOT NULL, actor text NOT NULL DEFAULT '', request_id text NOT NULL DEFAULT '',
			data jsonb NOT NULL, occurred_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE bench_floor.inbox (event_id uuid PRIMARY KEY, handled_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE bench_floor.received (event_id uuid PRIMARY KEY, type text NOT NULL, tenant uuid, attempt int NOT NULL,
			sent_ns bigint, entered_ns bigint NOT NULL)`)
	if err != nil {
		return 0, err
	}
	db := &sdk.DB{Pool: e.pool}
	ids := make([]uuid.UUID, total)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	run := func(fn func(w int) error) error {
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- fn(w) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	start := time.Now()
	err = run(func(w int) error {
		for b := w * per; b < total; b += per * workers {
			// As the SDK writes a transaction's events: one statement at
			// its commit.
			err := db.InTenant(ctx, e.tenantID, func(tx pgx.Tx) error {
				some := ids[b:min(b+per, total)]
				n := len(some)
				types, tenants, actors, reqIDs, data := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
				for k := range some {
					types[k], tenants[k], actors[k], reqIDs[k] = "probe.ping.sent.v1", e.tenantID, "user:x", "req"
					data[k] = fmt.Sprintf(`{"n":%d,"sent_ns":%d}`, b+k, time.Now().UnixNano())
				}
				_, err := tx.Exec(ctx, `INSERT INTO bench_floor.outbox (id, type, tenant_id, actor, request_id, data)
					SELECT e.id, e.type, e.tenant::uuid, e.actor, e.request_id, e.data::jsonb
					FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS e(id, type, tenant, actor, request_id, data, n)
					ORDER BY e.n`, some, types, tenants, actors, reqIDs, data)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	const batch = 500 // the kernel's delivery batch
	err = run(func(w int) error {
		if batched {
			for b := w * batch; b < total; b += batch * workers {
				some := ids[b:min(b+batch, total)]
				err := db.InTenant(ctx, e.tenantID, func(tx pgx.Tx) error {
					rows, err := tx.Query(ctx, "INSERT INTO bench_floor.inbox (event_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id", some)
					if err != nil {
						return err
					}
					fresh, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
					if err != nil {
						return err
					}
					_, err = tx.Exec(ctx, `INSERT INTO bench_floor.received (event_id, type, tenant, attempt, sent_ns, entered_ns)
						SELECT id, 'probe.ping.sent.v1', $2, 1, 0, $3 FROM unnest($1::uuid[]) AS id`, fresh, e.tenantID, time.Now().UnixNano())
					return err
				})
				if err != nil {
					return err
				}
			}
			return nil
		}
		for i := w; i < total; i += workers {
			err := db.InTenant(ctx, e.tenantID, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO bench_floor.inbox (event_id) VALUES ($1) ON CONFLICT DO NOTHING", ids[i]); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "INSERT INTO bench_floor.received (event_id, type, tenant, attempt, sent_ns, entered_ns) VALUES ($1, $2, $3, $4, $5, $6)",
					ids[i], "probe.ping.sent.v1", e.tenantID, 1, 0, time.Now().UnixNano())
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	rate := float64(total) / time.Since(start).Seconds()
	_, err = e.pool.Exec(ctx, "DROP SCHEMA bench_floor CASCADE")
	return rate, err
}

// tableWrites is one table's rows inserted, updated and deleted so far.
type tableWrites struct{ ins, upd, del int64 }

// rowsWritten reads pg_stat_user_tables for every table of the database.
func (e *env) rowsWritten(ctx context.Context) (map[string]tableWrites, error) {
	rows, err := e.pool.Query(ctx, `SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables`)
	if err != nil {
		return nil, err
	}
	out := map[string]tableWrites{}
	var name string
	var w tableWrites
	_, err = pgx.ForEachRow(rows, []any{&name, &w.ins, &w.upd, &w.del}, func() error { out[name] = w; return nil })
	return out, err
}

// rowsWrittenSince is the rows written since before per delivered event,
// those the plugins insert themselves (the publisher's outbox rows, the
// subscriber's inbox and own rows), the live cursors' updates, and the
// tables that wrote them. A
// backend reports its counts to the statistics system within ten seconds
// of going idle (PGSTAT_IDLE_INTERVAL): it waits that long.
func (e *env) rowsWrittenSince(ctx context.Context, before map[string]tableWrites, events int) (all, own float64, cursorMoves int64, byTable string, err error) {
	time.Sleep(11 * time.Second)
	after, err := e.rowsWritten(ctx)
	if err != nil {
		return 0, 0, 0, "", err
	}
	cursorMoves = after["kernel.event_cursors"].upd - before["kernel.event_cursors"].upd
	type kv struct {
		k string
		v int64
	}
	var xs []kv
	var sum, mine int64
	for k, a := range after {
		b := before[k]
		d := a.ins + a.upd + a.del - b.ins - b.upd - b.del
		if d <= 0 || strings.HasPrefix(k, "bench_floor.") {
			continue
		}
		xs = append(xs, kv{k, d})
		sum += d
		if k == "plugin_probe.edulure_outbox" || strings.HasPrefix(k, "plugin_sink.") {
			mine += a.ins - b.ins
		}
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].v > xs[j].v })
	var parts []string
	for _, x := range xs {
		if per := float64(x.v) / float64(events); per >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.3f", x.k, per))
		}
	}
	return float64(sum) / float64(events), float64(mine) / float64(events), cursorMoves, strings.Join(parts, ", "), nil
}
