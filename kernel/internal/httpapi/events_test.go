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

// sink is a test plugin that subscribes to probe's events and the kernel's
// member and password-reset events.
var sink = variant{name: "sink", version: "1.0.0", subscribe: "probe.ping.sent.v1,probe.item.created.v1,tenancy.member.joined.v1,identity.password_reset.requested.v1,tenancy.invitation.created.v1"}

// fastEvents makes retries quick enough for tests.
var fastEvents = []string{"EDULURE_EVENTS_BACKOFF", "20ms", "EDULURE_EVENTS_BACKOFF_MAX", "100ms", "EDULURE_EVENTS_POLL", "200ms", "EDULURE_JOBS_BACKOFF", "50ms", "EDULURE_JOBS_POLL", "100ms"}

func withPluginsEnv(t *testing.T, env []string, blocks ...pluginBlock) (*testBundle, string) {
	t.Helper()
	file := writePluginsFile(t, "", blocks...)
	b := setup(t, append([]string{"EDULURE_PLUGINS_FILE", file}, env...)...)
	b.allow5xx = true
	return b, file
}

// count runs a counting query.
func (b *testBundle) count(query string, args ...any) int {
	b.t.Helper()
	var n int
	require.NoError(b.t, b.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func TestEventsDeliveredToSubscribers(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink})
	a := b.institution("alpha")
	sinkTable := "plugin_sink.received"

	// Published in the same transaction as the change: committed → delivered.
	r := b.do("POST", "/api/v1/probe/publish?n=25", a.instructor, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/probe/items", a.instructor, map[string]any{"name": "chair"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	// Rolled back → never delivered.
	requireProblem(t, b.do("POST", "/api/v1/probe/publish?n=5&rollback=1", a.instructor, nil), 409, "conflict")
	// Data off its schema is refused at publish, and nothing is written.
	r = b.do("POST", "/api/v1/probe/publish?n=3&bad=1", a.instructor, nil)
	requireProblem(t, r, 422, "invalid-request")
	require.Contains(t, string(r.Raw), "does not match the schema")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 25, b.count("SELECT count(*) FROM "+sinkTable+" WHERE type = 'probe.ping.sent.v1' AND tenant = $1", a.id))
		assert.Equal(c, 1, b.count("SELECT count(*) FROM "+sinkTable+" WHERE type = 'probe.item.created.v1'"))
	}, eventually, 20*time.Millisecond)
	// The kernel's own events reach subscribers too (the members created by b.institution).
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 3, b.count("SELECT count(*) FROM "+sinkTable+" WHERE type = 'tenancy.member.joined.v1' AND tenant = $1", a.id))
	}, eventually, 20*time.Millisecond)
	require.Equal(t, 25, b.count("SELECT count(*) FROM kernel.events WHERE type = 'probe.ping.sent.v1' AND source = 'probe'"), "exactly the committed pings were relayed")
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_probe.edulure_outbox"), "the outbox is drained")

	// Password-reset requests are delivered (the messaging plugin will email them).
	r = b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "learner@alpha.test"})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count("SELECT count(*) FROM "+sinkTable+" WHERE type = 'identity.password_reset.requested.v1'"))
	}, eventually, 20*time.Millisecond)

	// The event log and deliveries, for the institution's admin.
	r = b.do("GET", "/api/v1/events?type=probe.ping.sent.v1&limit=5", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 5)
	require.NotEmpty(t, r.str("next_cursor"))
	require.Equal(t, "probe", r.str("items", "0", "source"))
	require.Equal(t, a.id, r.str("items", "0", "tenant_id"))
	require.EqualValues(t, 1, r.get("items", "0", "deliveries", "delivered"), "%s", r.Raw)
	require.NotNil(t, r.get("items", "0", "data", "n"), "admins hold tenancy.event.data.read")
	// Delivered on the first attempt: no delivery row, only the cursor moved.
	r = b.do("GET", "/api/v1/events/deliveries?subscriber=sink&limit=100", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Empty(t, r.items())
	require.Zero(t, b.count("SELECT count(*) FROM kernel.deliveries"))
	requireProblem(t, b.do("GET", "/api/v1/events/deliveries?status=lost", a.admin, nil), 422, "invalid-request")
	requireProblem(t, b.do("GET", "/api/v1/events", a.learner, nil), 403, "permission-denied")

	// The catalogue: schemas, publisher and subscribers.
	r = b.do("GET", "/api/v1/events/types", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	found := false
	for _, it := range r.items() {
		if it["type"] == "probe.ping.sent.v1" {
			found = true
			require.Equal(t, "probe", it["publisher"])
			require.Equal(t, []any{"sink"}, it["subscribers"])
			require.NotNil(t, it["schema"])
		}
	}
	require.True(t, found, "%s", r.Raw)
}

// A plugin an institution disabled receives none of its events, on any
// replica; the other institution's deliveries go on.
func TestEventsNotDeliveredWhenDisabled(t *testing.T) {
	t.Parallel()
	b, file := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink})
	replica := b.replica(file)
	a, c := b.institution("alpha"), b.institution("beta")
	r := b.do("PUT", "/api/v1/tenant/plugins/sink", c.admin, map[string]any{"enabled": false})
	require.Equal(t, 200, r.Status, "%s", r.Raw)

	for i := range 10 {
		target := b
		if i%2 == 1 {
			target = replica
		}
		require.Equal(t, 200, target.do("POST", "/api/v1/probe/publish?n=10", a.instructor, nil).Status)
		require.Equal(t, 200, target.do("POST", "/api/v1/probe/publish?n=10", c.instructor, nil).Status)
	}
	// Beta's events are relayed and logged (not necessarily before alpha's
	// are delivered: the relay may take beta's last batch in a later pass).
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, 100, b.count("SELECT count(*) FROM plugin_sink.received WHERE tenant = $1 AND type = 'probe.ping.sent.v1'", a.id))
		assert.Equal(ct, 100, b.count("SELECT count(*) FROM kernel.events WHERE tenant_id = $1 AND type = 'probe.ping.sent.v1'", c.id))
	}, eventually, 20*time.Millisecond)
	// A delivery would have been made with the event, in the relay's
	// transaction: none exists for sink.
	require.Equal(t, 0, b.count("SELECT count(*) FROM kernel.deliveries d JOIN kernel.events e ON e.seq = d.event_seq WHERE d.tenant_id = $1 AND d.subscriber = 'sink' AND e.type = 'probe.ping.sent.v1'", c.id))
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_sink.received WHERE tenant = $1 AND type = 'probe.ping.sent.v1'", c.id))
}

// A subscriber that fails every delivery ends in dead letters; the healthy
// subscriber gets everything meanwhile. Dead letters can be inspected and
// replayed.
func TestEventsDeadLetterAndReplay(t *testing.T) {
	t.Parallel()
	failing := variant{name: "failing", version: "1.0.0", subscribe: "probe.ping.sent.v1"}
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_EVENTS_MAX_ATTEMPTS", "3"}, fastEvents...),
		pluginBlock{variant: probe}, pluginBlock{variant: sink}, pluginBlock{variant: failing, config: `{ fail_events = true }`})
	a := b.institution("alpha")
	start := time.Now()
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=200", a.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 200, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
	}, eventually, 10*time.Millisecond)
	healthy := time.Since(start)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 200, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'failing' AND status = 'dead'"))
	}, eventually, 20*time.Millisecond)
	t.Logf("healthy subscriber done in %s while the failing one retried", healthy)
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_failing.received"))
	require.Equal(t, 200, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'failing' AND attempts = 3"))
	// The metrics count each failed attempt once, the last as dead.
	lines := b.scrape()
	require.Contains(t, lines, `edulure_event_deliveries_total{outcome="failed",subscriber="failing"} 400`)
	require.Contains(t, lines, `edulure_event_deliveries_total{outcome="dead",subscriber="failing"} 200`)

	r := b.do("GET", "/api/v1/events/deliveries?subscriber=failing&status=dead&limit=1", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	id := num(r.get("items", "0", "id"))
	r = b.do("GET", fmt.Sprintf("/api/v1/events/deliveries/%d", id), a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "dead", r.str("status"))
	require.Contains(t, r.str("last_error"), "fails every delivery")
	require.Equal(t, "probe.ping.sent.v1", r.str("event", "type"))
	require.NotNil(t, r.get("event", "data", "n"))
	// Another institution sees none of it.
	other := b.institution("beta")
	requireProblem(t, b.do("GET", fmt.Sprintf("/api/v1/events/deliveries/%d", id), other.admin, nil), 404, "not-found")
	requireProblem(t, b.do("POST", fmt.Sprintf("/api/v1/events/deliveries/%d/replay", id), other.admin, nil), 404, "not-found")

	// Replay one: it is retried afresh and, failing again, dies again.
	r = b.do("POST", fmt.Sprintf("/api/v1/events/deliveries/%d/replay", id), a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EqualValues(t, 1, r.get("replayed"))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := b.do("GET", fmt.Sprintf("/api/v1/events/deliveries/%d", id), a.admin, nil)
		assert.Equal(c, "dead", r.str("status"))
		assert.EqualValues(c, 3, r.get("attempts"))
		assert.NotNil(c, r.get("updated_at"))
	}, eventually, 20*time.Millisecond)
	// Replay a range: everything dead for the subscriber.
	r = b.do("POST", "/api/v1/events/deliveries/replay", a.admin, map[string]any{"subscriber": "failing"})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EqualValues(t, 200, r.get("replayed"))
	requireProblem(t, b.do("POST", "/api/v1/events/deliveries/replay", a.admin, map[string]any{"status": "pending"}), 422, "invalid-request")
	requireProblem(t, b.do("POST", "/api/v1/events/deliveries/replay", a.admin, map[string]any{"from_id": 9, "to_id": 3}), 422, "invalid-request")
	require.Equal(t, 2, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'tenancy.events.replayed'", a.id))
}

// GET /api/v1/events filters by type and by the time events occurred, and
// shows their data only to callers allowed to read it.
func TestEventsListingDataAndFilters(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink})
	a, c := b.institution("alpha"), b.institution("beta")
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=3", a.instructor, nil).Status)
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=2", c.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 5, b.count("SELECT count(*) FROM kernel.events WHERE type = 'probe.ping.sent.v1'"))
	}, 10*time.Second, 20*time.Millisecond)
	var mid time.Time
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT max(occurred_at) + interval '1 microsecond' FROM kernel.events WHERE type = 'probe.ping.sent.v1'").Scan(&mid))
	time.Sleep(5 * time.Millisecond) // the next transaction starts later than mid
	r := b.do("POST", "/api/v1/probe/items", a.instructor, map[string]any{"name": "lamp"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count("SELECT count(*) FROM kernel.events WHERE type = 'probe.item.created.v1'"))
	}, 10*time.Second, 20*time.Millisecond)

	r = b.do("GET", "/api/v1/events?type=probe.ping.sent.v1", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 3, "alpha's only")
	require.NotNil(t, r.get("items", "0", "data", "sent_ns"), "admins read the data (tenancy.event.data.read)")
	r = b.do("GET", "/api/v1/events?from="+mid.UTC().Format(time.RFC3339Nano), a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 1)
	require.Equal(t, "probe.item.created.v1", r.str("items", "0", "type"))
	require.Equal(t, "lamp", r.str("items", "0", "data", "name"))
	r = b.do("GET", "/api/v1/events?type=probe.ping.sent.v1&to="+mid.UTC().Format(time.RFC3339Nano), a.admin, nil)
	require.Len(t, r.items(), 3)
	r = b.do("GET", "/api/v1/events?type=probe.item.created.v1&to="+mid.UTC().Format(time.RFC3339Nano), a.admin, nil)
	require.Empty(t, r.items())
	requireProblem(t, b.do("GET", "/api/v1/events?from=yesterday", a.admin, nil), 422, "invalid-request")
	requireProblem(t, b.do("GET", "/api/v1/events?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", a.admin, nil), 422, "invalid-request")

	// A role that may list events but not read their data.
	r = b.do("PUT", "/api/v1/tenant/roles/auditor", a.admin, map[string]any{"permissions": []string{"tenancy.event.read"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("PUT", "/api/v1/tenant/members/"+a.learnerID+"/roles", a.admin, map[string]any{"roles": []string{"learner", "auditor"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	auditor := b.login("learner@alpha.test", "alpha")
	r = b.do("GET", "/api/v1/events?type=probe.ping.sent.v1", auditor, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 3)
	for _, it := range r.items() {
		require.NotContains(t, it, "data")
		require.NotEmpty(t, it["deliveries"])
	}
	// Operators across institutions, with platform.event.data.read.
	r = b.do("GET", "/api/v1/events?type=probe.ping.sent.v1", b.operator(), nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 5)
	require.NotNil(t, r.get("items", "0", "data", "n"))
}

// POST /api/v1/events/replay delivers a part of the log to a subscriber
// again, through a cursor of its own: one event, or a range.
func TestEventsReplayFromTheLog(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink})
	a, c := b.institution("alpha"), b.institution("beta")
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=10", a.instructor, nil).Status)
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=10", c.instructor, nil).Status)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 20, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
	}, 10*time.Second, 20*time.Millisecond)
	// The subscriber lost its records (and its inbox) of the pings.
	_, err := b.pool.Exec(context.Background(), `DELETE FROM plugin_sink.edulure_inbox WHERE event_id IN (SELECT event_id FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1');
		DELETE FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'`)
	require.NoError(t, err)
	r := b.do("GET", "/api/v1/events?type=probe.ping.sent.v1&limit=100", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	items := r.items()
	require.Len(t, items, 10)
	newest, oldest := num(items[0]["seq"]), num(items[9]["seq"])

	// One event.
	r = b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "sink", "from_seq": newest, "to_seq": newest})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1'"))
	}, 10*time.Second, 20*time.Millisecond)
	// A range, of one type: alpha's only, though beta's are in it.
	r = b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "sink", "type": "probe.ping.sent.v1", "from_seq": 1})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	require.EqualValues(t, 1, r.get("from_seq"))
	require.GreaterOrEqual(t, num(r.get("to_seq")), newest)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 10, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1' AND tenant = $1", a.id))
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.event_cursors WHERE kind = 'replay'"), "done replays are gone")
	}, 10*time.Second, 20*time.Millisecond)
	require.Zero(t, b.count("SELECT count(*) FROM plugin_sink.received WHERE type = 'probe.ping.sent.v1' AND tenant = $1", c.id))
	require.Equal(t, 2, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'tenancy.events.replayed'", a.id))

	requireProblem(t, b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "probe", "type": "probe.ping.sent.v1", "from_seq": oldest}), 422, "invalid-request")
	requireProblem(t, b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "nosuch", "from_seq": 1}), 422, "invalid-request")
	requireProblem(t, b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "sink", "from_seq": 5, "to_seq": 2}), 422, "invalid-request")
	requireProblem(t, b.do("POST", "/api/v1/events/replay", a.learner, map[string]any{"subscriber": "sink", "from_seq": 1}), 403, "permission-denied")
}

// An institution may have a few log replays of a subscriber running at
// once, not any number: each is a cursor the subscriber's dispatcher reads
// every round, for every institution. Another institution's are its own.
func TestEventsReplayLimit(t *testing.T) {
	t.Parallel()
	hold := filepath.Join(t.TempDir(), "hold")
	require.NoError(t, os.WriteFile(hold, nil, 0o600))
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: probe}, pluginBlock{variant: sink, config: fmt.Sprintf(`{ hold_events_file = %q }`, hold)})
	a, z := b.institution("alpha"), b.institution("beta")
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=1", z.instructor, nil).Status)
	require.Equal(t, 200, b.do("POST", "/api/v1/probe/publish?n=1", a.instructor, nil).Status)
	// The sink holds the first ping it gets: its dispatcher runs no replay
	// until the hold is lifted.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := os.Stat(hold + ".held")
		assert.NoError(c, err)
	}, 20*time.Second, 10*time.Millisecond)
	for range 5 {
		r := b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "sink", "from_seq": 1})
		require.Equal(t, 202, r.Status, "%s", r.Raw)
	}
	requireProblem(t, b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "sink", "from_seq": 1}), 409, "too-many-replays")
	r := b.do("POST", "/api/v1/events/replay", z.admin, map[string]any{"subscriber": "sink", "from_seq": 1})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	// An institution's replay ends at its own newest event.
	require.Equal(t, b.count("SELECT max(seq) FROM kernel.events WHERE tenant_id = $1", z.id), num(r.get("to_seq")))

	require.NoError(t, os.Remove(hold))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.event_cursors WHERE kind = 'replay'"), "the replays are done")
	}, 20*time.Second, 20*time.Millisecond)
	r = b.do("POST", "/api/v1/events/replay", a.admin, map[string]any{"subscriber": "sink", "from_seq": 1})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
}
