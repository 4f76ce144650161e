package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEventDeliveryFigures measures publish-to-handler latency and sustained
// delivery throughput to one subscriber, next to a baseline of the same
// number of plain single-row inserts into a table in the same run. It is a
// measurement, not a pass/fail check: run it with `make bench` (or
// EDULURE_MEASURE=1 go test -run TestEventDeliveryFigures -v).
func TestEventDeliveryFigures(t *testing.T) {
	if os.Getenv("EDULURE_MEASURE") == "" {
		t.Skip("a measurement: set EDULURE_MEASURE=1 (make bench does)")
	}
	b, _ := withPluginsEnv(t, []string{"EDULURE_LOG_LEVEL", "warn"}, pluginBlock{variant: probe}, pluginBlock{variant: sink})
	a := b.institution("alpha")
	ctx := context.Background()
	received := func() int {
		return b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'")
	}

	// Latency: one event per transaction, one at a time, 500 times.
	const latencyN = 500
	for range latencyN {
		require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=1", a.instructor, nil).Status)
		time.Sleep(2 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return received() == latencyN }, 30*time.Second, 10*time.Millisecond)
	rows, err := b.pool.Query(ctx, "SELECT entered_ns - sent_ns FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'")
	require.NoError(t, err)
	var lat []float64
	for rows.Next() {
		var ns int64
		require.NoError(t, rows.Scan(&ns))
		lat = append(lat, float64(ns)/1e6)
	}
	require.NoError(t, rows.Err())
	sort.Float64s(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]

	// Throughput: 20,000 events published by 4 writers in transactions of
	// 100, delivered to one subscriber; clock from the first publish to the
	// last handler entered.
	const total, per, writers = 20000, 100, 4
	_, err = b.pool.Exec(ctx, "TRUNCATE plugin_sink.received")
	require.NoError(t, err)
	start := time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total / per / writers {
				r, err := fetch(b.url, "POST", fmt.Sprintf("/api/v1/probe/publish?n=%d", per), a.instructor)
				if err != nil || r.Status != 200 {
					t.Errorf("publish: %v %d %s", err, r.Status, r.Raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	published := time.Since(start)
	require.Eventually(t, func() bool { return received() == total }, 120*time.Second, 5*time.Millisecond)
	var lastNs int64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT max(entered_ns) FROM plugin_sink.received").Scan(&lastNs))
	elapsed := time.Unix(0, lastNs).Sub(start)
	rate := float64(total) / elapsed.Seconds()

	// Baseline: the same number of single-row inserts, 4 writers, each its own
	// transaction (autocommit).
	_, err = b.pool.Exec(ctx, "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, data jsonb NOT NULL)")
	require.NoError(t, err)
	bstart := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range total / writers {
				if _, err := b.pool.Exec(ctx, "INSERT INTO bench_plain (tenant_id, data) VALUES ($1, $2)", a.id, fmt.Sprintf(`{"n":%d}`, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	base := float64(total) / time.Since(bstart).Seconds()

	t.Logf("events.latency_p50 %.2f ms, events.latency_p99 %.2f ms (commit → subscriber's handler entered, %d events one at a time)", p50, p99, latencyN)
	t.Logf("events.throughput %.0f events/s delivered to one subscriber (%d events; publishing took %s)", rate, total, published.Round(time.Millisecond))
	t.Logf("baseline: %.0f single-row inserts/s (%d rows, %d writers); ratio %.2f", base, total, writers, rate/base)
}
