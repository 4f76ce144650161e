package httpapi_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attack is one hostile request and the problem it must get.
type attack struct {
	name    string
	method  string
	path    string
	token   string
	body    any
	headers []string
	status  int
	code    string
	field   string // the field the problem names, when it names one
}

// runAttacks sends each attack and checks its answer: a 4xx
// problem+json with the status and code (b.do also fails any 5xx and
// checks the answer against the OpenAPI document).
func runAttacks(t *testing.T, b *testBundle, attacks []attack) {
	t.Helper()
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(tc.method, tc.path, tc.token, tc.body, tc.headers...)
			requireProblem(t, r, tc.status, tc.code)
			if tc.field != "" {
				require.Equal(t, tc.field, problemField(r, 0), "%s", r.Raw)
			}
		})
	}
}

// TestAttackLifecycleRoutes attacks the personal data lifecycle routes
// (exports, erasures, offboarding) and the events v2 routes (the log, log
// replays, delivery replays and discards) from outside: another
// institution's IDs, malformed IDs, NUL characters and bytes that are not
// UTF-8, oversized bodies, wrong types, unknown fields, no credentials, a
// learner on admin routes, an admin on operator routes, and operations out
// of order. Each answer is a 4xx problem naming the problem, and nothing
// is written by any of them.
func TestAttackLifecycleRoutes(t *testing.T) {
	t.Parallel()
	failing := variant{name: "failing", version: "1.0.0", subscribe: "probe.ping.sent.v1"}
	env := append([]string{"EDULURE_EVENTS_MAX_ATTEMPTS", "1"}, append(fastEvents, fastPrivacy...)...)
	b, _ := withPluginsEnv(t, env, pluginBlock{variant: probe}, pluginBlock{variant: failing, config: `{ fail_events = true }`})
	a := b.institution("uni")
	other := b.institution("elsewhere")
	leaving := b.institution("leaving")
	op := b.operator()
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}

	// The other institution's export (ready) and erasure request (waiting
	// out its 7-day cool-off), and a dead delivery of each institution.
	oExport := ok(b.do("POST", "/api/v1/me/data-export", other.learner, nil), 202).str("id")
	b.waitFor("/api/v1/me/data-exports/"+oExport, other.learner, "ready")
	oErasure := ok(b.do("POST", "/api/v1/me/erasure", other.learner, nil), 202).str("id")
	ok(b.do("POST", "/api/v1/probe/publish?n=1", other.instructor, nil), 200)
	ok(b.do("POST", "/api/v1/probe/publish?n=2", a.instructor, nil), 200)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'failing' AND status = 'dead' AND tenant_id = $1", other.id))
		assert.Equal(c, 2, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'failing' AND status = 'dead' AND tenant_id = $1", a.id))
	}, patience, 50*time.Millisecond)
	var oDelivery, aDead, aPending int64
	ctx := context.Background()
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT id FROM kernel.deliveries WHERE subscriber = 'failing' AND tenant_id = $1", other.id).Scan(&oDelivery))
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT min(id), max(id) FROM kernel.deliveries WHERE subscriber = 'failing' AND tenant_id = $1", a.id).Scan(&aDead, &aPending))
	// One of A's is pending again, with its next attempt tomorrow.
	_, err := b.pool.Exec(ctx, "UPDATE kernel.deliveries SET status = 'pending', next_attempt_at = now() + interval '1 day' WHERE id = $1", aPending)
	require.NoError(t, err)

	// A's requests in each state: waiting out its cool-off (the default,
	// 7 days), completed; an export queued (no worker will take it) and a
	// failed one.
	aScheduled := ok(b.do("POST", "/api/v1/tenant/members/"+a.instructorID+"/erasure", a.admin, nil), 202).str("id")
	b.coolOff(a.admin, 0)
	victim, victimID := b.joinByInvitation(a, "victor.ashgrove@uni.test", "Victor Ashgrove")
	_ = victim
	aDone := ok(b.do("POST", "/api/v1/tenant/members/"+victimID+"/erasure", a.admin, nil), 202).str("id")
	b.waitFor("/api/v1/tenant/erasures/"+aDone, a.admin, "completed")
	aQueued, aFailed := uuid.NewString(), uuid.NewString()
	_, err = b.pool.Exec(ctx, `INSERT INTO kernel.data_exports (id, tenant_id, user_id, requested_by, state) VALUES
		($1, $3, $4, $5, 'queued'), ($2, $3, $4, $5, 'failed')`, aQueued, aFailed, a.id, a.learnerID, "user:"+a.learnerID)
	require.NoError(t, err)

	before := b.snapshot(a.id, other.id, leaving.id)

	big := `{"confirm":"` + strings.Repeat("x", 2<<20) + `"}`
	bigReplay := `{"subscriber":"failing","from_seq":1,"type":"` + strings.Repeat("a", 2<<20) + `"}`
	ids1001 := make([]int64, 1001)
	for i := range ids1001 {
		ids1001[i] = int64(i + 1)
	}
	notUTF8 := "\xff\xfe"
	off := "/api/v1/tenants/" + leaving.id + "/offboarding"
	dl := func(id int64) string { return "/api/v1/events/deliveries/" + strconv.FormatInt(id, 10) }

	attacks := []attack{
		// Another institution's IDs: not found, never data.
		{name: "other's export, tenant route", method: "GET", path: "/api/v1/tenant/data-exports/" + oExport, token: a.admin, status: 404, code: "not-found"},
		{name: "other's export, download", method: "POST", path: "/api/v1/tenant/data-exports/" + oExport + "/download", token: a.admin, status: 404, code: "not-found"},
		{name: "other's export, /me", method: "GET", path: "/api/v1/me/data-exports/" + oExport, token: a.learner, status: 404, code: "not-found"},
		{name: "other's export, /me download", method: "POST", path: "/api/v1/me/data-exports/" + oExport + "/download", token: a.learner, status: 404, code: "not-found"},
		{name: "other's erasure", method: "GET", path: "/api/v1/tenant/erasures/" + oErasure, token: a.admin, status: 404, code: "not-found"},
		{name: "other's erasure, cancel", method: "POST", path: "/api/v1/tenant/erasures/" + oErasure + "/cancel", token: a.admin, status: 404, code: "not-found"},
		{name: "other's erasure, resume", method: "POST", path: "/api/v1/tenant/erasures/" + oErasure + "/resume", token: a.admin, status: 404, code: "not-found"},
		{name: "other's erasure, /me", method: "GET", path: "/api/v1/me/erasures/" + oErasure, token: a.learner, status: 404, code: "not-found"},
		{name: "other's erasure, /me cancel", method: "POST", path: "/api/v1/me/erasures/" + oErasure + "/cancel", token: a.learner, status: 404, code: "not-found"},
		{name: "other's member, export", method: "POST", path: "/api/v1/tenant/members/" + other.learnerID + "/data-export", token: a.admin, status: 404, code: "not-found"},
		{name: "other's member, erasure", method: "POST", path: "/api/v1/tenant/members/" + other.learnerID + "/erasure", token: a.admin, status: 404, code: "not-found"},
		{name: "other's admin, erasure", method: "POST", path: "/api/v1/tenant/members/" + other.adminID + "/erasure", token: a.admin, status: 404, code: "not-found"},
		{name: "operator, erasure", method: "POST", path: "/api/v1/tenant/members/" + opID(t, b) + "/erasure", token: a.admin, status: 404, code: "not-found"},
		{name: "nobody, export", method: "POST", path: "/api/v1/tenant/members/" + uuid.NewString() + "/data-export", token: a.admin, status: 404, code: "not-found"},
		{name: "other's delivery", method: "GET", path: dl(oDelivery), token: a.admin, status: 404, code: "not-found"},
		{name: "other's delivery, replay", method: "POST", path: dl(oDelivery) + "/replay", token: a.admin, status: 404, code: "not-found"},
		{name: "another admin previews A's offboarding", method: "POST", path: "/api/v1/tenants/" + a.id + "/offboarding/preview", token: other.admin, status: 403, code: "operator-required"},

		// Malformed IDs.
		{name: "export ID not a UUID", method: "GET", path: "/api/v1/tenant/data-exports/not-a-uuid", token: a.admin, status: 404, code: "not-found"},
		{name: "export ID NUL", method: "GET", path: "/api/v1/tenant/data-exports/%00", token: a.admin, status: 422, code: "invalid-request", field: "export_id"},
		{name: "export ID not UTF-8", method: "POST", path: "/api/v1/me/data-exports/%FF/download", token: a.learner, status: 422, code: "invalid-request", field: "export_id"},
		{name: "erasure ID SQL", method: "GET", path: "/api/v1/tenant/erasures/" + "x'%20OR%20'1'='1", token: a.admin, status: 404, code: "not-found"},
		{name: "erasure ID NUL", method: "POST", path: "/api/v1/tenant/erasures/a%00b/cancel", token: a.admin, status: 422, code: "invalid-request", field: "erasure_id"},
		{name: "erasure ID too long", method: "POST", path: "/api/v1/me/erasures/" + strings.Repeat("f", 5000) + "/cancel", token: a.learner, status: 404, code: "not-found"},
		{name: "member ID not a UUID", method: "POST", path: "/api/v1/tenant/members/12/data-export", token: a.admin, status: 404, code: "not-found"},
		{name: "member ID not UTF-8", method: "POST", path: "/api/v1/tenant/members/%C3%28/erasure", token: a.admin, status: 422, code: "invalid-request", field: "user_id"},
		{name: "tenant ID not a UUID", method: "POST", path: "/api/v1/tenants/leaving/offboarding/preview", token: op, status: 404, code: "not-found"},
		{name: "tenant ID NUL", method: "GET", path: "/api/v1/tenants/%00/offboarding", token: op, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "tenant nobody's", method: "POST", path: "/api/v1/tenants/" + uuid.NewString() + "/offboarding/preview", token: op, status: 404, code: "not-found"},
		{name: "tenant nobody's, offboard", method: "POST", path: "/api/v1/tenants/" + uuid.NewString() + "/offboarding", token: op, body: map[string]any{"confirm": "x"}, status: 404, code: "not-found"},
		{name: "delivery ID zero", method: "GET", path: dl(0), token: a.admin, status: 404, code: "not-found"},
		{name: "delivery ID negative", method: "POST", path: "/api/v1/events/deliveries/-1/replay", token: a.admin, status: 404, code: "not-found"},
		{name: "delivery ID over int64", method: "POST", path: "/api/v1/events/deliveries/99999999999999999999/replay", token: a.admin, status: 404, code: "not-found"},
		{name: "delivery ID NUL", method: "GET", path: "/api/v1/events/deliveries/1%00", token: a.admin, status: 422, code: "invalid-request", field: "delivery_id"},

		// Queries.
		{name: "exports by a user not a UUID", method: "GET", path: "/api/v1/tenant/data-exports?user_id=x", token: a.admin, status: 422, code: "invalid-request", field: "user_id"},
		{name: "exports by a user NUL", method: "GET", path: "/api/v1/tenant/data-exports?user_id=%00", token: a.admin, status: 422, code: "invalid-request", field: "user_id"},
		{name: "exports cursor bogus", method: "GET", path: "/api/v1/tenant/data-exports?cursor=!!", token: a.admin, status: 422, code: "invalid-request", field: "cursor"},
		{name: "my exports limit huge", method: "GET", path: "/api/v1/me/data-exports?limit=100000", token: a.learner, status: 422, code: "invalid-request", field: "limit"},
		{name: "erasures state unknown", method: "GET", path: "/api/v1/tenant/erasures?state=lost", token: a.admin, status: 422, code: "invalid-request", field: "state"},
		{name: "erasures state not UTF-8", method: "GET", path: "/api/v1/me/erasures?state=%FF", token: a.learner, status: 422, code: "invalid-request", field: "state"},
		{name: "erasures user not a UUID", method: "GET", path: "/api/v1/tenant/erasures?user_id=" + strings.Repeat("9", 40), token: a.admin, status: 422, code: "invalid-request", field: "user_id"},
		{name: "events from not a time", method: "GET", path: "/api/v1/events?from=yesterday", token: a.admin, status: 422, code: "invalid-request", field: "from"},
		{name: "events to not a time", method: "GET", path: "/api/v1/events?to=2025-13-01T00:00:00Z", token: a.admin, status: 422, code: "invalid-request", field: "to"},
		{name: "events from after to", method: "GET", path: "/api/v1/events?from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", token: a.admin, status: 422, code: "invalid-request", field: "from"},
		{name: "events from NUL", method: "GET", path: "/api/v1/events?from=2025-03-02T00:00:00Z%00", token: a.admin, status: 422, code: "invalid-request", field: "from"},
		{name: "events type not a type", method: "GET", path: "/api/v1/events?type=DROP%20TABLE", token: a.admin, status: 422, code: "invalid-request", field: "type"},
		{name: "events cursor bogus", method: "GET", path: "/api/v1/events?cursor=AAAA", token: a.admin, status: 422, code: "invalid-request", field: "cursor"},
		{name: "deliveries status unknown", method: "GET", path: "/api/v1/events/deliveries?status=gone", token: a.admin, status: 422, code: "invalid-request", field: "status"},

		// Bodies.
		{name: "offboard without a body", method: "POST", path: off, token: op, status: 400, code: "malformed-json"},
		{name: "offboard malformed JSON", method: "POST", path: off, token: op, body: `{"confirm":`, status: 400, code: "malformed-json"},
		{name: "offboard array", method: "POST", path: off, token: op, body: `["leaving"]`, status: 400, code: "malformed-json"},
		{name: "offboard wrong type", method: "POST", path: off, token: op, body: `{"confirm":true}`, status: 422, code: "invalid-request", field: "confirm"},
		{name: "offboard unknown field", method: "POST", path: off, token: op, body: `{"confirm":"leaving","force":true}`, status: 422, code: "invalid-request", field: "force"},
		{name: "offboard NUL", method: "POST", path: off, token: op, body: `{"confirm":"leaving\u0000"}`, status: 422, code: "invalid-request", field: "confirm"},
		{name: "offboard not UTF-8", method: "POST", path: off, token: op, body: `{"confirm":"leaving` + notUTF8 + `"}`, status: 400, code: "malformed-json"},
		{name: "offboard wrong slug", method: "POST", path: off, token: op, body: map[string]any{"confirm": "uni"}, status: 422, code: "invalid-request", field: "confirm"},
		{name: "offboard oversized", method: "POST", path: off, token: op, body: big, status: 413, code: "body-too-large"},
		{name: "offboard as text", method: "POST", path: off, token: op, body: `{"confirm":"leaving"}`, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported-media-type"},
		{name: "log replay without a body", method: "POST", path: "/api/v1/events/replay", token: a.admin, status: 400, code: "malformed-json"},
		{name: "log replay wrong type", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: `{"subscriber":"failing","from_seq":"1"}`, status: 422, code: "invalid-request", field: "from_seq"},
		{name: "log replay fraction", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: `{"subscriber":"failing","from_seq":1.5}`, status: 422, code: "invalid-request", field: "from_seq"},
		{name: "log replay unknown field", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: `{"subscriber":"failing","from_seq":1,"tenant_id":"` + other.id + `"}`, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "log replay NUL", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: `{"subscriber":"fail\u0000ing","from_seq":1}`, status: 422, code: "invalid-request", field: "subscriber"},
		{name: "log replay not UTF-8", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: `{"subscriber":"failing` + notUTF8 + `","from_seq":1}`, status: 400, code: "malformed-json"},
		{name: "discard not UTF-8 in a key", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, body: `{"status` + notUTF8 + `":"dead"}`, status: 400, code: "malformed-json"},
		{name: "log replay unknown subscriber", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: map[string]any{"subscriber": "nobody", "from_seq": 1}, status: 422, code: "invalid-request", field: "subscriber"},
		{name: "log replay type not subscribed", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: map[string]any{"subscriber": "failing", "type": "tenancy.member.joined.v1", "from_seq": 1}, status: 422, code: "invalid-request", field: "type"},
		{name: "log replay from zero", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: map[string]any{"subscriber": "failing", "from_seq": 0}, status: 422, code: "invalid-request", field: "from_seq"},
		{name: "log replay backwards", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: map[string]any{"subscriber": "failing", "from_seq": 5, "to_seq": 2}, status: 422, code: "invalid-request", field: "to_seq"},
		{name: "log replay past the head", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: map[string]any{"subscriber": "failing", "from_seq": int64(1) << 62}, status: 422, code: "invalid-request", field: "from_seq"},
		{name: "log replay oversized", method: "POST", path: "/api/v1/events/replay", token: a.admin, body: bigReplay, status: 413, code: "body-too-large"},
		{name: "replay range pending", method: "POST", path: "/api/v1/events/deliveries/replay", token: a.admin, body: map[string]any{"status": "pending"}, status: 422, code: "invalid-request", field: "status"},
		{name: "replay range unknown status", method: "POST", path: "/api/v1/events/deliveries/replay", token: a.admin, body: map[string]any{"status": "lost"}, status: 422, code: "invalid-request", field: "status"},
		{name: "replay range ids wrong type", method: "POST", path: "/api/v1/events/deliveries/replay", token: a.admin, body: `{"ids":"1,2"}`, status: 422, code: "invalid-request", field: "ids"},
		{name: "replay range too many ids", method: "POST", path: "/api/v1/events/deliveries/replay", token: a.admin, body: map[string]any{"ids": ids1001}, status: 422, code: "invalid-request", field: "ids"},
		{name: "discard without a body", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, status: 400, code: "malformed-json"},
		{name: "discard backwards", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, body: map[string]any{"from_id": 9, "to_id": 3}, status: 422, code: "invalid-request", field: "from_id"},
		{name: "discard negative", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, body: map[string]any{"from_id": -1}, status: 422, code: "invalid-request", field: "from_id"},
		{name: "discard subscriber not a plugin", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, body: map[string]any{"subscriber": "Robert'); DROP"}, status: 422, code: "invalid-request", field: "subscriber"},
		{name: "discard unknown field", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, body: `{"all":true}`, status: 422, code: "invalid-request", field: "all"},
		{name: "discard NUL", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, body: `{"status":"dead\u0000"}`, status: 422, code: "invalid-request", field: "status"},
		{name: "discard id over int64", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.admin, body: `{"ids":[99999999999999999999]}`, status: 422, code: "invalid-request", field: "ids"},
		{name: "export Idempotency-Key not UTF-8", method: "POST", path: "/api/v1/me/data-export", token: a.learner, headers: []string{"Idempotency-Key", "k" + notUTF8}, status: 400, code: "bad-idempotency-key"},
		{name: "erasure Idempotency-Key too long", method: "POST", path: "/api/v1/me/erasure", token: a.learner, headers: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 400, code: "bad-idempotency-key"},
		{name: "offboard Idempotency-Key not UTF-8", method: "POST", path: off, token: op, body: map[string]any{"confirm": "leaving"}, headers: []string{"Idempotency-Key", notUTF8}, status: 400, code: "bad-idempotency-key"},

		{name: "export oversized", method: "POST", path: "/api/v1/me/data-export", token: a.learner, body: big, status: 413, code: "body-too-large"},
		{name: "export with someone else's ID in a body", method: "POST", path: "/api/v1/me/data-export", token: a.learner, body: map[string]any{"user_id": a.instructorID}, status: 422, code: "invalid-request", field: "user_id"},
		{name: "erasure with a body", method: "POST", path: "/api/v1/tenant/members/" + a.learnerID + "/erasure", token: a.admin, body: `{"cool_off_hours":0}`, status: 422, code: "invalid-request", field: "cool_off_hours"},
		{name: "cancel with a body", method: "POST", path: "/api/v1/tenant/erasures/" + aScheduled + "/cancel", token: a.admin, body: `{"reason":"x"}`, status: 422, code: "invalid-request", field: "reason"},
		{name: "replay a delivery with a body not an object", method: "POST", path: dl(aDead) + "/replay", token: a.admin, body: `[1]`, status: 400, code: "malformed-json"},
		{name: "remove a member with a body", method: "DELETE", path: "/api/v1/tenant/members/" + a.instructorID, token: a.admin, body: `{"keep_data":true}`, status: 422, code: "invalid-request", field: "keep_data"},
		{name: "resume with a body not JSON", method: "POST", path: off + "/resume", token: op, body: `resume=1`, status: 400, code: "malformed-json"},
		{name: "operator without an institution, /me export", method: "POST", path: "/api/v1/me/data-export", token: op, status: 403, code: "tenant-required"},
		{name: "operator without an institution, exports", method: "GET", path: "/api/v1/tenant/data-exports", token: op, status: 403, code: "tenant-required"},

		// No credentials.
		{name: "anonymous export", method: "POST", path: "/api/v1/me/data-export", status: 401, code: "missing-credentials"},
		{name: "anonymous erasure", method: "POST", path: "/api/v1/me/erasure", status: 401, code: "missing-credentials"},
		{name: "anonymous exports", method: "GET", path: "/api/v1/tenant/data-exports", status: 401, code: "missing-credentials"},
		{name: "anonymous erasure cancel", method: "POST", path: "/api/v1/tenant/erasures/" + aScheduled + "/cancel", status: 401, code: "missing-credentials"},
		{name: "anonymous catalogue", method: "GET", path: "/api/v1/tenant/personal-data", status: 401, code: "missing-credentials"},
		{name: "anonymous offboarding", method: "POST", path: off, body: map[string]any{"confirm": "leaving"}, status: 401, code: "missing-credentials"},
		{name: "anonymous events", method: "GET", path: "/api/v1/events", status: 401, code: "missing-credentials"},
		{name: "anonymous log replay", method: "POST", path: "/api/v1/events/replay", body: map[string]any{"subscriber": "failing", "from_seq": 1}, status: 401, code: "missing-credentials"},
		{name: "anonymous discard", method: "POST", path: "/api/v1/events/deliveries/discard", body: map[string]any{}, status: 401, code: "missing-credentials"},
		{name: "bogus token", method: "GET", path: "/api/v1/tenant/erasures", token: "not-a-token", status: 401, code: "token-malformed"},

		// A learner on admin routes; an admin on operator routes.
		{name: "learner lists exports", method: "GET", path: "/api/v1/tenant/data-exports", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner reads an export", method: "GET", path: "/api/v1/tenant/data-exports/" + aQueued, token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner exports a member", method: "POST", path: "/api/v1/tenant/members/" + a.instructorID + "/data-export", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner erases a member", method: "POST", path: "/api/v1/tenant/members/" + a.instructorID + "/erasure", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner lists erasures", method: "GET", path: "/api/v1/tenant/erasures", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner cancels an erasure", method: "POST", path: "/api/v1/tenant/erasures/" + aScheduled + "/cancel", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner resumes an erasure", method: "POST", path: "/api/v1/tenant/erasures/" + aDone + "/resume", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner reads events", method: "GET", path: "/api/v1/events", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner replays the log", method: "POST", path: "/api/v1/events/replay", token: a.learner, body: map[string]any{"subscriber": "failing", "from_seq": 1}, status: 403, code: "permission-denied"},
		{name: "learner replays a delivery", method: "POST", path: dl(aDead) + "/replay", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner discards", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.learner, body: map[string]any{}, status: 403, code: "permission-denied"},
		{name: "instructor discards", method: "POST", path: "/api/v1/events/deliveries/discard", token: a.instructor, body: map[string]any{"ids": []int64{aDead}}, status: 403, code: "permission-denied"},
		{name: "admin previews an offboarding", method: "POST", path: off + "/preview", token: leaving.admin, status: 403, code: "operator-required"},
		{name: "admin offboards", method: "POST", path: off, token: leaving.admin, body: map[string]any{"confirm": "leaving"}, status: 403, code: "operator-required"},
		{name: "learner reads an offboarding", method: "GET", path: off, token: leaving.learner, status: 403, code: "operator-required"},
		{name: "admin downloads an offboarding export", method: "POST", path: off + "/export/download", token: leaving.admin, status: 403, code: "operator-required"},

		// Out of order.
		{name: "cancel a completed erasure", method: "POST", path: "/api/v1/tenant/erasures/" + aDone + "/cancel", token: a.admin, status: 409, code: "not-cancellable"},
		{name: "resume a completed erasure", method: "POST", path: "/api/v1/tenant/erasures/" + aDone + "/resume", token: a.admin, status: 409, code: "not-resumable"},
		{name: "resume a scheduled erasure", method: "POST", path: "/api/v1/tenant/erasures/" + aScheduled + "/resume", token: a.admin, status: 409, code: "not-resumable"},
		{name: "a second erasure of someone", method: "POST", path: "/api/v1/tenant/members/" + a.instructorID + "/erasure", token: a.admin, status: 409, code: "erasure-pending"},
		{name: "download a queued export", method: "POST", path: "/api/v1/tenant/data-exports/" + aQueued + "/download", token: a.admin, status: 409, code: "export-not-ready"},
		{name: "download a queued export, /me", method: "POST", path: "/api/v1/me/data-exports/" + aQueued + "/download", token: a.learner, status: 409, code: "export-not-ready"},
		{name: "download a failed export", method: "POST", path: "/api/v1/tenant/data-exports/" + aFailed + "/download", token: a.admin, status: 409, code: "export-failed"},
		{name: "replay a pending delivery", method: "POST", path: dl(aPending) + "/replay", token: a.admin, status: 409, code: "delivery-pending"},
		{name: "offboarding not started", method: "GET", path: off, token: op, status: 404, code: "not-found"},
		{name: "resume an offboarding not started", method: "POST", path: off + "/resume", token: op, status: 404, code: "not-found"},
		{name: "export of an offboarding not started", method: "GET", path: off + "/export", token: op, status: 404, code: "not-found"},
		{name: "download of an offboarding not started", method: "POST", path: off + "/export/download", token: op, status: 404, code: "not-found"},
	}
	runAttacks(t, b, attacks)

	// Nothing any of them did was written: the same requests, exports,
	// cursors, deliveries, and audit entries as before.
	require.Equal(t, before, b.snapshot(a.id, other.id, leaving.id))

	// A former member (removed) is still the institution's to export and
	// erase; a person who never belonged to it (above) is not.
	_, formerID := b.joinByInvitation(a, "fenella.marchbanks@uni.test", "Fenella Marchbanks")
	ok(b.do("DELETE", "/api/v1/tenant/members/"+formerID, a.admin, nil), 204)
	ok(b.do("POST", "/api/v1/tenant/members/"+formerID+"/data-export", a.admin, nil), 202)
	ok(b.do("POST", "/api/v1/tenant/members/"+formerID+"/erasure", a.admin, "{}"), 202)
	ok(b.do("POST", "/api/v1/me/data-export", a.learner, " \n"), 202) // no body but whitespace
	require.Zero(t, b.count("SELECT count(*) FROM kernel.privacy_requests WHERE user_id = $1 AND tenant_id <> $2", other.learnerID, other.id))
	require.Zero(t, b.count("SELECT count(*) FROM kernel.data_exports WHERE user_id = $1 AND tenant_id <> $2", other.learnerID, other.id))

	// Replays and discards that select another institution's rows change
	// nothing of them.
	r := ok(b.do("POST", "/api/v1/events/deliveries/replay", a.admin, map[string]any{"ids": []int64{oDelivery}}), 200)
	require.EqualValues(t, 0, r.get("replayed"))
	r = ok(b.do("POST", "/api/v1/events/deliveries/discard", a.admin, map[string]any{"ids": []int64{oDelivery}}), 200)
	require.EqualValues(t, 0, r.get("discarded"))
	r = ok(b.do("POST", "/api/v1/events/deliveries/discard", a.admin, map[string]any{"from_id": oDelivery, "to_id": oDelivery}), 200)
	require.EqualValues(t, 0, r.get("discarded"))
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.deliveries WHERE id = $1 AND status = 'dead'", oDelivery))
	// Times at the ends of RFC 3339's range are times like others.
	for _, q := range []string{"from=0000-01-01T00:00:00%2B01:00", "to=9999-12-31T23:59:59.999999999Z", "from=0001-01-01T00:00:00Z&to=0001-01-01T00:00:01Z"} {
		ok(b.do("GET", "/api/v1/events?"+q, a.admin, nil), 200)
	}
	// A's log shows none of the other's events.
	for _, it := range ok(b.do("GET", "/api/v1/events?limit=100", a.admin, nil), 200).items() {
		require.NotEqual(t, other.id, it["tenant_id"], "%v", it)
	}

	// Offboarding: the real one, then a second; resumed while not failed.
	ok(b.do("POST", off, op, map[string]any{"confirm": "leaving"}), 202)
	runAttacks(t, b, []attack{
		{name: "a second offboarding", method: "POST", path: off, token: op, body: map[string]any{"confirm": "leaving"}, status: 409, code: "offboarding-under-way"},
		{name: "the offboarded institution's admin", method: "GET", path: "/api/v1/tenant/erasures", token: leaving.admin, status: 403, code: "not-a-member"},
	})
	b.waitFor(off, op, "completed")
	runAttacks(t, b, []attack{
		{name: "resume a completed offboarding", method: "POST", path: off + "/resume", token: op, status: 409, code: "not-resumable"},
		{name: "offboard an offboarded institution", method: "POST", path: off, token: op, body: map[string]any{"confirm": "leaving"}, status: 404, code: "not-found"},
		{name: "preview an offboarded institution", method: "POST", path: off + "/preview", token: op, status: 404, code: "not-found"},
	})
	b.verifyChains()
}

// opID is the operator's user ID (b.operator has made them).
func opID(t *testing.T, b *testBundle) string {
	t.Helper()
	var id string
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT id::text FROM kernel.users WHERE email = 'op@platform.test'").Scan(&id))
	return id
}

// snapshot counts what the lifecycle and events routes write, for the
// institutions given.
func (b *testBundle) snapshot(tenants ...string) string {
	b.t.Helper()
	var sb strings.Builder
	for _, q := range []string{
		"SELECT count(*) FROM kernel.privacy_requests WHERE tenant_id = $1",
		"SELECT count(*) FROM kernel.privacy_history h JOIN kernel.privacy_requests r ON r.id = h.request_id WHERE r.tenant_id = $1",
		"SELECT count(*) FROM kernel.privacy_requests WHERE tenant_id = $1 AND state = 'cancelled'",
		"SELECT count(*) FROM kernel.data_exports WHERE tenant_id = $1",
		"SELECT count(*) FROM kernel.deliveries WHERE tenant_id = $1",
		"SELECT count(*) FROM kernel.deliveries WHERE tenant_id = $1 AND status = 'dead'",
		"SELECT count(*) FROM kernel.event_cursors WHERE tenant_id = $1",
		"SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1",
		"SELECT count(*) FROM kernel.tenants WHERE id = $1 AND offboarding_at IS NOT NULL",
		"SELECT count(*) FROM kernel.idempotency_keys",
	} {
		for _, tn := range tenants {
			n := 0
			if strings.Contains(q, "$1") {
				n = b.count(q, tn)
			} else {
				n = b.count(q)
			}
			fmt.Fprintf(&sb, "%s [%s]: %d\n", q, tn, n)
		}
	}
	fmt.Fprintf(&sb, "platform audit: %d\n", b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id IS NULL"))
	return sb.String()
}

// TestAttackCommerceRoutes attacks the commerce plugin's routes through the
// kernel, with the real plugin and Stripe's API served by stripe-mock:
// another institution's IDs, malformed IDs, NUL and bytes that are not
// UTF-8, oversized bodies, wrong types, unknown fields, no credentials, a
// learner on admin routes, refunds out of order, and its public Stripe
// webhook with bodies a signature cannot make sound. Nothing any of them
// does is written.
func TestAttackCommerceRoutes(t *testing.T) {
	t.Parallel()
	api := stripeMock(t)
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: coursesPlugin},
		pluginBlock{variant: commercePlugin, config: fmt.Sprintf(`{ stripe_api_base = %q }`, api)})
	a := b.institution("shop")
	other := b.institution("elsewhere")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	const whsec = "whsec_attack_signing_secret"
	for _, inst := range []institution{a, other} {
		ok(b.do("PUT", "/api/v1/tenant/plugins/commerce", inst.admin, map[string]any{"enabled": true, "config": map[string]any{
			"stripe_secret_key": "sk_test_attack", "webhook_signing_secret": whsec, "currency": "eur",
		}}), 200)
	}
	course := ok(b.do("POST", "/api/v1/courses", other.instructor, map[string]any{"title": "Elsewhere's course", "summary": "Theirs."}), 201).str("id")
	oProduct := ok(b.do("POST", "/api/v1/products", other.admin, map[string]any{"name": "Theirs", "kind": "course", "entitlements": []map[string]any{{"course_id": course}}}), 201).str("id")
	oPrice := ok(b.do("POST", "/api/v1/products/"+oProduct+"/prices", other.admin, map[string]any{"unit_amount": 1000}), 201).str("id")
	oPromo := ok(b.do("POST", "/api/v1/promo-codes", other.admin, map[string]any{"code": "THEIRS10", "percent_off": 10}), 201).str("id")
	oOrder := ok(b.do("POST", "/api/v1/checkout", other.learner, map[string]any{"items": []map[string]any{{"price_id": oPrice}}}), 201).str("id")
	aCourse := ok(b.do("POST", "/api/v1/courses", a.instructor, map[string]any{"title": "Our course", "summary": "Ours."}), 201).str("id")
	aProduct := ok(b.do("POST", "/api/v1/products", a.admin, map[string]any{"name": "Ours", "kind": "course", "entitlements": []map[string]any{{"course_id": aCourse}}}), 201).str("id")
	aPrice := ok(b.do("POST", "/api/v1/products/"+aProduct+"/prices", a.admin, map[string]any{"unit_amount": 2500}), 201).str("id")
	aOrder := ok(b.do("POST", "/api/v1/checkout", a.learner, map[string]any{"items": []map[string]any{{"price_id": aPrice}}}), 201).str("id")

	counts := func() string {
		var sb strings.Builder
		for _, table := range []string{"products", "prices", "promo_codes", "orders", "order_items", "refunds", "webhook_events"} {
			fmt.Fprintf(&sb, "%s: %d\n", table, b.count("SELECT count(*) FROM plugin_commerce."+table))
		}
		return sb.String()
	}
	before := counts()

	hook := func(endpoint string, body []byte) []string {
		return []string{"Content-Type", "application/json", "Stripe-Signature", stripeSignature(body, whsec, time.Now())}
	}
	event := func(extra string) []byte {
		return []byte(`{"id":"evt_attack_1","object":"event","type":"checkout.session.completed","created":` + strconv.FormatInt(time.Now().Unix(), 10) +
			`,"api_version":"2026-03-25.dahlia","livemode":false,"data":{"object":{"id":"cs_x","object":"checkout.session"` + extra + `}}}`)
	}
	nulEvent := event(`,"client_reference_id":"a\u0000b"`)
	badUTF8 := event(`,"client_reference_id":"` + "\xff\xfe" + `"`)
	bigEvent := event(`,"metadata":{"pad":"` + strings.Repeat("x", 300<<10) + `"}`)
	huge := event(`,"metadata":{"pad":"` + strings.Repeat("x", 2<<20) + `"}`)
	wh := "/api/v1/webhooks/stripe/" + a.id

	attacks := []attack{
		// Another institution's IDs.
		{name: "other's product", method: "GET", path: "/api/v1/products/" + oProduct, token: a.admin, status: 404, code: "not-found"},
		{name: "other's product, patch", method: "PATCH", path: "/api/v1/products/" + oProduct, token: a.admin, body: map[string]any{"status": "archived"}, status: 404, code: "not-found"},
		{name: "other's product, new price", method: "POST", path: "/api/v1/products/" + oProduct + "/prices", token: a.admin, body: map[string]any{"unit_amount": 1}, status: 404, code: "not-found"},
		{name: "other's price, patch", method: "PATCH", path: "/api/v1/prices/" + oPrice, token: a.admin, body: map[string]any{"active": false}, status: 404, code: "not-found"},
		{name: "other's promo code", method: "GET", path: "/api/v1/promo-codes/" + oPromo, token: a.admin, status: 404, code: "not-found"},
		{name: "other's promo code, patch", method: "PATCH", path: "/api/v1/promo-codes/" + oPromo, token: a.admin, body: map[string]any{"active": false}, status: 404, code: "not-found"},
		{name: "other's order", method: "GET", path: "/api/v1/orders/" + oOrder, token: a.admin, status: 404, code: "not-found"},
		{name: "other's order, refund", method: "POST", path: "/api/v1/orders/" + oOrder + "/refunds", token: a.admin, body: map[string]any{}, status: 404, code: "not-found"},
		{name: "other's subscription", method: "POST", path: "/api/v1/subscriptions/" + oOrder + "/cancel", token: a.learner, status: 404, code: "not-found"},
		{name: "other's webhook failure", method: "POST", path: "/api/v1/billing/webhook-failures/" + oOrder + "/replay", token: a.admin, status: 404, code: "not-found"},
		{name: "checkout of other's price", method: "POST", path: "/api/v1/checkout", token: a.learner, body: map[string]any{"items": []map[string]any{{"price_id": oPrice}}}, status: 422, code: "price_unknown", field: "items.0.price_id"},
		{name: "checkout with other's promo code", method: "POST", path: "/api/v1/checkout", token: a.learner, body: map[string]any{"items": []map[string]any{{"price_id": aPrice}}, "promo_code": "THEIRS10"}, status: 422, code: "promo_code_invalid", field: "promo_code"},
		{name: "another learner's order", method: "GET", path: "/api/v1/orders/" + aOrder, token: a.instructor, status: 404, code: "not-found"},

		// Malformed IDs.
		{name: "product ID not a UUID", method: "GET", path: "/api/v1/products/nope", token: a.admin, status: 404, code: "not-found"},
		{name: "product ID NUL", method: "GET", path: "/api/v1/products/%00", token: a.admin, status: 422, code: "invalid-request", field: "product_id"},
		{name: "order ID not UTF-8", method: "GET", path: "/api/v1/orders/%FF", token: a.admin, status: 422, code: "invalid-request", field: "order_id"},
		{name: "order ID SQL", method: "POST", path: "/api/v1/orders/" + "1%27%20OR%201=1/refunds", token: a.admin, body: map[string]any{}, status: 404, code: "not-found"},
		{name: "order ID not UTF-8, in the query", method: "GET", path: "/api/v1/orders?scope=%FF", token: a.admin, status: 422, code: "invalid-request", field: "scope"},
		{name: "Idempotency-Key not UTF-8 to a plugin", method: "POST", path: "/api/v1/checkout", token: a.learner, body: map[string]any{"items": []map[string]any{{"price_id": aPrice}}}, headers: []string{"Idempotency-Key", "k\xff"}, status: 400, code: "bad-request"},
		{name: "User-Agent not UTF-8 to a plugin", method: "GET", path: "/api/v1/products", token: a.learner, headers: []string{"User-Agent", "agent\xff"}, status: 400, code: "bad-request"},
		{name: "Stripe-Signature not UTF-8", method: "POST", path: wh, body: event(""), headers: []string{"Content-Type", "application/json", "Stripe-Signature", "t=1,v1=\xff"}, status: 400, code: "bad-request"},
		{name: "price ID in checkout not a UUID", method: "POST", path: "/api/v1/checkout", token: a.learner, body: map[string]any{"items": []map[string]any{{"price_id": "x"}}}, status: 422, code: "invalid-request"},

		// Bodies.
		{name: "product NUL in name", method: "POST", path: "/api/v1/products", token: a.admin, body: `{"name":"a\u0000b","kind":"bundle"}`, status: 422, code: "invalid-request", field: "name"},
		{name: "product not UTF-8 in name", method: "POST", path: "/api/v1/products", token: a.admin, body: "{\"name\":\"a\xff\",\"kind\":\"bundle\"}", status: 400, code: "bad-request"},
		{name: "product wrong type", method: "POST", path: "/api/v1/products", token: a.admin, body: `{"name":5,"kind":"bundle"}`, status: 422, code: "invalid-request", field: "name"},
		{name: "product unknown field", method: "POST", path: "/api/v1/products", token: a.admin, body: `{"name":"x","kind":"bundle","tenant_id":"` + other.id + `"}`, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "product unknown kind", method: "POST", path: "/api/v1/products", token: a.admin, body: map[string]any{"name": "x", "kind": "gift"}, status: 422, code: "invalid-request", field: "kind"},
		{name: "product malformed JSON", method: "POST", path: "/api/v1/products", token: a.admin, body: `{"name":`, status: 400, code: "bad-request"},
		{name: "product oversized", method: "POST", path: "/api/v1/products", token: a.admin, body: `{"name":"` + strings.Repeat("x", 2<<20) + `","kind":"bundle"}`, status: 413, code: "body-too-large"},
		{name: "price negative", method: "POST", path: "/api/v1/products/" + aProduct + "/prices", token: a.admin, body: map[string]any{"unit_amount": -1}, status: 422, code: "invalid-request", field: "unit_amount"},
		{name: "price fraction", method: "POST", path: "/api/v1/products/" + aProduct + "/prices", token: a.admin, body: `{"unit_amount":1.5}`, status: 422, code: "invalid-request", field: "unit_amount"},
		{name: "price over int64", method: "POST", path: "/api/v1/products/" + aProduct + "/prices", token: a.admin, body: `{"unit_amount":99999999999999999999}`, status: 422, code: "invalid-request", field: "unit_amount"},
		{name: "promo NUL code", method: "POST", path: "/api/v1/promo-codes", token: a.admin, body: `{"code":"AB\u0000C","percent_off":10}`, status: 422, code: "invalid-request", field: "code"},
		{name: "promo both kinds of discount", method: "POST", path: "/api/v1/promo-codes", token: a.admin, body: map[string]any{"code": "BOTH", "percent_off": 10, "amount_off": 100, "currency": "eur"}, status: 422, code: "invalid-request"},
		{name: "checkout no items", method: "POST", path: "/api/v1/checkout", token: a.learner, body: map[string]any{"items": []any{}}, status: 422, code: "invalid-request", field: "items"},
		{name: "checkout quantity zero", method: "POST", path: "/api/v1/checkout", token: a.learner, body: `{"items":[{"price_id":"` + aPrice + `","quantity":-1}]}`, status: 422, code: "invalid-request"},
		{name: "checkout country lowercase", method: "POST", path: "/api/v1/checkout", token: a.learner, body: map[string]any{"items": []map[string]any{{"price_id": aPrice}}, "country": "de"}, status: 422, code: "invalid-request", field: "country"},
		{name: "refund more than paid", method: "POST", path: "/api/v1/orders/" + aOrder + "/refunds", token: a.admin, body: map[string]any{"amount": 1 << 40}, status: 422, code: "invalid-request"},

		// No credentials; a learner on admin routes.
		{name: "anonymous products", method: "POST", path: "/api/v1/products", body: map[string]any{"name": "x", "kind": "bundle"}, status: 401, code: "missing-credentials"},
		{name: "anonymous checkout", method: "POST", path: "/api/v1/checkout", body: map[string]any{"items": []map[string]any{{"price_id": aPrice}}}, status: 401, code: "missing-credentials"},
		{name: "anonymous orders", method: "GET", path: "/api/v1/orders", status: 401, code: "missing-credentials"},
		{name: "learner creates a product", method: "POST", path: "/api/v1/products", token: a.learner, body: map[string]any{"name": "x", "kind": "bundle"}, status: 403, code: "permission-denied"},
		{name: "learner creates a price", method: "POST", path: "/api/v1/products/" + aProduct + "/prices", token: a.learner, body: map[string]any{"unit_amount": 0}, status: 403, code: "permission-denied"},
		{name: "learner lists promo codes", method: "GET", path: "/api/v1/promo-codes", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner refunds", method: "POST", path: "/api/v1/orders/" + aOrder + "/refunds", token: a.learner, body: map[string]any{}, status: 403, code: "permission-denied"},
		{name: "learner reads webhook failures", method: "GET", path: "/api/v1/billing/webhook-failures", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner reads anomalies", method: "GET", path: "/api/v1/billing/anomalies", token: a.learner, status: 403, code: "permission-denied"},
		{name: "learner reads reconciliations", method: "GET", path: "/api/v1/billing/reconciliations", token: a.learner, status: 403, code: "permission-denied"},

		// Out of order.
		{name: "refund an unpaid order", method: "POST", path: "/api/v1/orders/" + aOrder + "/refunds", token: a.admin, body: map[string]any{}, status: 409, code: "order_not_paid"},

		// The public webhook.
		{name: "webhook endpoint not a UUID", method: "POST", path: "/api/v1/webhooks/stripe/shop", body: event(""), headers: hook("shop", event("")), status: 404, code: "webhook_endpoint_unknown"},
		{name: "webhook endpoint NUL", method: "POST", path: "/api/v1/webhooks/stripe/%00", body: event(""), headers: hook("", event("")), status: 422, code: "invalid-request", field: "endpoint"},
		{name: "webhook no signature", method: "POST", path: wh, body: event(""), headers: []string{"Content-Type", "application/json"}, status: 400, code: "signature_missing"},
		{name: "webhook NUL in the event, signed", method: "POST", path: wh, body: nulEvent, headers: hook(a.id, nulEvent), status: 400, code: "malformed_event"},
		{name: "webhook not UTF-8, signed", method: "POST", path: wh, body: badUTF8, headers: hook(a.id, badUTF8), status: 400, code: "malformed_event"},
		{name: "webhook over 256 KiB, signed", method: "POST", path: wh, body: bigEvent, headers: hook(a.id, bigEvent), status: 413, code: "webhook_too_large"},
		{name: "webhook over the kernel's limit", method: "POST", path: wh, body: huge, headers: hook(a.id, huge), status: 413, code: "body-too-large"},
		{name: "webhook not an object, signed", method: "POST", path: wh, body: []byte(`[1]`), headers: hook(a.id, []byte(`[1]`)), status: 400, code: "malformed_event"},
	}
	runAttacks(t, b, attacks)
	require.Equal(t, before, counts(), "nothing was written")
	require.Equal(t, "pending", ok(b.do("GET", "/api/v1/orders/"+oOrder, other.learner, nil), 200).str("status"))

	// An institution signs, with its own secret, events about another's
	// order (a checkout completed, then a refund) and sends them to its own
	// endpoint: they are acknowledged and processed in its own
	// institution, where no such order is; A's order stays unpaid.
	forged := []byte(`{"id":"evt_forged_paid","object":"event","type":"checkout.session.completed","created":` + strconv.FormatInt(time.Now().Unix(), 10) +
		`,"api_version":"2026-03-25.dahlia","livemode":false,"data":{"object":{"id":"cs_forged","object":"checkout.session","client_reference_id":"` + aOrder +
		`","status":"complete","payment_status":"paid","amount_total":2500,"currency":"eur","mode":"payment","metadata":{"order_id":"` + aOrder +
		`"},"payment_intent":"pi_forged","customer":"cus_forged"}}}`)
	ok(b.do("POST", "/api/v1/webhooks/stripe/"+other.id, "", forged, hook(other.id, forged)...), 200)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count(`SELECT count(*) FROM plugin_commerce.webhook_events WHERE tenant_id = $1 AND stripe_event_id = 'evt_forged_paid' AND status <> 'received'`, other.id))
	}, patience, 50*time.Millisecond)
	require.Equal(t, "pending", ok(b.do("GET", "/api/v1/orders/"+aOrder, a.learner, nil), 200).str("status"))
	require.Equal(t, "pending", ok(b.do("GET", "/api/v1/orders/"+oOrder, other.learner, nil), 200).str("status"))
	require.Zero(t, b.count(`SELECT count(*) FROM plugin_commerce.webhook_events WHERE tenant_id = $1`, a.id))
}

// TestAttackUserAgent: a User-Agent is stored with a session, shown to
// its owner: one that is not UTF-8, or that is cut at its limit (300 bytes)
// in the middle of a character, signs in all the same, and is stored as
// valid text.
func TestAttackUserAgent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.institution("uni")
	for name, ua := range map[string]string{
		"not UTF-8":          "agent\xff\xfe",
		"cut in a character": strings.Repeat("a", 299) + "é and more",
	} {
		t.Run(name, func(t *testing.T) {
			r := b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "learner@uni.test", "password": password, "tenant": "uni"}, "User-Agent", ua)
			require.Equal(t, 200, r.Status, "%s", r.Raw)
			sessions := b.do("GET", "/api/v1/me/sessions", r.str("access_token"), nil)
			require.Equal(t, 200, sessions.Status, "%s", sessions.Raw)
			found := false
			for _, s := range sessions.items() {
				got, _ := s["user_agent"].(string)
				require.True(t, utf8.ValidString(got), "%q", got)
				require.LessOrEqual(t, len(got), 300)
				found = found || strings.HasPrefix(got, "agent") || strings.HasPrefix(got, "aaa")
			}
			require.True(t, found, "%s", sessions.Raw)
		})
	}
}
