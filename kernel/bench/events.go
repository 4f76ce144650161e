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

	"github.com/edulure/edulure/sdk"
)

// eventRows measures publish-to-handler latency and sustained delivery to
// one subscriber (the sink plugin, subscribed to the probe plugin's pings),
// next to the same number of plain single-row inserts in the same run.
func (e *env) eventRows(ctx context.Context) ([]Row, error) {
	received := func() (n int, err error) {
		err = e.pool.QueryRow(ctx, "SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'").Scan(&n)
		return n, err
	}
	await := func(want int, limit time.Duration) error {
		for deadline := time.Now().Add(limit); ; {
			n, err := received()
			if err != nil {
				return err
			}
			if n >= want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d events delivered after %s", n, want, limit)
			}
			// Seldom: counting is work for the database being measured, and
			// the figures come from the handlers' own timestamps.
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := e.pool.Exec(ctx, "TRUNCATE plugin_sink.received"); err != nil {
		return nil, err
	}
	tok := e.tokens["instructor"]
	publish := func(n int) error {
		return e.call("POST", fmt.Sprintf("/api/v1/probe/publish?n=%d", n), tok, nil, 200, nil)
	}

	// Latency: one event per transaction, one at a time. Each ping carries
	// the time just before its commit; the handler records when it entered.
	latencyN := 500
	if e.opts.Smoke {
		latencyN = 50
	}
	for range latencyN {
		if err := publish(1); err != nil {
			return nil, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := await(latencyN, 30*time.Second); err != nil {
		return nil, err
	}
	rows, err := e.pool.Query(ctx, "SELECT entered_ns - sent_ns FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'")
	if err != nil {
		return nil, err
	}
	var lat []float64
	for rows.Next() {
		var ns int64
		if err := rows.Scan(&ns); err != nil {
			return nil, err
		}
		lat = append(lat, float64(ns)/1e6)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Float64s(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]

	// Throughput: events published by 4 writers in transactions of 100 and
	// delivered to one subscriber, whose handler writes a row in its own
	// deduplicating transaction; clocked from the first publish to the last
	// handler entered.
	total, per, writers := 20000, 100, 4
	if e.opts.Smoke {
		total = 2000
	}
	if _, err := e.pool.Exec(ctx, "TRUNCATE plugin_sink.received"); err != nil {
		return nil, err
	}
	if e.opts.PGStat {
		if _, err := e.pool.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
			return nil, err
		}
	}
	written, err := e.rowsWritten(ctx)
	if err != nil {
		return nil, err
	}
	cpu := e.cpuTimes()
	start := time.Now()
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total / per / writers {
				if err := publish(per); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	published := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := await(total, 5*time.Minute); err != nil {
		return nil, err
	}
	var lastNs int64
	if err := e.pool.QueryRow(ctx, "SELECT max(entered_ns) FROM plugin_sink.received").Scan(&lastNs); err != nil {
		return nil, err
	}
	rate := float64(total) / time.Unix(0, lastNs).Sub(start).Seconds()
	e.printf("  %d events published in %s, delivered in %s", total, published.Round(time.Millisecond), time.Unix(0, lastNs).Sub(start).Round(time.Millisecond))
	e.printf("  delivery %s", e.cpuSince(cpu))
	perEvent, byTable, err := e.rowsWrittenSince(ctx, written, total)
	if err != nil {
		return nil, err
	}
	e.printf("  Postgres rows written per delivered event: %.2f (%s)", perEvent, byTable)
	if e.opts.PGStat {
		e.printStatements(ctx)
	}
	var relays, records int
	if err := e.pool.QueryRow(ctx, `SELECT count(DISTINCT e.relayed_at), count(DISTINCT d.delivered_at) FROM kernel.events e JOIN kernel.deliveries d ON d.event_seq = e.seq
		WHERE e.type = 'probe.ping.sent.v1' AND d.subscriber = 'sink' AND e.relayed_at >= $1`, start).Scan(&relays, &records); err == nil {
		e.printf("  %d relay transactions, %d delivery batches recorded: %.0f and %.0f events each", relays, records, float64(total)/float64(max(relays, 1)), float64(total)/float64(max(records, 1)))
	}

	// Baseline: the same number of single-row inserts, 4 writers, each its
	// own transaction.
	if _, err := e.pool.Exec(ctx, "DROP TABLE IF EXISTS bench_plain; CREATE TABLE bench_plain (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, data jsonb NOT NULL)"); err != nil {
		return nil, err
	}
	cpu = e.cpuTimes()
	bstart := time.Now()
	errs = make(chan error, writers)
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
		return nil, err
	}
	base := float64(total) / time.Since(bstart).Seconds()
	e.printf("  baseline %s", e.cpuSince(cpu))
	floor, err := e.pluginSideRate(ctx, total, per, writers)
	if err != nil {
		return nil, err
	}
	tp := row("events.throughput", rate, "events/s", fmt.Sprintf("plain single-row inserts, %d writers", writers), base, atLeast(5000), ratioAtLeast(0.25))
	tp.Note = fmt.Sprintf("the plugins' own SQL alone (the publisher's outbox inserts, the subscriber's inbox and row in one transaction per event), without the kernel: %.0f events/s, ratio %.2f; delivery through the kernel reaches %.0f%% of it",
		floor, floor/base, 100*rate/floor)
	e.printf("  %s", tp.Note)
	return []Row{
		row("events.latency_p50", p50, "ms", "", 0, atMost(20)),
		row("events.latency_p99", p99, "ms", "", 0, atMost(100)),
		tp,
	}, nil
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
// kernel: the publisher's outbox inserts (transactions of per) and the
// subscriber's deduplicating transactions (its inbox row and its own row,
// one transaction per event), run one after the other by as many workers.
// Delivery through the kernel cannot beat it: it bounds events.throughput.
func (e *env) pluginSideRate(ctx context.Context, total, per, workers int) (float64, error) {
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
			err := db.InTenant(ctx, e.tenantID, func(tx pgx.Tx) error {
				for i := b; i < min(b+per, total); i++ {
					if _, err := tx.Exec(ctx, "INSERT INTO bench_floor.outbox (id, type, tenant_id, actor, request_id, data) VALUES ($1, $2, $3, $4, $5, $6)",
						ids[i], "probe.ping.sent.v1", e.tenantID, "user:x", "req", fmt.Sprintf(`{"n":%d,"sent_ns":%d}`, i, time.Now().UnixNano())); err != nil {
						return err
					}
				}
				return nil
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
	err = run(func(w int) error {
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

// rowsWritten is the rows inserted, updated and deleted so far in every
// table of the database, by table (pg_stat_user_tables).
func (e *env) rowsWritten(ctx context.Context) (map[string]int64, error) {
	rows, err := e.pool.Query(ctx, `SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables`)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var name string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil })
	return out, err
}

// rowsWrittenSince is the rows written since before per delivered event,
// with the tables that wrote them. Backends report their counts to the
// statistics system within a second of going idle: it waits for that.
func (e *env) rowsWrittenSince(ctx context.Context, before map[string]int64, events int) (float64, string, error) {
	time.Sleep(2 * time.Second)
	after, err := e.rowsWritten(ctx)
	if err != nil {
		return 0, "", err
	}
	type kv struct {
		k string
		v int64
	}
	var xs []kv
	var sum int64
	for k, v := range after {
		if d := v - before[k]; d > 0 && k != "public.bench_plain" {
			xs = append(xs, kv{k, d})
			sum += d
		}
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].v > xs[j].v })
	var parts []string
	for _, x := range xs {
		if per := float64(x.v) / float64(events); per >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.3f", x.k, per))
		}
	}
	return float64(sum) / float64(events), strings.Join(parts, ", "), nil
}
