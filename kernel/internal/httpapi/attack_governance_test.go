package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// govSnapshot counts what the governance routes and the kernel's grant
// revocations write, for the institutions given.
func (b *testBundle) govSnapshot(tenants ...string) string {
	b.t.Helper()
	var sb strings.Builder
	for _, table := range []string{"incidents", "evidence_items", "custody_events", "retention_policies", "legal_holds",
		"retention_executions", "review_campaigns", "review_items", "erasure_receipts"} {
		for _, tn := range tenants {
			fmt.Fprintf(&sb, "%s [%s]: %d\n", table, tn, b.count("SELECT count(*) FROM plugin_governance."+table+" WHERE tenant_id = $1", tn))
		}
	}
	for _, q := range []string{
		"SELECT count(*) FROM plugin_governance.incidents WHERE tenant_id = $1 AND status = 'closed'",
		"SELECT count(*) FROM plugin_governance.evidence_items WHERE tenant_id = $1 AND state = 'stored'",
		"SELECT count(*) FROM plugin_governance.legal_holds WHERE tenant_id = $1 AND released_at IS NOT NULL",
		"SELECT count(*) FROM plugin_governance.review_campaigns WHERE tenant_id = $1 AND status = 'closed'",
		"SELECT count(*) FROM plugin_governance.review_items WHERE tenant_id = $1 AND decision IS NOT NULL",
		"SELECT count(*) FROM plugin_governance.review_items WHERE tenant_id = $1 AND revocation IS NOT NULL",
		"SELECT count(*) FROM kernel.memberships WHERE tenant_id = $1",
		"SELECT coalesce(sum(cardinality(roles)), 0) FROM kernel.memberships WHERE tenant_id = $1",
		"SELECT count(*) FROM kernel.roles WHERE tenant_id = $1",
		"SELECT count(*) FROM kernel.api_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
		"SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1",
		"SELECT count(*) FROM plugin_telemetry.statements WHERE tenant_id = $1",
	} {
		for _, tn := range tenants {
			fmt.Fprintf(&sb, "%s [%s]: %d\n", q, tn, b.count(q, tn))
		}
	}
	return sb.String()
}

// TestAttackGovernanceRoutes attacks the governance plugin's routes
// through the kernel, with the real plugin and telemetry's retention
// class, and the kernel's grants and checkpoint routes: another
// institution's IDs everywhere, malformed IDs, NUL characters and
// oversized bodies and fields, wrong types, unknown fields, a learner and
// an auditor (read only) attempting writes, operations out of order
// (sealing before the upload and twice, an upload after the seal,
// evidence for a closed incident, a hold released twice, attesting on,
// applying and closing a closed campaign), replays, self-attestation, and
// a signed record presented as an access token. Each answer is a 4xx
// problem naming the problem, and nothing is written by any of them. Then
// what must hold when the requests are legitimate but hostile: a file
// that is not the declared one is not sealed (and the right one then is);
// an officer cannot revoke, through an access review, a grant giving
// what they do not hold; a retention execution racing new rows and
// following a policy change mid-way never deletes a held person's rows.
func TestAttackGovernanceRoutes(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, append(append([]string{}, fastEvents...), fastPrivacy...), pluginBlock{variant: telemetryPlugin},
		pluginBlock{variant: governancePlugin, allow: `"retention", "grants", "sign"`})
	a := b.institution("uni")
	other := b.institution("elsewhere")
	op := b.operator()
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	const gov = "/api/v1/governance/"
	officerPerms := []string{"governance.evidence.read", "governance.evidence.manage", "governance.retention.read", "governance.retention.manage",
		"governance.review.read", "governance.review.manage", "governance.review.attest", "governance.erasure.read"}
	b.grantRole(a, a.instructorID, "compliance_desk", []string{"instructor"}, officerPerms)
	b.grantRole(a, a.learnerID, "audit_reader", []string{"learner"}, []string{"governance.evidence.read", "governance.retention.read", "governance.review.read", "governance.erasure.read"})
	officer, auditor := b.login("instructor@uni.test", "uni"), b.login("learner@uni.test", "uni")
	learner, _ := b.joinByInvitation(a, "plain.learner@uni.test", "Plain Learner")

	hexSum := func(p []byte) string { s := sha256.Sum256(p); return hex.EncodeToString(s[:]) }
	put := func(uploadURL string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest("PUT", b.url+uploadURL, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "text/plain")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	content := []byte("minutes of the board, 2026-11-30\n")
	declare := func(token, incident string, body []byte) response {
		t.Helper()
		return ok(b.do("POST", gov+"incidents/"+incident+"/evidence", token,
			map[string]any{"title": "Minutes", "content_type": "text/plain", "sha256": hexSum(body), "size": len(body)}), 201)
	}

	// The other institution's governance: an incident with a sealed item,
	// a policy, a hold, an execution, a campaign, an erasure's receipt.
	oInc := ok(b.do("POST", gov+"incidents", other.admin, map[string]any{"title": "Theirs"}), 201).str("id")
	oTicket := declare(other.admin, oInc, content)
	require.Equal(t, 201, put(oTicket.str("upload_url"), content))
	oItem := oTicket.str("item", "id")
	ok(b.do("POST", gov+"evidence/"+oItem+"/seal", other.admin, nil), 200)
	ok(b.do("PUT", gov+"retention/policies/telemetry/statements", other.admin, map[string]any{"period_days": 30, "action": "delete"}), 200)
	oHold := ok(b.do("POST", gov+"retention/holds", other.admin, map[string]any{"kind": "person", "subject_id": other.learnerID, "reason": "Theirs"}), 201).str("id")
	oExec := ok(b.do("POST", gov+"retention/executions", other.admin, map[string]any{}), 201).str("id")
	oCamp := ok(b.do("POST", gov+"reviews", other.admin, map[string]any{"title": "Theirs"}), 201).str("id")
	oRItem := ok(b.do("GET", gov+"reviews/"+oCamp+"/items?limit=1", other.admin, nil), 200).items()[0]["id"].(string)
	b.coolOff(other.admin, 0)
	_, goneID := b.joinByInvitation(other, "gone@elsewhere.test", "Gone Elsewhere")
	oErasure := ok(b.do("POST", "/api/v1/tenant/members/"+goneID+"/erasure", other.admin, nil), 202).str("id")
	b.waitFor("/api/v1/tenant/erasures/"+oErasure, other.admin, "completed")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 200, b.do("GET", gov+"erasures/receipts/"+oErasure, other.admin, nil).Status)
	}, patience, 50*time.Millisecond)

	// A's: an open incident with a pending and a sealed item, a closed
	// incident, a released hold, an open and a closed campaign.
	aInc := ok(b.do("POST", gov+"incidents", officer, map[string]any{"title": "Ours"}), 201).str("id")
	aPendingTicket := declare(officer, aInc, content)
	aPending := aPendingTicket.str("item", "id")
	aSealedTicket := declare(officer, aInc, content)
	require.Equal(t, 201, put(aSealedTicket.str("upload_url"), content))
	aSealed := aSealedTicket.str("item", "id")
	ok(b.do("POST", gov+"evidence/"+aSealed+"/seal", officer, nil), 200)
	aClosedInc := ok(b.do("POST", gov+"incidents", officer, map[string]any{"title": "Done"}), 201).str("id")
	aLateTicket := declare(officer, aClosedInc, content)
	require.Equal(t, 201, put(aLateTicket.str("upload_url"), content))
	aLate := aLateTicket.str("item", "id")
	ok(b.do("POST", gov+"incidents/"+aClosedInc+"/close", officer, nil), 200)
	aReleased := ok(b.do("POST", gov+"retention/holds", officer, map[string]any{"kind": "tenant", "reason": "Audit"}), 201).str("id")
	ok(b.do("POST", gov+"retention/holds/"+aReleased+"/release", officer, nil), 200)
	aCamp := ok(b.do("POST", gov+"reviews", officer, map[string]any{"title": "Open"}), 201).str("id")
	aClosedCamp := ok(b.do("POST", gov+"reviews", officer, map[string]any{"title": "Closed"}), 201).str("id")
	aClosedItem := ok(b.do("GET", gov+"reviews/"+aClosedCamp+"/items?limit=1", officer, nil), 200).items()[0]["id"].(string)
	ok(b.do("POST", gov+"reviews/"+aClosedCamp+"/close", officer, nil), 200)
	aExec := ok(b.do("POST", gov+"retention/executions", officer, map[string]any{"dry_run": true}), 201)
	var aItems []map[string]any
	for cursor := ""; ; {
		page := ok(b.do("GET", gov+"reviews/"+aCamp+"/items?limit=100"+cursor, officer, nil), 200)
		aItems = append(aItems, page.items()...)
		if page.str("next_cursor") == "" {
			break
		}
		cursor = "&cursor=" + page.str("next_cursor")
	}
	itemOf := func(kind, id string) string {
		for _, it := range aItems {
			if it["grant_kind"] == kind && it["grant_id"] == id {
				return it["id"].(string)
			}
		}
		t.Fatalf("no %s grant %s in the campaign", kind, id)
		return ""
	}
	attest := func(item string) string { return gov + "reviews/" + aCamp + "/items/" + item + "/attest" }

	// A signed record of the kernel (an execution's) is no access token.
	got := ok(b.do("GET", gov+"retention/executions/"+aExec.str("id"), officer, nil), 200)
	jws, _ := got.get("signature").(map[string]any)["jws"].(string)
	require.NotEmpty(t, jws, "%s", got.Raw)

	before := b.govSnapshot(a.id, other.id)
	big := `{"title":"` + strings.Repeat("x", 2<<20) + `"}`
	long := strings.Repeat("x", 201)
	okEvidence := map[string]any{"title": "Minutes", "content_type": "text/plain", "sha256": hexSum(content), "size": len(content)}
	evidenceWith := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range okEvidence {
			m[k] = v
		}
		m[k] = v
		return m
	}

	attacks := []attack{
		// Another institution's IDs: not found, never data, nothing changed.
		{name: "other's incident", method: "GET", path: gov + "incidents/" + oInc, token: a.admin, status: 404, code: "not-found"},
		{name: "other's incident, close", method: "POST", path: gov + "incidents/" + oInc + "/close", token: a.admin, status: 404, code: "not-found"},
		{name: "other's incident, evidence", method: "POST", path: gov + "incidents/" + oInc + "/evidence", token: a.admin, body: okEvidence, status: 404, code: "not-found"},
		{name: "other's incident, export", method: "GET", path: gov + "incidents/" + oInc + "/export", token: a.admin, status: 404, code: "not-found"},
		{name: "other's evidence", method: "GET", path: gov + "evidence/" + oItem, token: a.admin, status: 404, code: "not-found"},
		{name: "other's evidence, seal", method: "POST", path: gov + "evidence/" + oItem + "/seal", token: a.admin, status: 404, code: "not-found"},
		{name: "other's evidence, content", method: "GET", path: gov + "evidence/" + oItem + "/content", token: a.admin, status: 404, code: "not-found"},
		{name: "other's evidence, verify", method: "POST", path: gov + "evidence/" + oItem + "/verify", token: a.admin, status: 404, code: "not-found"},
		{name: "other's hold, release", method: "POST", path: gov + "retention/holds/" + oHold + "/release", token: a.admin, status: 404, code: "not-found"},
		{name: "other's execution", method: "GET", path: gov + "retention/executions/" + oExec, token: a.admin, status: 404, code: "not-found"},
		{name: "other's campaign", method: "GET", path: gov + "reviews/" + oCamp, token: a.admin, status: 404, code: "not-found"},
		{name: "other's campaign, items", method: "GET", path: gov + "reviews/" + oCamp + "/items", token: a.admin, status: 404, code: "not-found"},
		{name: "other's campaign, attest", method: "POST", path: gov + "reviews/" + oCamp + "/items/" + oRItem + "/attest", token: a.admin, body: map[string]any{"decision": "revoke"}, status: 404, code: "not-found"},
		{name: "other's item in our campaign", method: "POST", path: attest(oRItem), token: a.admin, body: map[string]any{"decision": "revoke"}, status: 404, code: "not-found"},
		{name: "our closed campaign's item in our open one", method: "POST", path: attest(aClosedItem), token: a.admin, body: map[string]any{"decision": "keep"}, status: 404, code: "not-found"},
		{name: "other's campaign, apply", method: "POST", path: gov + "reviews/" + oCamp + "/apply", token: a.admin, status: 404, code: "not-found"},
		{name: "other's campaign, close", method: "POST", path: gov + "reviews/" + oCamp + "/close", token: a.admin, status: 404, code: "not-found"},
		{name: "other's receipt", method: "GET", path: gov + "erasures/receipts/" + oErasure, token: a.admin, status: 404, code: "not-found"},

		// Malformed IDs.
		{name: "incident ID not a UUID", method: "GET", path: gov + "incidents/not-a-uuid", token: a.admin, status: 404, code: "not-found"},
		{name: "incident ID SQL", method: "POST", path: gov + "incidents/x'%20OR%20'1'='1/close", token: a.admin, status: 404, code: "not-found"},
		{name: "incident ID NUL", method: "GET", path: gov + "incidents/%00", token: a.admin, status: 422, code: "invalid-request", field: "incident_id"},
		{name: "evidence ID not UTF-8", method: "POST", path: gov + "evidence/%FF/seal", token: a.admin, status: 422, code: "invalid-request", field: "item_id"},
		{name: "evidence ID in braces", method: "GET", path: gov + "evidence/%7B" + aSealed + "%7D", token: a.admin, status: 404, code: "not-found"},
		{name: "evidence ID too long", method: "GET", path: gov + "evidence/" + strings.Repeat("f", 5000) + "/content", token: a.admin, status: 404, code: "not-found"},
		{name: "hold ID nobody's", method: "POST", path: gov + "retention/holds/" + uuid.NewString() + "/release", token: a.admin, status: 404, code: "not-found"},
		{name: "execution ID NUL", method: "GET", path: gov + "retention/executions/a%00b", token: a.admin, status: 422, code: "invalid-request", field: "execution_id"},
		{name: "campaign ID nobody's", method: "POST", path: gov + "reviews/" + uuid.NewString() + "/apply", token: a.admin, status: 404, code: "not-found"},
		{name: "review item not a UUID", method: "POST", path: attest("12"), token: a.admin, body: map[string]any{"decision": "keep"}, status: 404, code: "not-found"},
		{name: "receipt ID not a UUID", method: "GET", path: gov + "erasures/receipts/..%2F..%2Fetc", token: a.admin, status: 404, code: "not-found"},
		{name: "policy plugin NUL", method: "PUT", path: gov + "retention/policies/tele%00metry/statements", token: a.admin, body: map[string]any{"period_days": 30, "action": "delete"}, status: 422, code: "invalid-request", field: "plugin"},
		{name: "policy of an unknown class", method: "PUT", path: gov + "retention/policies/telemetry/passwords", token: a.admin, body: map[string]any{"period_days": 30, "action": "delete"}, status: 404, code: "retention-class-unknown"},
		{name: "policy of another plugin's schema", method: "PUT", path: gov + "retention/policies/kernel/users", token: a.admin, body: map[string]any{"period_days": 30, "action": "delete"}, status: 404, code: "retention-class-unknown"},
		{name: "remove an unknown policy", method: "DELETE", path: gov + "retention/policies/telemetry/passwords", token: a.admin, status: 404, code: "not-found"},

		// Bodies and fields.
		{name: "incident without a body", method: "POST", path: gov + "incidents", token: a.admin, status: 400, code: "bad-request"},
		{name: "incident NUL title", method: "POST", path: gov + "incidents", token: a.admin, body: `{"title":"a\u0000b"}`, status: 422, code: "invalid-request", field: "title"},
		{name: "incident NUL key", method: "POST", path: gov + "incidents", token: a.admin, body: `{"title":"a","desc\u0000":"b"}`, status: 422, code: "invalid-request"},
		{name: "incident blank title", method: "POST", path: gov + "incidents", token: a.admin, body: map[string]any{"title": "   "}, status: 422, code: "invalid-request", field: "title"},
		{name: "incident title too long", method: "POST", path: gov + "incidents", token: a.admin, body: map[string]any{"title": long}, status: 422, code: "invalid-request", field: "title"},
		{name: "incident description too long", method: "POST", path: gov + "incidents", token: a.admin, body: map[string]any{"title": "x", "description": strings.Repeat("d", 5001)}, status: 422, code: "invalid-request", field: "description"},
		{name: "incident oversized", method: "POST", path: gov + "incidents", token: a.admin, body: big, status: 413, code: "body-too-large"},
		{name: "incident unknown field", method: "POST", path: gov + "incidents", token: a.admin, body: map[string]any{"title": "x", "tenant_id": other.id}, status: 422, code: "invalid-request", field: "tenant_id"},
		{name: "incident wrong type", method: "POST", path: gov + "incidents", token: a.admin, body: `{"title":["x"]}`, status: 422, code: "invalid-request", field: "title"},
		{name: "incident not UTF-8", method: "POST", path: gov + "incidents", token: a.admin, body: "{\"title\":\"\xff\"}", status: 400, code: "bad-request"},
		{name: "evidence sha256 not hex", method: "POST", path: gov + "incidents/" + aInc + "/evidence", token: a.admin, body: evidenceWith("sha256", strings.Repeat("z", 64)), status: 422, code: "invalid-request", field: "sha256"},
		{name: "evidence size negative", method: "POST", path: gov + "incidents/" + aInc + "/evidence", token: a.admin, body: evidenceWith("size", -1), status: 422, code: "invalid-request", field: "size"},
		{name: "evidence size huge", method: "POST", path: gov + "incidents/" + aInc + "/evidence", token: a.admin, body: evidenceWith("size", 1e30), status: 422, code: "invalid-request", field: "size"},
		{name: "evidence content type with parameters", method: "POST", path: gov + "incidents/" + aInc + "/evidence", token: a.admin, body: evidenceWith("content_type", "text/html; charset=utf-8\r\nX: y"), status: 422, code: "invalid-request", field: "content_type"},
		{name: "evidence NUL title", method: "POST", path: gov + "incidents/" + aInc + "/evidence", token: a.admin, body: evidenceWith("title", "a\x00b"), status: 422, code: "invalid-request", field: "title"},
		{name: "hold of an unknown kind", method: "POST", path: gov + "retention/holds", token: a.admin, body: map[string]any{"kind": "planet", "subject_id": "x", "reason": "x"}, status: 422, code: "invalid-request", field: "kind"},
		{name: "tenant hold with a subject", method: "POST", path: gov + "retention/holds", token: a.admin, body: map[string]any{"kind": "tenant", "subject_id": a.learnerID, "reason": "x"}, status: 422, code: "invalid-request", field: "subject_id"},
		{name: "person hold not a UUID", method: "POST", path: gov + "retention/holds", token: a.admin, body: map[string]any{"kind": "person", "subject_id": "bob", "reason": "x"}, status: 422, code: "invalid-request", field: "subject_id"},
		{name: "hold reason NUL", method: "POST", path: gov + "retention/holds", token: a.admin, body: map[string]any{"kind": "tenant", "reason": "a\x00"}, status: 422, code: "invalid-request", field: "reason"},
		{name: "hold reason too long", method: "POST", path: gov + "retention/holds", token: a.admin, body: map[string]any{"kind": "tenant", "reason": strings.Repeat("r", 1001)}, status: 422, code: "invalid-request", field: "reason"},
		{name: "policy period zero", method: "PUT", path: gov + "retention/policies/telemetry/statements", token: a.admin, body: map[string]any{"period_days": 0, "action": "delete"}, status: 422, code: "invalid-request", field: "period_days"},
		{name: "policy period huge", method: "PUT", path: gov + "retention/policies/telemetry/statements", token: a.admin, body: map[string]any{"period_days": 1 << 40, "action": "delete"}, status: 422, code: "invalid-request", field: "period_days"},
		{name: "policy action the class lacks", method: "PUT", path: gov + "retention/policies/telemetry/statements", token: a.admin, body: map[string]any{"period_days": 30, "action": "anonymise"}, status: 422, code: "invalid-request", field: "action"},
		{name: "execution dry_run a string", method: "POST", path: gov + "retention/executions", token: a.admin, body: `{"dry_run":"yes"}`, status: 422, code: "invalid-request", field: "dry_run"},
		{name: "campaign NUL title", method: "POST", path: gov + "reviews", token: a.admin, body: map[string]any{"title": "\x00"}, status: 422, code: "invalid-request", field: "title"},
		{name: "attest unknown decision", method: "POST", path: attest(itemOf("membership", a.learnerID)), token: a.admin, body: map[string]any{"decision": "maybe"}, status: 422, code: "invalid-request", field: "decision"},
		{name: "attest NUL note", method: "POST", path: attest(itemOf("membership", a.learnerID)), token: a.admin, body: map[string]any{"decision": "keep", "note": "a\x00"}, status: 422, code: "invalid-request", field: "note"},
		{name: "attest note too long", method: "POST", path: attest(itemOf("membership", a.learnerID)), token: a.admin, body: map[string]any{"decision": "keep", "note": strings.Repeat("n", 1001)}, status: 422, code: "invalid-request", field: "note"},
		{name: "evidence kind unknown", method: "GET", path: gov + "evidence?kind=%00", token: a.admin, status: 422, code: "invalid-request", field: "kind"},
		{name: "items decision unknown", method: "GET", path: gov + "reviews/" + aCamp + "/items?decision=lost", token: a.admin, status: 422, code: "invalid-request", field: "decision"},
		{name: "incidents cursor bogus", method: "GET", path: gov + "incidents?cursor=!!", token: a.admin, status: 422, code: "invalid-request", field: "cursor"},
		{name: "receipts limit huge", method: "GET", path: gov + "erasures/receipts?limit=100000", token: a.admin, status: 422, code: "invalid-request", field: "limit"},

		// Who may: no one unauthenticated, a learner nothing, an auditor
		// only reads.
		{name: "no token", method: "GET", path: gov + "incidents", status: 401, code: "missing-credentials"},
		{name: "learner reads evidence", method: "GET", path: gov + "evidence/" + aSealed, token: learner, status: 403, code: "permission-denied"},
		{name: "learner opens an incident", method: "POST", path: gov + "incidents", token: learner, body: map[string]any{"title": "x"}, status: 403, code: "permission-denied"},
		{name: "learner attests", method: "POST", path: attest(itemOf("membership", a.adminID)), token: learner, body: map[string]any{"decision": "revoke"}, status: 403, code: "permission-denied"},
		{name: "learner reads receipts", method: "GET", path: gov + "erasures/receipts", token: learner, status: 403, code: "permission-denied"},
		{name: "auditor opens an incident", method: "POST", path: gov + "incidents", token: auditor, body: map[string]any{"title": "x"}, status: 403, code: "permission-denied"},
		{name: "auditor closes an incident", method: "POST", path: gov + "incidents/" + aInc + "/close", token: auditor, status: 403, code: "permission-denied"},
		{name: "auditor declares evidence", method: "POST", path: gov + "incidents/" + aInc + "/evidence", token: auditor, body: okEvidence, status: 403, code: "permission-denied"},
		{name: "auditor seals", method: "POST", path: gov + "evidence/" + aPending + "/seal", token: auditor, status: 403, code: "permission-denied"},
		{name: "auditor sets a policy", method: "PUT", path: gov + "retention/policies/telemetry/statements", token: auditor, body: map[string]any{"period_days": 1, "action": "delete"}, status: 403, code: "permission-denied"},
		{name: "auditor removes a policy", method: "DELETE", path: gov + "retention/policies/telemetry/statements", token: auditor, status: 403, code: "permission-denied"},
		{name: "auditor places a hold", method: "POST", path: gov + "retention/holds", token: auditor, body: map[string]any{"kind": "tenant", "reason": "x"}, status: 403, code: "permission-denied"},
		{name: "auditor releases a hold", method: "POST", path: gov + "retention/holds/" + aReleased + "/release", token: auditor, status: 403, code: "permission-denied"},
		{name: "auditor executes", method: "POST", path: gov + "retention/executions", token: auditor, body: map[string]any{}, status: 403, code: "permission-denied"},
		{name: "auditor records a dry run", method: "POST", path: gov + "retention/executions", token: auditor, body: map[string]any{"dry_run": true}, status: 403, code: "permission-denied"},
		{name: "auditor starts a campaign", method: "POST", path: gov + "reviews", token: auditor, body: map[string]any{"title": "x"}, status: 403, code: "permission-denied"},
		{name: "auditor attests", method: "POST", path: attest(itemOf("membership", a.adminID)), token: auditor, body: map[string]any{"decision": "revoke"}, status: 403, code: "permission-denied"},
		{name: "auditor applies", method: "POST", path: gov + "reviews/" + aCamp + "/apply", token: auditor, status: 403, code: "permission-denied"},
		{name: "auditor closes a campaign", method: "POST", path: gov + "reviews/" + aCamp + "/close", token: auditor, status: 403, code: "permission-denied"},
		{name: "auditor runs the retention job", method: "POST", path: "/api/v1/jobs/governance/data-retention/runs", token: auditor, body: map[string]any{}, status: 403, code: "permission-denied"},
		{name: "signed record as a bearer token", method: "GET", path: gov + "incidents", token: jws, status: 401, code: "token-malformed"},

		// Out of order.
		{name: "seal before the upload", method: "POST", path: gov + "evidence/" + aPending + "/seal", token: officer, status: 409, code: "evidence-not-uploaded"},
		{name: "seal twice", method: "POST", path: gov + "evidence/" + aSealed + "/seal", token: officer, status: 409, code: "evidence-sealed"},
		{name: "content before the upload", method: "GET", path: gov + "evidence/" + aPending + "/content", token: officer, status: 409, code: "evidence-not-sealed"},
		{name: "evidence for a closed incident", method: "POST", path: gov + "incidents/" + aClosedInc + "/evidence", token: officer, body: okEvidence, status: 409, code: "incident-closed"},
		{name: "seal after the incident closed", method: "POST", path: gov + "evidence/" + aLate + "/seal", token: officer, status: 409, code: "incident-closed"},
		{name: "close an incident twice", method: "POST", path: gov + "incidents/" + aClosedInc + "/close", token: officer, status: 409, code: "incident-closed"},
		{name: "release a hold twice", method: "POST", path: gov + "retention/holds/" + aReleased + "/release", token: officer, status: 409, code: "hold-released"},
		{name: "attest on a closed campaign", method: "POST", path: gov + "reviews/" + aClosedCamp + "/items/" + aClosedItem + "/attest", token: a.admin, body: map[string]any{"decision": "revoke"}, status: 409, code: "review-closed"},
		{name: "apply a closed campaign", method: "POST", path: gov + "reviews/" + aClosedCamp + "/apply", token: officer, status: 409, code: "review-closed"},
		{name: "close a campaign twice", method: "POST", path: gov + "reviews/" + aClosedCamp + "/close", token: officer, status: 409, code: "review-closed"},
		{name: "self-attestation, membership", method: "POST", path: attest(itemOf("membership", a.instructorID)), token: officer, body: map[string]any{"decision": "keep"}, status: 403, code: "self-attestation"},
		{name: "self-attestation, role", method: "POST", path: attest(itemOf("role", a.instructorID+"/compliance_desk")), token: officer, body: map[string]any{"decision": "keep"}, status: 403, code: "self-attestation"},
		{name: "self-attestation, custom role held", method: "POST", path: attest(itemOf("custom_role", "compliance_desk")), token: officer, body: map[string]any{"decision": "keep"}, status: 403, code: "self-attestation"},

		// The kernel's own routes.
		{name: "learner lists grants", method: "GET", path: "/api/v1/tenant/grants", token: learner, status: 403, code: "permission-denied"},
		{name: "officer lists grants", method: "GET", path: "/api/v1/tenant/grants", token: officer, status: 403, code: "permission-denied"},
		{name: "learner reads checkpoints", method: "GET", path: "/api/v1/tenant/audit/checkpoints", token: learner, status: 403, code: "permission-denied"},
		{name: "learner verifies checkpoints", method: "GET", path: "/api/v1/tenant/audit/checkpoints/verify", token: learner, status: 403, code: "permission-denied"},
		{name: "admin reads the platform's checkpoints", method: "GET", path: "/api/v1/admin/audit/checkpoints", token: a.admin, status: 403, code: "operator-required"},
		{name: "admin signs checkpoints", method: "POST", path: "/api/v1/admin/audit/checkpoints", token: a.admin, status: 403, code: "operator-required"},
		{name: "checkpoints limit huge", method: "GET", path: "/api/v1/tenant/audit/checkpoints?limit=101", token: a.admin, status: 422, code: "invalid-request", field: "limit"},
	}
	runAttacks(t, b, attacks)
	require.Equal(t, before, b.govSnapshot(a.id, other.id), "no attack wrote anything")
	_ = op

	// The other institution's objects, still theirs and unchanged.
	require.Equal(t, "stored", ok(b.do("GET", gov+"evidence/"+oItem, other.admin, nil), 200).str("state"))
	for _, it := range b.do("GET", gov+"incidents?limit=100", a.admin, nil).items() {
		require.NotEqual(t, oInc, it["id"])
	}

	// The kernel's grants and checkpoints are each institution's own.
	grants := ok(b.do("GET", "/api/v1/tenant/grants?limit=100", a.admin, nil), 200)
	require.NotContains(t, string(grants.Raw), other.adminID)
	require.NotContains(t, string(grants.Raw), other.id)
	ok(b.do("POST", "/api/v1/admin/audit/checkpoints", op, nil), 200)
	cps := ok(b.do("GET", "/api/v1/tenant/audit/checkpoints", a.admin, nil), 200)
	require.NotEmpty(t, cps.items())
	require.NotContains(t, string(cps.Raw), other.id)
	for _, cp := range cps.items() {
		require.Equal(t, a.id, cp["chain"], "%s", cps.Raw)
	}

	// A file that is not the declared one is not sealed, and leaves no
	// object: the right one can then go up and be sealed; after the seal,
	// nothing more goes up. A changed upload URL writes nothing.
	ticket := declare(officer, aInc, content)
	item := ticket.str("item", "id")
	forged := bytes.ToUpper(content)
	u := ticket.str("upload_url")
	if i := strings.LastIndex(u, "sig="); i >= 0 && i+4 < len(u) {
		bad := []byte(u)
		bad[i+4] ^= 1
		require.Less(t, put(string(bad), content), 500)
	}
	require.GreaterOrEqual(t, put(strings.Replace(u, item, oItem, 1), content), 400, "another item's key under this URL's signature")
	require.Equal(t, 201, put(u, forged))
	requireProblem(t, b.do("POST", gov+"evidence/"+item+"/seal", officer, nil), 422, "evidence-hash-mismatch")
	require.Equal(t, "pending", ok(b.do("GET", gov+"evidence/"+item, officer, nil), 200).str("state"))
	require.Equal(t, 201, put(u, content), "the mismatched object was removed")
	ok(b.do("POST", gov+"evidence/"+item+"/seal", officer, nil), 200)
	require.Equal(t, 409, put(u, forged), "write-once after the seal")
	require.Equal(t, content, ok(b.do("GET", gov+"evidence/"+item+"/content", auditor, nil), 200).Raw)

	// Replays: an attestation sent twice is one decision; a release, a
	// seal, a close sent again are refused (above).
	for i := 0; i < 2; i++ {
		ok(b.do("POST", attest(itemOf("membership", a.learnerID)), a.admin, map[string]any{"decision": "keep", "note": "replayed"}), 200)
	}
	require.Equal(t, 1, b.count(`SELECT count(*) FROM plugin_governance.review_items WHERE tenant_id = $1 AND decision = 'keep'`, a.id))

	// Nobody revokes, through an access review, beyond what they hold: an
	// officer who may manage roles still cannot remove a role giving
	// what they lack, nor the admin's membership; the failures are
	// recorded with the kernel's reason, and the grants stay.
	ok(b.do("PUT", "/api/v1/tenant/roles/superuser", a.admin, map[string]any{"permissions": []string{"tenancy.member.remove", "tenancy.role.manage"}}), 200)
	ok(b.do("PUT", "/api/v1/tenant/roles/compliance_desk", a.admin, map[string]any{"permissions": append(append([]string{}, officerPerms...), "tenancy.role.manage")}), 200)
	camp := ok(b.do("POST", gov+"reviews", officer, map[string]any{"title": "Escalation"}), 201).str("id")
	var campItems []map[string]any
	for cursor := ""; ; {
		page := ok(b.do("GET", gov+"reviews/"+camp+"/items?limit=100"+cursor, officer, nil), 200)
		campItems = append(campItems, page.items()...)
		if page.str("next_cursor") == "" {
			break
		}
		cursor = "&cursor=" + page.str("next_cursor")
	}
	in := func(kind, id string) string {
		for _, it := range campItems {
			if it["grant_kind"] == kind && it["grant_id"] == id {
				return it["id"].(string)
			}
		}
		t.Fatalf("no %s grant %s in the campaign", kind, id)
		return ""
	}
	for _, it := range []string{in("custom_role", "superuser"), in("membership", a.adminID), in("role", a.adminID+"/admin")} {
		ok(b.do("POST", gov+"reviews/"+camp+"/items/"+it+"/attest", officer, map[string]any{"decision": "revoke"}), 200)
	}
	applied := ok(b.do("POST", gov+"reviews/"+camp+"/apply", officer, nil), 200)
	require.EqualValues(t, 0, applied.get("campaign", "revocations_verified"), "%s", applied.Raw)
	require.EqualValues(t, 3, applied.get("campaign", "revocations_failed"), "%s", applied.Raw)
	require.Contains(t, string(applied.Raw), "nobody revokes beyond what they hold")
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.roles WHERE tenant_id = $1 AND name = 'superuser'`, a.id))
	require.Contains(t, string(ok(b.do("GET", "/api/v1/tenant/members/"+a.adminID, a.admin, nil), 200).Raw), `"admin"`)
	ok(b.do("POST", gov+"reviews/"+camp+"/close", officer, nil), 200)

	// Retention racing new rows, after a policy change mid-way, never
	// deletes a held person's rows.
	_, err := b.pool.Exec(t.Context(), `SELECT plugin_telemetry.ensure_statement_partitions((now() AT TIME ZONE 'UTC')::date - 101, 2)`)
	require.NoError(t, err)
	statements := func(user string, n int) {
		_, err := b.pool.Exec(t.Context(), `INSERT INTO plugin_telemetry.statements (tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, duration_ms, purpose, policy_version, source, raw)
			SELECT $1::uuid, now() - interval '100 days', gen_random_uuid(), $3::uuid, now() - interval '100 days', 'http://adlnet.gov/expapi/verbs/experienced',
				'https://edulure.dev/xapi/activities/x', 0, 'analytics', 1, 'attack', '{}'::jsonb FROM generate_series(1, $2)`, a.id, n, user)
		assert.NoError(t, err)
	}
	held := a.learnerID
	statements(held, 10)
	statements(uuid.NewString(), 10)
	ok(b.do("PUT", gov+"retention/policies/telemetry/statements", officer, map[string]any{"period_days": 30, "action": "delete"}), 200)
	ok(b.do("POST", gov+"retention/holds", officer, map[string]any{"kind": "person", "subject_id": held, "reason": "Litigation"}), 201)
	dry := ok(b.do("POST", gov+"retention/dry-run", auditor, nil), 200)
	require.EqualValues(t, 10, dry.get("matched"), "%s", dry.Raw)
	ok(b.do("PUT", gov+"retention/policies/telemetry/statements", officer, map[string]any{"period_days": 3650, "action": "delete"}), 200)
	ex := ok(b.do("POST", gov+"retention/executions", officer, map[string]any{}), 201)
	require.EqualValues(t, 0, ex.get("affected"), "the policy the execution finds is the one it applies: %s", ex.Raw)
	require.NotEqual(t, dry.str("policy_hash"), ex.str("policy_hash"))
	ok(b.do("PUT", gov+"retention/policies/telemetry/statements", officer, map[string]any{"period_days": 30, "action": "delete"}), 200)
	// A hold is not placed while an execution runs (it read the holds
	// when it started): 409 retention-running, then placed.
	conn, err := b.pool.Acquire(t.Context())
	require.NoError(t, err)
	lockKey := `hashtextextended('governance.retention:' || $1, 0)`
	_, err = conn.Exec(t.Context(), `SELECT pg_advisory_lock(`+lockKey+`)`, a.id)
	require.NoError(t, err)
	requireProblem(t, b.do("POST", gov+"retention/holds", officer, map[string]any{"kind": "tenant", "reason": "During a run"}), 409, "retention-running")
	_, err = conn.Exec(t.Context(), `SELECT pg_advisory_unlock(`+lockKey+`)`, a.id)
	require.NoError(t, err)
	conn.Release()
	duringRun := ok(b.do("POST", gov+"retention/holds", officer, map[string]any{"kind": "tenant", "reason": "During a run"}), 201).str("id")
	ok(b.do("POST", gov+"retention/holds/"+duringRun+"/release", officer, nil), 200)
	heldRows := func() int {
		return b.count(`SELECT count(*) FROM plugin_telemetry.statements WHERE tenant_id = $1 AND user_id = $2`, a.id, held)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			statements(held, 1)
			statements(uuid.NewString(), 1)
		}
	}()
	ex = ok(b.do("POST", gov+"retention/executions", officer, map[string]any{}), 201)
	wg.Wait()
	require.Equal(t, "succeeded", ex.str("status"), "%s", ex.Raw)
	require.GreaterOrEqual(t, ex.get("affected").(float64), float64(10), "%s", ex.Raw)
	require.Equal(t, 20, heldRows(), "no held row deleted, whatever arrived meanwhile")

	// Two admins revoking each other through a review: the institution
	// keeps one.
	_, second := b.joinByInvitation(a, "second.admin@uni.test", "Second Admin")
	ok(b.do("PUT", "/api/v1/tenant/members/"+second+"/roles", a.admin, map[string]any{"roles": []string{"admin"}}), 200)
	second2 := b.login("second.admin@uni.test", "uni")
	mutual := ok(b.do("POST", gov+"reviews", a.admin, map[string]any{"title": "Mutual"}), 201).str("id")
	var mutualItems []map[string]any
	for cursor := ""; ; {
		page := ok(b.do("GET", gov+"reviews/"+mutual+"/items?limit=100"+cursor, a.admin, nil), 200)
		mutualItems = append(mutualItems, page.items()...)
		if page.str("next_cursor") == "" {
			break
		}
		cursor = "&cursor=" + page.str("next_cursor")
	}
	campItems = mutualItems
	ok(b.do("POST", gov+"reviews/"+mutual+"/items/"+in("membership", second)+"/attest", a.admin, map[string]any{"decision": "revoke"}), 200)
	ok(b.do("POST", gov+"reviews/"+mutual+"/items/"+in("membership", a.adminID)+"/attest", second2, map[string]any{"decision": "revoke"}), 200)
	applied = ok(b.do("POST", gov+"reviews/"+mutual+"/apply", a.admin, nil), 200)
	require.EqualValues(t, 1, applied.get("campaign", "revocations_verified"), "%s", applied.Raw)
	require.EqualValues(t, 1, applied.get("campaign", "revocations_failed"), "%s", applied.Raw)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.memberships WHERE tenant_id = $1 AND 'admin' = ANY(roles)`, a.id), "the institution keeps an admin")

	// The governance plugin's events replayed from the start of the log:
	// still one receipt per erasure, nothing else filed.
	replayBefore := b.govSnapshot(other.id)
	ok(b.do("POST", "/api/v1/events/replay", other.admin, map[string]any{"subscriber": "governance", "from_seq": 1}), 202)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.event_cursors WHERE kind = 'replay'"), "the replay is done")
		assert.Zero(c, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'governance' AND status = 'pending'"))
	}, patience, 50*time.Millisecond)
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'tenancy.events.replayed'", other.id))
	after := b.govSnapshot(other.id)
	// The replay's own audit entry is the only change.
	require.Equal(t, strings.Count(replayBefore, "\n"), strings.Count(after, "\n"))
	for i, line := range strings.Split(replayBefore, "\n") {
		if !strings.Contains(line, "kernel.audit_log") {
			require.Equal(t, line, strings.Split(after, "\n")[i])
		}
	}
}
