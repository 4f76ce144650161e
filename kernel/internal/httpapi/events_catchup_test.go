package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Subscribers that ask for a catch-up of every retained ping: early is on
// everywhere from the start, late is off until an institution turns it on;
// the third takes its events in batches and in order.
var (
	earlySink = variant{name: "early", version: "1.0.0", subscribe: "probe.ping.sent.v1@retained,probe.item.created.v1@retained"}
	lateSink  = variant{name: "late", version: "1.0.0", subscribe: "probe.ping.sent.v1@retained,probe.item.created.v1@retained"}
	lateBatch = variant{name: "lateb", version: "1.0.0", subscribe: "probe.ping.sent.v1+*@retained,probe.item.created.v1+*@retained"}
)

// received lists what a test subscriber recorded for an institution, in a
// form two subscribers can be compared by.
func (b *testBundle) received(plugin, tenant string) []string {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(), fmt.Sprintf("SELECT event_id::text || ' ' || type FROM plugin_%s.received WHERE tenant = $1 ORDER BY event_id", plugin), tenant)
	require.NoError(b.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(b.t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(b.t, rows.Err())
	return out
}

// A plugin an institution enables late catches up on the institution's
// retained events through the same delivery, and ends with the same state
// as one enabled from the start; another institution, which has it off,
// gets nothing; a change of settings of a plugin already on starts no
// second catch-up.
func TestEventsCatchUpOnEnable(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: earlySink},
		pluginBlock{variant: lateSink, disabled: true}, pluginBlock{variant: lateBatch, disabled: true})
	a, z := b.institution("alpha"), b.institution("beta")
	for range 5 {
		require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=40", a.instructor, nil).Status)
		require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=10", z.instructor, nil).Status)
	}
	for _, name := range []string{"desk", "chair"} {
		require.Equal(t, 201, b.do("POST", "/api/v1/probe/items", a.instructor, map[string]any{"name": name}).Status)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, b.received("early", a.id), 202)
	}, 20*time.Second, 20*time.Millisecond)
	require.Empty(t, b.received("late", a.id))
	require.Empty(t, b.received("lateb", a.id))
	// The late subscribers' live cursors have passed over alpha's history
	// (TestEventsCatchUpWhileCursorLags has one lag behind).
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Zero(c, b.count(`SELECT count(*) FROM kernel.event_cursors WHERE subscriber IN ('late', 'lateb') AND kind = 'live'
			AND position < (SELECT max(seq) FROM kernel.events WHERE tenant_id = $1)`, a.id))
	}, 20*time.Second, 20*time.Millisecond)

	for _, name := range []string{"late", "lateb"} {
		r := b.do("PUT", "/api/v1/tenant/plugins/"+name, a.admin, map[string]any{"enabled": true})
		require.Equal(t, 200, r.Status, "%s", r.Raw)
	}
	// Live events after the enablement go the same way.
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=25", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		early := b.received("early", a.id)
		assert.Len(c, early, 227)
		assert.Equal(c, early, b.received("late", a.id))
		assert.Equal(c, early, b.received("lateb", a.id))
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.event_cursors WHERE kind = 'catchup'"), "the catch-ups are done")
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.deliveries WHERE status <> 'pending' OR attempts > 0"), "nothing failed")
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.deliveries"), "what waited behind the ordered catch-up was delivered")
	}, 30*time.Second, 50*time.Millisecond)
	require.Empty(t, b.received("late", z.id), "beta has it off")
	require.Len(t, b.received("early", z.id), 50)
	// The ordered batch subscriber got alpha's events in log order.
	require.Zero(t, b.count(`SELECT count(*) FROM (SELECT sent_ns, lag(sent_ns) OVER (ORDER BY entered_ns, sent_ns) AS prev
		FROM plugin_lateb.received WHERE tenant = $1 AND sent_ns IS NOT NULL) x WHERE prev > sent_ns`, a.id))

	// A change of settings of a plugin already on: no second catch-up.
	r := b.do("PUT", "/api/v1/tenant/plugins/late", a.admin, map[string]any{"enabled": true, "config": map[string]any{"greeting": "hi"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=1", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, b.received("late", a.id), 228)
	}, 20*time.Second, 20*time.Millisecond)
	require.Zero(t, b.count("SELECT count(*) FROM kernel.event_cursors WHERE kind = 'catchup'"))
	require.Zero(t, b.count("SELECT count(*) FROM plugin_late.received WHERE attempt > 1"))
}

// A plugin installed after events happened catches up on them (for every
// institution that has it on) when its subscriptions ask for it; one
// that does not starts at the head of the log.
func TestEventsCatchUpOnInstall(t *testing.T) {
	t.Parallel()
	b, file := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: earlySink})
	a, z := b.institution("alpha"), b.institution("beta")
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=30", a.instructor, nil).Status)
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=20", z.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, b.received("early", a.id), 30)
	}, 20*time.Second, 20*time.Millisecond)

	plain := variant{name: "plain", version: "1.0.0", subscribe: "probe.ping.sent.v1"}
	writePluginsFile(t, file, pluginBlock{variant: probe}, pluginBlock{variant: earlySink}, pluginBlock{variant: lateSink}, pluginBlock{variant: plain})
	op := b.operator()
	r := b.do("POST", "/api/v1/plugins/reload", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, b.received("early", a.id), b.received("late", a.id))
	}, 30*time.Second, 50*time.Millisecond)
	require.Len(t, b.received("late", z.id), 20)
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=5", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, b.received("late", a.id), 35)
		assert.Len(c, b.received("plain", a.id), 5, "no catch-up asked: only what follows its installation")
	}, 20*time.Second, 20*time.Millisecond)
}

// An institution turns a plugin on while the plugin's live cursor lags
// behind the log: the events the cursor reads after the enablement
// committed but that precede the enablement's place in the log belong to
// the catch-up, so the ordered subscriber still gets the institution's
// history in log order.
func TestEventsCatchUpWhileCursorLags(t *testing.T) {
	t.Parallel()
	hold := filepath.Join(t.TempDir(), "hold")
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe},
		pluginBlock{variant: lateBatch, disabled: true, config: fmt.Sprintf(`{ hold_events_file = %q }`, hold)})
	a, z := b.institution("alpha"), b.institution("beta")
	r := b.do("PUT", "/api/v1/tenant/plugins/lateb", z.admin, map[string]any{"enabled": true})
	require.Equal(t, 200, r.Status, "%s", r.Raw)

	// Alpha's older history, passed over while alpha has the plugin off.
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=50", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Zero(c, b.count(`SELECT count(*) FROM kernel.event_cursors WHERE subscriber = 'lateb' AND kind = 'live'
			AND position < (SELECT max(seq) FROM kernel.events WHERE tenant_id = $1)`, a.id))
	}, 20*time.Second, 20*time.Millisecond)

	// Beta's ping is held in the plugin: the live cursor stops there.
	require.NoError(t, os.WriteFile(hold, nil, 0o600))
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=1", z.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := os.Stat(hold + ".held")
		assert.NoError(c, err)
	}, 20*time.Second, 10*time.Millisecond)
	// More of alpha's history than one batch, then alpha turns the plugin on.
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=600", a.instructor, nil).Status)
	r = b.do("PUT", "/api/v1/tenant/plugins/lateb", a.admin, map[string]any{"enabled": true})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count(`SELECT count(*) FROM kernel.events WHERE type = 'tenancy.plugin.enabled.v1' AND tenant_id = $1`, a.id))
	}, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, os.Remove(hold))

	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=5", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, b.received("lateb", a.id), 655)
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.event_cursors WHERE kind = 'catchup'"), "the catch-up is done")
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.deliveries"), "nothing failed or waits")
	}, 30*time.Second, 50*time.Millisecond)
	require.Len(t, b.received("lateb", z.id), 1)
	// Alpha's events reached the plugin in log order.
	require.Zero(t, b.count(`SELECT count(*) FROM (SELECT sent_ns, lag(sent_ns) OVER (ORDER BY entered_ns, sent_ns) AS prev
		FROM plugin_lateb.received WHERE tenant = $1 AND sent_ns IS NOT NULL) x WHERE prev > sent_ns`, a.id))
}
