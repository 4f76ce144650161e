package governance_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

func TestErasureReceipts(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := newInst(t), newInst(t)
	erasure := plugintest.NewID()
	data := map[string]any{
		"erasure_id": strings.ToUpper(erasure), "self": true, "started_at": time.Now().Add(-time.Minute).UTC(), "completed_at": time.Now().UTC(),
		"steps": []map[string]any{
			{"step": "kernel", "counts": []map[string]any{{"class": "users", "table": "users", "deleted": 1}}},
			{"step": "plugin:messaging", "counts": []map[string]any{{"class": "posts", "table": "posts", "anonymised": 12, "references": 3}}},
		},
		"a_field_the_receipt_does_not_know": "learner@example.test",
	}
	ev := plugintest.Event{ID: plugintest.NewEventID(), Type: governance.EventErasureCompleted, TenantID: a.id, Source: "kernel", Data: data}
	require.NoError(t, h.Deliver(t, ev))
	require.NoError(t, h.Deliver(t, ev), "a redelivery changes nothing")
	ev.ID = plugintest.NewEventID()
	require.NoError(t, h.Deliver(t, ev), "a second event of the same erasure changes nothing")
	require.NoError(t, h.Deliver(t, plugintest.Event{Type: governance.EventErasureCompleted, TenantID: a.id, Data: map[string]any{"erasure_id": "nope"}}),
		"an event without an erasure ID is dropped, not retried forever")

	var list sdk.Page[governance.Receipt]
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/erasures/receipts", nil), 200).JSON(t, &list)
	require.Len(t, list.Items, 1)
	var r governance.Receipt
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/erasures/receipts/"+erasure, nil), 200).JSON(t, &r)
	require.Len(t, r.Steps, 2)
	require.NotNil(t, r.Signature)
	claims, err := sdk.VerifySignature(h.JWKS(), *r.Signature, []byte(r.Payload))
	require.NoError(t, err)
	require.Equal(t, governance.SignPurposeReceipt, claims.Purpose)
	require.Contains(t, r.Payload, `"anonymised":12`)
	require.NotContains(t, r.Payload, "learner@example.test", "the receipt carries only what it knows")
	_, err = sdk.VerifySignature(h.JWKS(), *r.Signature, []byte(strings.Replace(r.Payload, `"anonymised":12`, `"anonymised":11`, 1)))
	require.ErrorIs(t, err, sdk.ErrSignature)

	problem(t, h.Do(b.admin, "GET", "/api/v1/governance/erasures/receipts/"+erasure, nil), 404, "")
	ok(t, h.Do(b.admin, "GET", "/api/v1/governance/erasures/receipts", nil), 200).JSON(t, &list)
	require.Empty(t, list.Items)
	problem(t, h.Do(a.learner, "GET", "/api/v1/governance/erasures/receipts", nil), 403, "permission-denied")

	// Pages.
	for range 3 {
		d := map[string]any{"erasure_id": plugintest.NewID(), "self": false, "completed_at": time.Now().UTC(), "steps": []any{}}
		require.NoError(t, h.Deliver(t, plugintest.Event{Type: governance.EventErasureCompleted, TenantID: a.id, Data: d}))
	}
	seen := map[string]bool{}
	cursor := ""
	for {
		var page sdk.Page[governance.Receipt]
		ok(t, h.Do(a.admin, "GET", "/api/v1/governance/erasures/receipts?limit=3"+cursor, nil), 200).JSON(t, &page)
		for _, it := range page.Items {
			require.False(t, seen[it.ErasureID])
			seen[it.ErasureID] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + page.NextCursor
	}
	require.Len(t, seen, 4)
}

func TestBillingAnomaliesFiledAsEvidence(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := newInst(t), newInst(t)
	ev := plugintest.Event{ID: plugintest.NewEventID(), Type: governance.EventBillingAnomaly, TenantID: a.id, Source: "commerce",
		Data: map[string]any{"anomaly_id": plugintest.NewID(), "kind": "amount_mismatch", "object_type": "order", "object_id": plugintest.NewID(), "detail": "paid 10.00, order says 12.00", "repaired": false}}
	require.NoError(t, h.Deliver(t, ev))
	require.NoError(t, h.Deliver(t, ev), "a redelivery files nothing twice")
	forged := ev
	forged.ID, forged.Source = plugintest.NewEventID(), "messaging"
	require.NoError(t, h.Deliver(t, forged), "another plugin's event of that type is not filed")

	var list sdk.Page[governance.EvidenceItem]
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/evidence?kind=billing_anomaly", nil), 200).JSON(t, &list)
	require.Len(t, list.Items, 1)
	require.Equal(t, ev.ID, list.Items[0].ID)
	require.Equal(t, "Billing anomaly: amount_mismatch", list.Items[0].Title)
	s := h.Stream(a.auditor, "GET", "/api/v1/governance/evidence/"+ev.ID+"/content")
	require.Equal(t, 200, s.Status)
	body, err := io.ReadAll(s)
	require.NoError(t, err)
	require.Contains(t, string(body), "paid 10.00, order says 12.00")
	ok(t, h.Do(b.admin, "GET", "/api/v1/governance/evidence?kind=billing_anomaly", nil), 200).JSON(t, &list)
	require.Empty(t, list.Items)
}

func TestAuditVerificationFailureOpensAnIncident(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := newInst(t), newInst(t)
	failure := func(tenant, source string) plugintest.Event {
		return plugintest.Event{ID: plugintest.NewEventID(), Type: governance.EventAuditVerificationFailed, TenantID: tenant, Source: source,
			Data: map[string]any{"chain": tenant, "reason": "entry 12 changed", "entries": 40, "broken_at_seq": 12}}
	}
	first := failure(a.id, "kernel")
	require.NoError(t, h.Deliver(t, first))
	require.NoError(t, h.Deliver(t, first), "a redelivery files nothing twice")
	require.NoError(t, h.Deliver(t, failure(a.id, "kernel")), "the hourly repeat joins the open incident")
	require.NoError(t, h.Deliver(t, failure(a.id, "probe")), "only the kernel reports the chain")
	var list sdk.Page[governance.Incident]
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/incidents", nil), 200).JSON(t, &list)
	require.Len(t, list.Items, 1)
	require.Equal(t, "Audit log verification failed", list.Items[0].Title)
	require.Contains(t, list.Items[0].Description, "entry 12 changed")
	var d governance.IncidentDetail
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/incidents/"+list.Items[0].ID, nil), 200).JSON(t, &d)
	require.Len(t, d.Evidence, 2)
	require.Equal(t, "audit_verification", d.Evidence[0].Kind)
	require.Equal(t, "stored", d.Evidence[0].State)

	// Once it is dealt with (closed), a new failure opens a new incident.
	ok(t, h.Do(a.officer, "POST", "/api/v1/governance/incidents/"+d.ID+"/close", nil), 200)
	require.NoError(t, h.Deliver(t, failure(a.id, "kernel")))
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/incidents", nil), 200).JSON(t, &list)
	require.Len(t, list.Items, 2)
	ok(t, h.Do(b.admin, "GET", "/api/v1/governance/incidents", nil), 200).JSON(t, &list)
	require.Empty(t, list.Items, "another institution's chain is its own")
}
