package httpapi_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An ordered subscription: a failing event holds back its institution's
// later events (as delivery rows, which go once it succeeds), while the
// other institution's go on; each institution's events are handled in log
// order. A healthy institution's events leave no row behind.
func TestEventsOrderedHoldBack(t *testing.T) {
	t.Parallel()
	ordered := variant{name: "ordered", version: "1.0.0", subscribe: "probe.ping.sent.v1+"}
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe},
		pluginBlock{variant: ordered, config: `{ fail_ping_n = 3, fail_ping_attempts = 2 }`})
	a, z := b.institution("alpha"), b.institution("beta")
	// Alpha's ping 3 of each transaction fails twice; beta's are fine.
	for range 4 {
		require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=10", a.instructor, nil).Status)
		require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=2", z.instructor, nil).Status)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 40, b.count("SELECT count(*) FROM plugin_ordered.received WHERE tenant = $1", a.id))
		assert.Equal(c, 8, b.count("SELECT count(*) FROM plugin_ordered.received WHERE tenant = $1", z.id))
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.deliveries WHERE status = 'pending'"))
	}, 30*time.Second, 20*time.Millisecond)
	for _, tenant := range []string{a.id, z.id} {
		require.Zero(t, b.count(`SELECT count(*) FROM (SELECT sent_ns, lag(sent_ns) OVER (ORDER BY entered_ns) AS prev
			FROM plugin_ordered.received WHERE tenant = $1) x WHERE prev > sent_ns`, tenant), "handled in log order")
	}
	require.Equal(t, 4, b.count("SELECT count(*) FROM plugin_ordered.received WHERE tenant = $1 AND attempt = 3", a.id), "ping 3 of each, on its third attempt")
	// Rows stay only for the failures (delivered on a retry); what waited
	// behind them left none, and beta's events none.
	require.Equal(t, 4, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'ordered' AND status = 'delivered' AND attempts = 3 AND tenant_id = $1", a.id))
	require.Equal(t, 4, b.count("SELECT count(*) FROM kernel.deliveries"))
}
