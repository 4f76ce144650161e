package httpapi_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two replicas share the work of events: each holds some of the leases
// (the relay, the maintenance, one per subscriber) and delivers to its
// subscribers through its own plugin processes; every event reaches every
// subscriber once; when one replica goes, the other takes its leases over
// and delivery goes on.
func TestEventsLeasesShareDeliveryAmongReplicas(t *testing.T) {
	t.Parallel()
	sink2 := variant{name: "sink2", version: "1.0.0", subscribe: "probe.ping.sent.v1"}
	sink3 := variant{name: "sink3", version: "1.0.0", subscribe: "probe.ping.sent.v1*"}
	b, file := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink}, pluginBlock{variant: sink2}, pluginBlock{variant: sink3})
	replica := b.replica(file)
	a := b.institution("alpha")
	subscribers := []string{"probe", "sink", "sink2", "sink3"} // probe subscribes to tenancy.member.joined.v1
	// Six leases, three each.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		one, two := b.kernel.Events.Delivering(), replica.kernel.Events.Delivering()
		assert.NotEmpty(c, one)
		assert.NotEmpty(c, two)
		both := append(slices.Clone(one), two...)
		slices.Sort(both)
		assert.Equal(c, subscribers, both, "each subscriber on one replica")
		assert.NotEqual(c, b.kernel.Events.Relaying(), replica.kernel.Events.Relaying(), "one relay")
	}, 20*time.Second, 50*time.Millisecond)

	for i := range 10 {
		target := b
		if i%2 == 1 {
			target = replica
		}
		require.Equal(t, 200, target.do("POST", "/api/v1/probe/publish?n=20", a.instructor, nil).Status)
	}
	for _, s := range []string{"sink", "sink2", "sink3"} {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, 200, b.count("SELECT count(*) FROM plugin_"+s+".received WHERE type = 'probe.ping.sent.v1'"))
		}, 20*time.Second, 20*time.Millisecond, s)
	}
	// Once each: a handler that ran twice for an event would have failed
	// on the received table's key and left a delivery row.
	require.Zero(t, b.count("SELECT count(*) FROM kernel.deliveries"))

	// The second replica goes away: the first takes everything over.
	replica.kernel.Close()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		mine := b.kernel.Events.Delivering()
		slices.Sort(mine)
		assert.Equal(c, subscribers, mine)
		assert.True(c, b.kernel.Events.Relaying())
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=20", a.instructor, nil).Status)
	for _, s := range []string{"sink", "sink2", "sink3"} {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, 220, b.count("SELECT count(*) FROM plugin_"+s+".received WHERE type = 'probe.ping.sent.v1'"))
		}, 20*time.Second, 20*time.Millisecond, s)
	}
	require.Equal(t, 1, b.count("SELECT count(DISTINCT owner) FROM kernel.event_cursors WHERE kind = 'live'"), "every cursor claimed by the replica left")

	// Fencing: a dispatcher whose subscriber another replica has claimed
	// (as when this one lost its lease with its connection) writes
	// nothing more: its cursor stays, and the events stay owed.
	_, err := b.pool.Exec(context.Background(), "UPDATE kernel.event_cursors SET owner = 'another-replica' WHERE subscriber = 'sink2' AND kind = 'live'")
	require.NoError(t, err)
	var before int64
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT position FROM kernel.event_cursors WHERE subscriber = 'sink2' AND kind = 'live'").Scan(&before))
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=20", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 240, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
	}, 20*time.Second, 20*time.Millisecond)
	var after int64
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT position FROM kernel.event_cursors WHERE subscriber = 'sink2' AND kind = 'live'").Scan(&after))
	require.Equal(t, before, after, "the fenced dispatcher did not move the cursor")
	require.Zero(t, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'sink2'"))
}
