package governance_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

// TestErasureReceiptVerification: the kernel's verification (an export of
// the erased person after every step) is signed into the receipt, field by
// field; a source that still held rows or could not be checked is never
// signed as empty, whatever verified_empty the event claims; a receipt of
// an event without a verification says so (null, no verified_empty).
func TestErasureReceiptVerification(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newInst(t)
	deliver := func(verification any) governance.Receipt {
		t.Helper()
		id := plugintest.NewID()
		data := map[string]any{"erasure_id": id, "self": false, "completed_at": time.Now().UTC(), "steps": []any{}}
		if verification != nil {
			data["verification"] = verification
		}
		ev := plugintest.Event{ID: plugintest.NewEventID(), Type: governance.EventErasureCompleted, TenantID: a.id, Source: "kernel", Data: data}
		require.NoError(t, h.Deliver(t, ev))
		require.NoError(t, h.Deliver(t, ev), "a redelivery changes nothing")
		var r governance.Receipt
		ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/erasures/receipts/"+id, nil), 200).JSON(t, &r)
		_, err := sdk.VerifySignature(h.JWKS(), *r.Signature, []byte(r.Payload))
		require.NoError(t, err)
		return r
	}
	doc := func(r governance.Receipt) governance.ReceiptDocument {
		var d governance.ReceiptDocument
		require.NoError(t, json.Unmarshal([]byte(r.Payload), &d))
		return d
	}
	checked := time.Now().UTC().Truncate(time.Second)

	empty := deliver(map[string]any{"verified_empty": true, "checked_at": checked, "sources": []any{
		map[string]any{"source": "kernel", "rows": 0, "objects": 0, "classes": []any{}},
		map[string]any{"source": "messaging", "rows": 0, "objects": 0, "classes": []any{}, "user_id": "0190a0a0-0000-7000-8000-000000000001"},
	}})
	require.NotNil(t, empty.VerifiedEmpty)
	require.True(t, *empty.VerifiedEmpty)
	d := doc(empty)
	require.NotNil(t, d.Verification)
	require.True(t, d.Verification.VerifiedEmpty)
	require.Len(t, d.Verification.Sources, 2)
	require.True(t, checked.Equal(d.Verification.CheckedAt))
	require.NotContains(t, empty.Payload, "0190a0a0-0000-7000-8000-000000000001", "only the fields the receipt knows")

	left := deliver(map[string]any{"verified_empty": true, "checked_at": checked, "sources": []any{
		map[string]any{"source": "probe", "rows": 2, "objects": 0, "classes": []any{map[string]any{"class": "notes", "table": "notes", "rows": 2, "objects": 0}}},
	}})
	require.False(t, *left.VerifiedEmpty, "rows left are never signed as empty")
	require.Equal(t, int64(2), doc(left).Verification.Sources[0].Classes[0].Rows)

	failed := deliver(map[string]any{"verified_empty": true, "checked_at": checked, "sources": []any{
		map[string]any{"source": "courses", "rows": 0, "objects": 0, "classes": []any{}, "error": "plugin unavailable"},
	}})
	require.False(t, *failed.VerifiedEmpty, "a source not checked is not verified")

	old := deliver(nil)
	require.Nil(t, old.VerifiedEmpty)
	require.Contains(t, old.Payload, `"verification":null`)

	// The two erasures not verified empty are in one incident, each with
	// its signed receipt as evidence; the others opened none.
	var incidents sdk.Page[governance.Incident]
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/incidents", nil), 200).JSON(t, &incidents)
	require.Len(t, incidents.Items, 1)
	require.Equal(t, "Erasure not verified empty", incidents.Items[0].Title)
	var detail governance.IncidentDetail
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/incidents/"+incidents.Items[0].ID, nil), 200).JSON(t, &detail)
	require.Len(t, detail.Evidence, 2)
	filed := map[string]bool{}
	for _, item := range detail.Evidence {
		require.Equal(t, "erasure_verification", item.Kind)
		require.Equal(t, "stored", item.State)
		filed[item.ID] = true
		res := ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/evidence/"+item.ID+"/content", nil), 200)
		var content struct {
			Type      string          `json:"type"`
			Receipt   json.RawMessage `json:"receipt"`
			Signature sdk.Signature   `json:"signature"`
		}
		res.JSON(t, &content)
		require.Equal(t, governance.ErasureNotEmptyDocumentType, content.Type)
		_, err := sdk.VerifySignature(h.JWKS(), content.Signature, content.Receipt)
		require.NoError(t, err, "the receipt in the evidence verifies")
	}
	require.Equal(t, map[string]bool{left.ErasureID: true, failed.ErasureID: true}, filed)
	// The other institution sees none of it.
	var others sdk.Page[governance.Incident]
	ok(t, h.Do(newInst(t).auditor, "GET", "/api/v1/governance/incidents", nil), 200).JSON(t, &others)
	require.Empty(t, others.Items)
}
