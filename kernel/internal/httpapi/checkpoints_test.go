package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/auditcheck"
	"github.com/edulure/edulure/kernel/internal/token"
)

// tamper runs sql as the database's superuser with triggers off, as an
// intruder with direct access to the database would.
func (b *testBundle) tamper(sql string, args ...any) {
	b.t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	require.NoError(b.t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, "SET LOCAL session_replication_role = replica")
	require.NoError(b.t, err)
	tag, err := tx.Exec(ctx, sql, args...)
	require.NoError(b.t, err)
	require.NotZero(b.t, tag.RowsAffected(), "the tampering changed nothing")
	require.NoError(b.t, tx.Commit(ctx))
}

// TestAuditCheckpoints: the kernel signs checkpoints of every chain that
// grew, served to the institution and verifiable offline with the
// published keys; a row changed directly in the database is caught by the
// next verification (and published as audit.verification.failed.v1), and a
// truncated chain, which still verifies on its own, by the comparison with
// its last checkpoint; a broken chain gets no new checkpoint; checkpoints
// are append-only.
func TestAuditCheckpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	op := b.operator()
	a, c := b.institution("uni"), b.institution("college")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	results := func() map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]any{}
		for _, it := range ok(b.do("POST", "/api/v1/admin/audit/checkpoints", op, nil), 200).items() {
			out[it["chain"].(string)] = it
		}
		return out
	}
	ok(b.do("POST", "/api/v1/tenant/invitations", a.admin, map[string]any{"email": "new@uni.test", "roles": []string{"learner"}}), 201)
	first := results()
	require.Equal(t, true, first[a.id]["valid"], "%v", first[a.id])
	require.NotZero(t, first[a.id]["signed"])
	require.Equal(t, true, first["platform"]["valid"])
	again := results()
	require.Nil(t, again[a.id]["signed"], "a chain that did not grow gets no new checkpoint")

	// The institution's checkpoints, verifiable offline with the JWKS.
	page := ok(b.do("GET", "/api/v1/tenant/audit/checkpoints", a.admin, nil), 200).items()
	require.Len(t, page, 1)
	cp := page[0]
	require.Equal(t, a.id, cp["chain"])
	ok(b.do("GET", "/api/v1/tenant/audit/checkpoints", a.learner, nil), 403)
	var jwks struct {
		Keys []struct{ Kid, X string } `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(ok(b.do("GET", "/.well-known/jwks.json", "", nil), 200).Raw, &jwks))
	var vkey string
	for _, k := range jwks.Keys {
		if k.Kid == cp["key_id"] {
			pub, err := base64.RawURLEncoding.DecodeString(k.X)
			require.NoError(t, err)
			vkey, err = token.NoteVerifierKey(k.Kid, ed25519.PublicKey(pub))
			require.NoError(t, err)
		}
	}
	require.Equal(t, cp["verifier_key"], vkey, "the verifier key is made from the published key")
	chain, seq, hash, _, err := auditcheck.VerifyNote([]byte(cp["note"].(string)), vkey)
	require.NoError(t, err)
	require.Equal(t, a.id, chain)
	require.EqualValues(t, cp["seq"], seq)
	require.Equal(t, cp["hash"], hash)
	forged := []byte(cp["note"].(string))
	forged[len("edulure audit checkpoint\n")+2] ^= 1 // a character of the chain
	_, _, _, _, err = auditcheck.VerifyNote(forged, vkey)
	require.Error(t, err, "a changed note does not verify")

	// A row changed directly in the database.
	b.tamper(`UPDATE kernel.audit_log SET action = 'tenancy.nothing.happened' WHERE chain = $1 AND seq = 1`, a.id)
	// c's chain grows, then its newest entries vanish: the rest still
	// verifies on its own, but not against the checkpoint.
	ok(b.do("POST", "/api/v1/tenant/invitations", c.admin, map[string]any{"email": "one@college.test", "roles": []string{"learner"}}), 201)
	signed := results()[c.id]["signed"]
	require.NotNil(t, signed)
	b.tamper(`DELETE FROM kernel.audit_log WHERE chain = $1 AND seq >= $2`, c.id, signed)
	solo := ok(b.do("GET", "/api/v1/tenant/audit/verify", c.admin, nil), 200)
	require.Equal(t, true, solo.get("valid"), "the truncated chain verifies on its own: %s", solo.Raw)

	after := results()
	require.Equal(t, false, after[a.id]["valid"])
	require.Contains(t, after[a.id]["reason"], "does not match its hash")
	require.EqualValues(t, 1, after[a.id]["broken_at_seq"])
	require.Equal(t, false, after[c.id]["valid"])
	require.Contains(t, after[c.id]["reason"], "truncated")
	require.Nil(t, after[c.id]["signed"], "a broken chain gets no new checkpoint")
	r := ok(b.do("GET", "/api/v1/tenant/audit/checkpoints/verify", c.admin, nil), 200)
	require.Equal(t, false, r.get("valid"))
	require.Contains(t, r.str("reason"), "truncated")

	// Each failure is an event, for alerting.
	for _, tenant := range []string{a.id, c.id} {
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			assert.GreaterOrEqual(ct, b.count(`SELECT count(*) FROM kernel.events WHERE type = 'audit.verification.failed.v1' AND tenant_id = $1`, tenant), 1)
		}, patience, 50*time.Millisecond)
	}
	require.GreaterOrEqual(t, b.count(`SELECT count(*) FROM kernel.events WHERE type = 'audit.checkpoint.signed.v1' AND tenant_id = $1`, a.id), 1)

	// Checkpoints are append-only.
	_, err = b.pool.Exec(context.Background(), `UPDATE kernel.audit_checkpoints SET seq = seq + 1`)
	require.ErrorContains(t, err, "append-only")
	_, err = b.pool.Exec(context.Background(), `DELETE FROM kernel.audit_checkpoints`)
	require.ErrorContains(t, err, "append-only")
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.audit_checkpoints`).Scan(&n))
	require.NotZero(t, n)
}
