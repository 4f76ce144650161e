package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
)

// TestErasureVerifiedEmpty: once every step of an erasure is done, the
// kernel exports the person again (its own part, each plugin's through
// the real courses, governance and probe binaries) and records what came
// back: empty after a normal erasure; after the probe's erasure says done
// but leaves the notes (a bug), verified_empty is false, with the probe's
// class and count, in the request, its history and audit entry, the
// privacy.erasure.completed.v1 event and governance's signed receipt —
// and none of them names the person.
func TestErasureVerifiedEmpty(t *testing.T) {
	t.Parallel()
	env := append(append([]string{"EDULURE_PRIVACY_MAX_ATTEMPTS", "100"}, fastEvents...), fastPrivacy...)
	b, _ := withPluginsEnv(t, env, pluginBlock{variant: coursesPlugin}, pluginBlock{variant: probe},
		pluginBlock{variant: governancePlugin, allow: `"retention", "grants", "sign"`})
	a := b.institution("uni")
	b.coolOff(a.admin, 0)
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	c := b.publishCourse(a)

	// erase has the person enrol and write a note, erases them, and
	// returns the completed request with the event's data and the receipt.
	erase := func(email, name string) (req response, event map[string]any, receipt response, id string) {
		t.Helper()
		tok, uid := b.joinByInvitation(a, email, name)
		ok(b.do("POST", "/api/v1/enrolments", tok, map[string]any{"course_id": c.id}), 201)
		ok(b.do("POST", "/api/v1/probe/notes", tok, map[string]any{"body": "Notes of " + name}), 201)
		r := ok(b.do("POST", "/api/v1/tenant/members/"+uid+"/erasure", a.admin, nil), 202)
		erasure := r.str("id")
		req = b.waitFor("/api/v1/tenant/erasures/"+erasure, a.admin, "completed")
		for step, state := range stepStates(req) {
			require.Equal(t, "done", state, step)
		}
		var raw []byte
		require.EventuallyWithT(t, func(ct *assert.CollectT) { // relayed from the outbox
			assert.NoError(ct, b.pool.QueryRow(context.Background(), `SELECT data FROM kernel.events WHERE type = 'privacy.erasure.completed.v1' AND data->>'erasure_id' = $1`,
				erasure).Scan(&raw))
		}, patience, 50*time.Millisecond)
		require.NoError(t, json.Unmarshal(raw, &event))
		require.NotContains(t, string(raw), uid, "the event names the request, never the person")
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			receipt = b.do("GET", "/api/v1/governance/erasures/receipts/"+erasure, a.admin, nil)
			assert.Equal(ct, 200, receipt.Status, "%s", receipt.Raw)
		}, patience, 50*time.Millisecond)
		raw, _ = json.Marshal(receipt.get("signature"))
		var sig sdk.Signature
		require.NoError(t, json.Unmarshal(raw, &sig))
		_, err := sdk.VerifySignature(b.do("GET", "/.well-known/jwks.json", "", nil).Raw, sig, []byte(receipt.str("payload")))
		require.NoError(t, err, "the receipt verifies against the kernel's keys")
		for _, doc := range [][]byte{req.Raw, receipt.Raw} {
			require.NotContains(t, string(doc), email)
		}
		require.NotContains(t, string(receipt.Raw), uid)
		return req, event, receipt, uid
	}
	sources := func(v any) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, s := range v.(map[string]any)["sources"].([]any) {
			m := s.(map[string]any)
			out[m["source"].(string)] = m
		}
		return out
	}

	// A normal erasure: every source was asked and holds nothing.
	r, ev, receipt, _ := erase("verity.plainfield@uni.test", "Verity Plainfield")
	require.Equal(t, true, r.get("verification", "verified_empty"), "%s", r.Raw)
	src := sources(r.get("verification"))
	require.Subset(t, sourceNames(src), []string{"kernel", "courses", "probe", "governance"})
	for name, s := range src {
		require.EqualValues(t, 0, s["rows"], name)
		require.EqualValues(t, 0, s["objects"], name)
		require.Empty(t, s["error"], name)
	}
	require.Equal(t, true, ev["verification"].(map[string]any)["verified_empty"])
	require.Equal(t, true, receipt.get("verified_empty"), "%s", receipt.Raw)
	var doc struct {
		Verification struct {
			VerifiedEmpty bool `json:"verified_empty"`
			Sources       []struct {
				Source string `json:"source"`
				Rows   int    `json:"rows"`
			} `json:"sources"`
		} `json:"verification"`
	}
	require.NoError(t, json.Unmarshal([]byte(receipt.str("payload")), &doc))
	require.True(t, doc.Verification.VerifiedEmpty)
	require.Len(t, doc.Verification.Sources, len(src))
	hist := map[string]string{}
	for _, h := range r.Body["history"].([]any) {
		m := h.(map[string]any)
		d, _ := m["detail"].(string)
		hist[m["event"].(string)] = d
	}
	require.Contains(t, hist["verified"], "empty")

	// A plugin whose erasure says done and leaves the person's notes: the
	// verification is false and names the probe's class, not the person.
	require.Equal(t, 204, b.do("POST", "/api/v1/probe/personal/leave", a.admin, map[string]any{"leave": true}).Status)
	r, ev, receipt, uid := erase("lingering.leftover@uni.test", "Lingering Leftover")
	require.Equal(t, false, r.get("verification", "verified_empty"), "%s", r.Raw)
	src = sources(r.get("verification"))
	require.EqualValues(t, 1, src["probe"]["rows"], "%s", r.Raw)
	require.Equal(t, "notes", src["probe"]["classes"].([]any)[0].(map[string]any)["class"])
	for _, name := range []string{"kernel", "courses", "governance"} {
		require.EqualValues(t, 0, src[name]["rows"], name)
	}
	require.Equal(t, 1, b.count("SELECT count(*) FROM plugin_probe.notes WHERE user_id = $1", uid), "the data is there, as reported")
	require.Equal(t, false, ev["verification"].(map[string]any)["verified_empty"])
	require.EqualValues(t, 1, sources(ev["verification"])["probe"]["rows"])
	require.Equal(t, false, receipt.get("verified_empty"), "%s", receipt.Raw)
	require.NoError(t, json.Unmarshal([]byte(receipt.str("payload")), &doc))
	require.False(t, doc.Verification.VerifiedEmpty)
	hist = map[string]string{}
	for _, h := range r.Body["history"].([]any) {
		m := h.(map[string]any)
		d, _ := m["detail"].(string)
		hist[m["event"].(string)] = d
	}
	require.Contains(t, hist["verified"], "NOT empty")
	require.Contains(t, hist["verified"], "probe: 1 rows")
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.audit_log l JOIN kernel.audit_personal p ON p.entry_id = l.id
		WHERE l.tenant_id = $1 AND l.action = 'privacy.erasure.completed' AND p.data->>'verified_empty' = 'false'`, a.id))
	b.verifyChains()
}

func sourceNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
