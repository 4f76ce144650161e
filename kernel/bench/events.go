package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
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
			time.Sleep(5 * time.Millisecond)
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

	// Baseline: the same number of single-row inserts, 4 writers, each its
	// own transaction.
	if _, err := e.pool.Exec(ctx, "DROP TABLE IF EXISTS bench_plain; CREATE TABLE bench_plain (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, data jsonb NOT NULL)"); err != nil {
		return nil, err
	}
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
	return []Row{
		row("events.latency_p50", p50, "ms", "", 0, atMost(20)),
		row("events.latency_p99", p99, "ms", "", 0, atMost(100)),
		row("events.throughput", rate, "events/s", fmt.Sprintf("plain single-row inserts, %d writers", writers), base, atLeast(5000), ratioAtLeast(0.25)),
	}, nil
}
