package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Pruning drops the log's partitions past the retention once every cursor
// has passed them, and not before; it prunes the inboxes' old entries and
// the rows of recovered failures, and keeps dead letters.
func TestEventsRetention(t *testing.T) {
	t.Parallel()
	failing := variant{name: "failing", version: "1.0.0", subscribe: "probe.ping.sent.v1"}
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_EVENTS_MAX_ATTEMPTS", "1"}, fastEvents...),
		pluginBlock{variant: probe}, pluginBlock{variant: sink}, pluginBlock{variant: failing, config: `{ fail_events = true }`})
	a := b.institution("alpha")
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=20", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 20, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
		assert.Equal(c, 20, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'failing' AND status = 'dead'"))
		// The kernel's own events of the institution's creation came
		// through too (the harness writes them without a wake-up).
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.outbox"))
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.event_cursors WHERE position < (SELECT max(seq) FROM kernel.events)"))
	}, 20*time.Second, 20*time.Millisecond)
	ctx := context.Background()
	// A failure that recovered long ago, and an inbox entry of an event
	// that occurred and was handled long ago (UUIDv7: its time leads).
	_, err := b.pool.Exec(ctx, `UPDATE kernel.deliveries SET status = 'delivered', updated_at = now() - interval '40 days'
		WHERE id = (SELECT min(id) FROM kernel.deliveries)`)
	require.NoError(t, err)
	old := uuid.Must(uuid.NewV7())
	ms := uint64(time.Now().Add(-40 * 24 * time.Hour).UnixMilli())
	for i := range 6 {
		old[i] = byte(ms >> (40 - 8*i))
	}
	_, err = b.pool.Exec(ctx, `INSERT INTO plugin_sink.edulure_inbox (event_id, handled_at) VALUES ($1, now() - interval '40 days')`, old)
	require.NoError(t, err)
	inbox := b.count("SELECT count(*) FROM plugin_sink.edulure_inbox")
	pruned, err := b.kernel.Events.Prune(ctx, time.Now())
	require.NoError(t, err)
	require.EqualValues(t, 1, pruned.Rows, "the recovered failure")
	require.EqualValues(t, 1, pruned.Inbox, "the old inbox entry")
	require.Equal(t, inbox-1, b.count("SELECT count(*) FROM plugin_sink.edulure_inbox"))
	today := "events_p" + time.Now().UTC().Format("20060102")
	require.NotContains(t, pruned.Partitions, today)

	// A month and a day later, today's partition is past the retention,
	// but a subscriber that has not read it holds it back. (Its inbox,
	// pruned too, starts afresh.)
	later := time.Now().Add(31 * 24 * time.Hour)
	_, err = b.pool.Exec(ctx, `UPDATE kernel.event_cursors SET position = 0 WHERE subscriber = 'sink' AND kind = 'live';
		TRUNCATE plugin_sink.received, plugin_sink.edulure_inbox`)
	require.NoError(t, err)
	pruned, err = b.kernel.Events.Prune(ctx, later)
	require.NoError(t, err)
	require.NotContains(t, pruned.Partitions, today)
	require.Contains(t, pruned.Held, "waits for a cursor at seq 0")
	require.Equal(t, 1, b.count("SELECT count(*) FROM pg_class WHERE relname = $1", today))
	// Caught up again, the partition goes.
	b.kernel.Events.Replayed() // the dispatchers re-read their cursors
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 20, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.event_cursors WHERE position < (SELECT max(seq) FROM kernel.events)"))
	}, 20*time.Second, 20*time.Millisecond)
	pruned, err = b.kernel.Events.Prune(ctx, later)
	require.NoError(t, err)
	require.Contains(t, pruned.Partitions, today)
	require.Empty(t, pruned.Held)
	require.Zero(t, b.count("SELECT count(*) FROM pg_class WHERE relname = $1", today))
	require.Zero(t, b.count("SELECT count(*) FROM kernel.events WHERE type = 'probe.ping.sent.v1'"))
	require.Equal(t, 19, b.count("SELECT count(*) FROM kernel.deliveries WHERE status = 'dead'"), "dead letters stay")

	// The dead letters still carry their event, and replay.
	r := b.do("GET", "/api/v1/events/deliveries?status=dead&limit=1", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	id := num(r.get("items", "0", "id"))
	r = b.do("GET", fmt.Sprintf("/api/v1/events/deliveries/%d", id), a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.NotNil(t, r.get("event", "data", "n"))
	// Discarded, they are gone; a row that is not a dead letter stays.
	r = b.do("POST", "/api/v1/events/deliveries/discard", a.admin, map[string]any{"status": "delivered"})
	require.Equal(t, 422, r.Status, "%s", r.Raw)
	var other int
	require.NoError(t, b.pool.QueryRow(ctx, `UPDATE kernel.deliveries SET status = 'delivered' WHERE id = (SELECT min(id) FROM kernel.deliveries WHERE id <> $1) RETURNING id`, id).Scan(&other))
	r = b.do("POST", "/api/v1/events/deliveries/discard", a.admin, map[string]any{"ids": []int{id, other}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EqualValues(t, 1, r.get("discarded"))
	r = b.do("POST", "/api/v1/events/deliveries/discard", a.admin, map[string]any{"subscriber": "failing"})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EqualValues(t, 17, r.get("discarded"))
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.deliveries"))
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.deliveries WHERE id = $1 AND status = 'delivered'", other))
	require.Equal(t, 2, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'tenancy.events.discarded'", a.id))

	// New events go to the partitions the maintenance keeps ahead.
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=3", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 23, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
	}, 20*time.Second, 20*time.Millisecond)
}
