package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/seal"
)

// loginAs logs in with a password and returns the whole answer, which may be
// tokens, an MFA challenge or a problem.
func (b *testBundle) loginAs(email, pw, tenant string) response {
	b.t.Helper()
	body := map[string]any{"email": email, "password": pw}
	if tenant != "" {
		body["tenant"] = tenant
	}
	return b.do("POST", "/api/v1/auth/login", "", body)
}

// requireTokens asserts a completed login: tokens, no challenge.
func requireTokens(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, 200, r.Status, "body: %s", r.Raw)
	require.NotEmpty(t, r.str("access_token"), "body: %s", r.Raw)
	require.NotEmpty(t, r.str("refresh_token"), "body: %s", r.Raw)
	require.Equal(t, "Bearer", r.str("token_type"))
	require.Equal(t, false, r.get("mfa_required"), "body: %s", r.Raw)
}

// requireChallenge asserts a login that stopped at the second factor.
func requireChallenge(t *testing.T, r response) string {
	t.Helper()
	require.Equal(t, 200, r.Status, "body: %s", r.Raw)
	require.Equal(t, true, r.get("mfa_required"), "body: %s", r.Raw)
	require.True(t, strings.HasPrefix(r.str("mfa_token"), "edm_"), "body: %s", r.Raw)
	require.Nil(t, r.get("access_token"), "body: %s", r.Raw)
	require.Nil(t, r.get("refresh_token"), "body: %s", r.Raw)
	return r.str("mfa_token")
}

// requireFieldError asserts a 422 naming field among its errors.
func requireFieldError(t *testing.T, r response, field string) {
	t.Helper()
	requireProblem(t, r, 422, "invalid-request")
	errs, _ := r.get("errors").([]any)
	var fields []string
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok {
			f, _ := m["field"].(string)
			fields = append(fields, f)
		}
	}
	require.Contains(t, fields, field, "body: %s", r.Raw)
}

// wrongTOTP returns a six-digit code the kernel will not accept now.
func wrongTOTP(t *testing.T, secret string) string {
	t.Helper()
	now := time.Now()
	near := map[string]bool{}
	for off := -3; off <= 3; off++ {
		near[totpCode(t, secret, now.Add(time.Duration(off)*30*time.Second))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333", "444444", "555555", "666666", "777777", "888888"} {
		if !near[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// resetToken reads the newest password-reset token sent to email from the
// outbox or the event log, once the request's background work is done, and
// opens it as a subscriber receives it.
func (b *testBundle) resetToken(email string) string {
	b.t.Helper()
	b.kernel.API.Wait()
	var id, typ string
	var data []byte
	err := b.pool.QueryRow(context.Background(), `SELECT id::text, type, data FROM (SELECT id, type, tenant_id, data, occurred_at FROM kernel.outbox UNION ALL SELECT id, type, tenant_id, data, occurred_at FROM kernel.events WHERE source = 'kernel') AS ev
		WHERE type = 'identity.password_reset.requested.v1' AND data->>'email' = $1 ORDER BY id DESC LIMIT 1`, email).Scan(&id, &typ, &data)
	require.NoError(b.t, err)
	return b.eventSecret(id, typ, data, "token", "edp_")
}

// eventSecret opens a sealed field of a kernel event, as the kernel does for
// delivery, and checks the plain value's prefix.
func (b *testBundle) eventSecret(id, typ string, data []byte, field, prefix string) string {
	b.t.Helper()
	sealer, err := seal.New(b.kernel.Config.SecretKey)
	require.NoError(b.t, err)
	var stored map[string]any
	require.NoError(b.t, json.Unmarshal(data, &stored))
	require.True(b.t, strings.HasPrefix(fmt.Sprint(stored[field]), outbox.SealedPrefix), "%s of %s is stored sealed: %s", field, typ, data)
	opened, err := outbox.Open(sealer, id, typ, data)
	require.NoError(b.t, err)
	var plain map[string]any
	require.NoError(b.t, json.Unmarshal(opened, &plain))
	tok, _ := plain[field].(string)
	require.True(b.t, strings.HasPrefix(tok, prefix), "%s %q", field, tok)
	return tok
}

// jwtPart decodes the header (0) or the claims (1) of a JWT.
func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	j, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(j)
}
