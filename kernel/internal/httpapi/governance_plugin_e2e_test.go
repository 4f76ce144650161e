package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
)

// The governance plugin as it ships (plugins/governance, its own module),
// with the privileged capabilities the operator allows it.
var governancePlugin = variant{name: "governance", version: "0.1.0", module: "plugins/governance"}

// TestGovernancePluginEndToEnd runs the governance plugin's binary in the kernel
// with messaging's and telemetry's: an admin delegates a compliance officer and an auditor
// role; evidence goes up through a signed URL once (a second write is a
// 409), is sealed against its SHA-256, read back verified with its chain
// of custody; retention over messaging's posts counts in a dry run what
// the execution then deletes, a legal hold keeps its space's posts, and
// the execution's record verifies against the kernel's
// /.well-known/jwks.json (and not once tampered with); an access review
// freezes the grants, refuses self-attestation and revokes through the
// kernel; a completed erasure gets a signed receipt naming no one; a
// tampered audit log opens an incident;
// another institution sees and loses none of it.
func TestGovernancePluginEndToEnd(t *testing.T) {
	t.Parallel()
	catcher := startSMTPCatcher(t)
	cfg := fmt.Sprintf(`{ smtp_host = %q, smtp_port = %d, smtp_security = "none" }`, catcher.host, catcher.port)
	b, _ := withPluginsEnv(t, append(append([]string{}, fastEvents...), fastPrivacy...), pluginBlock{variant: messagingPlugin, config: cfg},
		pluginBlock{variant: telemetryPlugin}, pluginBlock{variant: governancePlugin, allow: `"retention", "grants", "sign"`})
	a := b.institution("uni")
	other := b.institution("elsewhere")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}

	// Delegation: the instructor becomes compliance officer, the learner
	// auditor; the built-in roles hold governance's permissions by default.
	for id, roles := range map[string][]string{a.instructorID: {"instructor", "compliance_officer"}, a.learnerID: {"learner", "auditor"}} {
		ok(b.do("PUT", "/api/v1/tenant/members/"+id+"/roles", a.admin, map[string]any{"roles": roles}), 200)
	}
	officer, auditor := b.login("instructor@uni.test", "uni"), b.login("learner@uni.test", "uni")
	requireProblem(t, b.do("POST", "/api/v1/governance/incidents", auditor, map[string]any{"title": "x"}), 403, "permission-denied")

	// 1. Evidence, written once, hash-checked, with its custody.
	incident := ok(b.do("POST", "/api/v1/governance/incidents", officer, map[string]any{"title": "Exam leak"}), 201).str("id")
	content := []byte("proctoring log, 2026-11-30\n")
	sum := sha256.Sum256(content)
	ticket := ok(b.do("POST", "/api/v1/governance/incidents/"+incident+"/evidence", officer,
		map[string]any{"title": "Proctoring log", "content_type": "text/plain", "sha256": hex.EncodeToString(sum[:]), "size": len(content)}), 201)
	put := func(body []byte) *http.Response {
		req, err := http.NewRequest("PUT", b.url+ticket.str("upload_url"), bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "text/plain")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	require.Equal(t, 201, put(content).StatusCode)
	again := put([]byte("another file"))
	require.Equal(t, 409, again.StatusCode, "a second write of the same item is refused")
	require.Equal(t, "application/problem+json", again.Header.Get("Content-Type"))
	item := ticket.str("item", "id")
	ok(b.do("POST", "/api/v1/governance/evidence/"+item+"/seal", officer, nil), 200)
	requireProblem(t, b.do("POST", "/api/v1/governance/evidence/"+item+"/seal", officer, nil), 409, "evidence-sealed")
	dl := ok(b.do("GET", "/api/v1/governance/evidence/"+item+"/content", auditor, nil), 200)
	require.Equal(t, content, dl.Raw)
	require.True(t, ok(b.do("POST", "/api/v1/governance/evidence/"+item+"/verify", auditor, nil), 200).get("ok").(bool))
	custody := ok(b.do("GET", "/api/v1/governance/evidence/"+item, auditor, nil), 200).get("custody").([]any)
	require.Len(t, custody, 3)
	for i, want := range []string{"added by user:" + a.instructorID, "viewed by user:" + a.learnerID, "verified by user:" + a.learnerID} {
		c := custody[i].(map[string]any)
		require.Equal(t, want, c["action"].(string)+" by "+c["actor"].(string))
	}
	requireProblem(t, b.do("GET", "/api/v1/governance/evidence/"+item, other.admin, nil), 404, "not-found")

	// 2. Retention over messaging's posts and telemetry's statements.
	spaceOf := func(inst institution) string {
		var space string
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			for _, s := range b.do("GET", "/api/v1/spaces", inst.admin, nil).items() {
				if s["kind"] == "institution" {
					space = s["id"].(string)
				}
			}
			assert.NotEmpty(c, space)
		}, eventually, 20*time.Millisecond)
		return space
	}
	space, otherSpace := spaceOf(a), spaceOf(other)
	post := func(inst institution, space string, n int) {
		for i := 0; i < n; i++ {
			ok(b.do("POST", "/api/v1/spaces/"+space+"/posts", inst.admin, map[string]any{"body": fmt.Sprintf("Notice %d", i), "kind": "post"}), 201)
		}
	}
	post(a, space, 6)
	post(other, otherSpace, 4)
	_, err := b.pool.Exec(t.Context(), `UPDATE plugin_messaging.posts SET created_at = now() - interval '90 days'`)
	require.NoError(t, err)
	post(a, space, 2) // recent: kept
	// Statements stored 100 days ago, in their own day partition, of both
	// institutions (a partition holding another institution's statements
	// is not dropped: its rows are deleted one by one), and recent ones.
	_, err = b.pool.Exec(t.Context(), `SELECT plugin_telemetry.ensure_statement_partitions((now() AT TIME ZONE 'UTC')::date - 101, 2)`)
	require.NoError(t, err)
	statements := func(tenant string, n int, age string) {
		t.Helper()
		_, err := b.pool.Exec(t.Context(), `INSERT INTO plugin_telemetry.statements (tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, duration_ms, purpose, policy_version, source, raw)
			SELECT $1::uuid, now() - $3::interval, gen_random_uuid(), gen_random_uuid(), now() - $3::interval, 'http://adlnet.gov/expapi/verbs/experienced',
				'https://edulure.dev/xapi/activities/x', 0, 'analytics', 1, 'e2e', '{}'::jsonb FROM generate_series(1, $2)`, tenant, n, age)
		require.NoError(t, err)
	}
	statements(a.id, 30, "100 days")
	statements(other.id, 5, "100 days")
	statements(a.id, 3, "1 hour")

	classes := ok(b.do("GET", "/api/v1/governance/retention/classes", auditor, nil), 200)
	require.Contains(t, string(classes.Raw), `"plugin":"messaging","name":"posts"`)
	require.Contains(t, string(classes.Raw), `"plugin":"telemetry","name":"statements"`)
	ok(b.do("PUT", "/api/v1/governance/retention/policies/messaging/posts", officer, map[string]any{"period_days": 30, "action": "delete"}), 200)
	ok(b.do("PUT", "/api/v1/governance/retention/policies/telemetry/statements", officer, map[string]any{"period_days": 30, "action": "delete"}), 200)
	hold := ok(b.do("POST", "/api/v1/governance/retention/holds", officer, map[string]any{"kind": "space", "subject_id": space, "reason": "Inquiry into the space"}), 201).str("id")
	held := ok(b.do("POST", "/api/v1/governance/retention/dry-run", auditor, nil), 200)
	require.EqualValues(t, 0, held.get("matched"), "the space's posts are held, and telemetry, which cannot tell a space's statements apart, is suspended: %s", held.Raw)
	require.Equal(t, []any{hold}, held.get("results", "1", "suspended_by"), "%s", held.Raw)
	ok(b.do("POST", "/api/v1/governance/retention/holds/"+hold+"/release", officer, nil), 200)
	dry := ok(b.do("POST", "/api/v1/governance/retention/dry-run", auditor, nil), 200)
	require.EqualValues(t, 36, dry.get("matched"), "%s", dry.Raw)
	require.Equal(t, 6, b.count(`SELECT count(*) FROM plugin_messaging.posts WHERE tenant_id = $1 AND created_at < now() - interval '30 days'`, a.id), "a dry run changes nothing")
	ex := ok(b.do("POST", "/api/v1/governance/retention/executions", officer, map[string]any{}), 201)
	require.Equal(t, "succeeded", ex.str("status"), "%s", ex.Raw)
	require.EqualValues(t, 36, ex.get("matched"), "the execution does what the dry run counted")
	require.EqualValues(t, 36, ex.get("affected"))
	require.Equal(t, dry.str("policy_hash"), ex.str("policy_hash"))
	require.Equal(t, 2, b.count(`SELECT count(*) FROM plugin_messaging.posts WHERE tenant_id = $1`, a.id))
	require.Equal(t, 4, b.count(`SELECT count(*) FROM plugin_messaging.posts WHERE tenant_id = $1`, other.id), "another institution's posts are untouched")
	require.Equal(t, 3, b.count(`SELECT count(*) FROM plugin_telemetry.statements WHERE tenant_id = $1`, a.id))
	require.Equal(t, 5, b.count(`SELECT count(*) FROM plugin_telemetry.statements WHERE tenant_id = $1`, other.id), "another institution's statements are untouched")

	// The execution's record verifies offline against the published keys.
	jwks := b.do("GET", "/.well-known/jwks.json", "", nil)
	require.Equal(t, 200, jwks.Status)
	got := ok(b.do("GET", "/api/v1/governance/retention/executions/"+ex.str("id"), auditor, nil), 200)
	var sig sdk.Signature
	raw, _ := json.Marshal(got.get("signature"))
	require.NoError(t, json.Unmarshal(raw, &sig))
	payload := got.str("payload")
	claims, err := sdk.VerifySignature(jwks.Raw, sig, []byte(payload))
	require.NoError(t, err)
	require.Equal(t, "governance", claims.Plugin)
	_, err = sdk.VerifySignature(jwks.Raw, sig, []byte(strings.Replace(payload, `"affected":36`, `"affected":35`, 1)))
	require.ErrorIs(t, err, sdk.ErrSignature, "a tampered record does not verify")
	requireProblem(t, b.do("GET", "/api/v1/governance/retention/executions/"+ex.str("id"), other.admin, nil), 404, "not-found")
	require.Empty(t, b.do("GET", "/api/v1/governance/retention/executions", other.admin, nil).items())

	// 3. An access review through the kernel's grants.
	_, leaverID := b.joinByInvitation(a, "leaver@example.test", "Lee Vér")
	campaign := ok(b.do("POST", "/api/v1/governance/reviews", officer, map[string]any{"title": "Q4 2026"}), 201)
	items := []map[string]any{}
	for cursor := ""; ; {
		page := ok(b.do("GET", "/api/v1/governance/reviews/"+campaign.str("id")+"/items?limit=100"+cursor, auditor, nil), 200)
		items = append(items, page.items()...)
		if page.str("next_cursor") == "" {
			break
		}
		cursor = "&cursor=" + page.str("next_cursor")
	}
	require.EqualValues(t, len(items), campaign.get("grants"))
	find := func(kind, id string) string {
		for _, it := range items {
			if it["grant_kind"] == kind && it["grant_id"] == id {
				return it["id"].(string)
			}
		}
		t.Fatalf("no %s grant %s in the campaign: %v", kind, id, items)
		return ""
	}
	for _, u := range []string{a.adminID, a.instructorID, a.learnerID, leaverID} {
		find("membership", u)
	}
	base := "/api/v1/governance/reviews/" + campaign.str("id") + "/items/"
	requireProblem(t, b.do("POST", base+find("membership", a.instructorID)+"/attest", officer, map[string]any{"decision": "keep"}), 403, "self-attestation")
	ok(b.do("POST", base+find("membership", a.instructorID)+"/attest", a.admin, map[string]any{"decision": "keep"}), 200)
	ok(b.do("POST", base+find("membership", leaverID)+"/attest", officer, map[string]any{"decision": "revoke", "note": "left"}), 200)
	applied := ok(b.do("POST", "/api/v1/governance/reviews/"+campaign.str("id")+"/apply", a.admin, nil), 200)
	require.EqualValues(t, 1, applied.get("campaign", "revocations_verified"), "%s", applied.Raw)
	members := ok(b.do("GET", "/api/v1/tenant/members?limit=100", a.admin, nil), 200)
	require.NotContains(t, string(members.Raw), leaverID, "the revoked member is gone")
	closed := ok(b.do("POST", "/api/v1/governance/reviews/"+campaign.str("id")+"/close", officer, nil), 200)
	require.NotEmpty(t, closed.str("evidence_id"))
	report := ok(b.do("GET", "/api/v1/governance/evidence/"+closed.str("evidence_id")+"/content", auditor, nil), 200)
	var doc struct {
		Payload   json.RawMessage `json:"payload"`
		Signature sdk.Signature   `json:"signature"`
	}
	require.NoError(t, json.Unmarshal(report.Raw, &doc))
	_, err = sdk.VerifySignature(jwks.Raw, doc.Signature, doc.Payload)
	require.NoError(t, err, "the campaign report verifies against the kernel's keys")

	// 4. An erasure's signed receipt, naming no one.
	b.coolOff(a.admin, 0)
	_, goneID := b.joinByInvitation(a, "gone@example.test", "Gone Person")
	r := b.do("POST", "/api/v1/tenant/members/"+goneID+"/erasure", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	erasure := r.str("id")
	b.waitFor("/api/v1/tenant/erasures/"+erasure, a.admin, "completed")
	var receipt response
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		receipt = b.do("GET", "/api/v1/governance/erasures/receipts/"+erasure, auditor, nil)
		assert.Equal(c, 200, receipt.Status, "%s", receipt.Raw)
	}, eventually, 50*time.Millisecond)
	raw, _ = json.Marshal(receipt.get("signature"))
	var rsig sdk.Signature
	require.NoError(t, json.Unmarshal(raw, &rsig))
	_, err = sdk.VerifySignature(jwks.Raw, rsig, []byte(receipt.str("payload")))
	require.NoError(t, err, "the receipt verifies against the kernel's keys")
	require.NotContains(t, string(receipt.Raw), goneID)
	require.NotContains(t, string(receipt.Raw), "gone@example.test")
	requireProblem(t, b.do("GET", "/api/v1/governance/erasures/receipts/"+erasure, other.admin, nil), 404, "not-found")

	// The kernel's audit log has the plugin's entries (the receipt's is
	// written just after the receipt is stored: wait for it).
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var actions []string
		for _, e := range b.auditEntries(a.admin) {
			actions = append(actions, fmt.Sprint(e["action"]))
		}
		assert.Subset(c, actions, []string{"governance.evidence.add", "governance.retention.execute", "governance.review.apply", "governance.erasure.receipt"})
	}, eventually, 50*time.Millisecond)

	// 5. A row of the audit log changed in the database: the kernel's
	// verification reports it, and the plugin opens an incident with the
	// failure as evidence, in that institution only.
	b.tamper(`UPDATE kernel.audit_log SET action = 'tenancy.nothing.happened' WHERE chain = $1 AND seq = 1`, a.id)
	ok(b.do("POST", "/api/v1/admin/audit/checkpoints", b.operator(), nil), 200)
	var opened map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		opened = nil
		for _, it := range b.do("GET", "/api/v1/governance/incidents", auditor, nil).items() {
			if it["title"] == "Audit log verification failed" {
				opened = it
			}
		}
		assert.NotNil(c, opened)
	}, eventually, 50*time.Millisecond)
	detail := ok(b.do("GET", "/api/v1/governance/incidents/"+opened["id"].(string), auditor, nil), 200)
	require.Equal(t, "audit_verification", detail.str("evidence", "0", "kind"), "%s", detail.Raw)
	require.Empty(t, b.do("GET", "/api/v1/governance/incidents", other.admin, nil).items())
}
