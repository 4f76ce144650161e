package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestTOTPEnrolmentAndLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("totp")
	const email = "learner@totp.test"

	// Confirming before starting enrolment is a conflict, not a 500.
	r := b.do("POST", "/api/v1/me/mfa/totp/confirm", inst.learner, map[string]any{"code": "123456"})
	requireProblem(t, r, 409, "mfa-not-enrolled")

	r = b.do("POST", "/api/v1/me/mfa/totp", inst.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	secret := r.str("secret")
	require.NotEmpty(t, secret)
	require.True(t, strings.HasPrefix(r.str("otpauth_url"), "otpauth://totp/"), r.str("otpauth_url"))
	require.Contains(t, r.str("otpauth_url"), "secret="+secret)
	require.Contains(t, r.str("otpauth_url"), "issuer=Edulure")

	r = b.do("POST", "/api/v1/me/mfa/totp/confirm", inst.learner, map[string]any{})
	requireFieldError(t, r, "code")
	r = b.do("POST", "/api/v1/me/mfa/totp/confirm", inst.learner, map[string]any{"code": wrongTOTP(t, secret)})
	requireProblem(t, r, 401, "invalid-mfa-code")
	// A failed confirmation leaves MFA off: login still gives tokens.
	requireTokens(t, b.loginAs(email, password, ""))

	r = b.do("POST", "/api/v1/me/mfa/totp/confirm", inst.learner, map[string]any{"code": totpCode(t, secret, time.Now())})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	raw, _ := r.get("recovery_codes").([]any)
	require.Len(t, raw, 10)
	recovery := make([]string, 0, len(raw))
	seen := map[string]bool{}
	for _, c := range raw {
		s := c.(string)
		require.Regexp(t, `^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`, s)
		require.False(t, seen[s], "duplicate recovery code %s", s)
		seen[s] = true
		recovery = append(recovery, s)
	}

	r = b.do("GET", "/api/v1/me", inst.learner, nil)
	require.Equal(t, true, r.get("user", "mfa_enabled"))
	r = b.do("POST", "/api/v1/me/mfa/totp/confirm", inst.learner, map[string]any{"code": totpCode(t, secret, time.Now())})
	requireProblem(t, r, 409, "mfa-already-enabled")
	// Starting again would replace the enrolled authenticator.
	r = b.do("POST", "/api/v1/me/mfa/totp", inst.learner, nil)
	requireProblem(t, r, 409, "mfa-already-enabled")

	// A password alone no longer logs in.
	mfaToken := requireChallenge(t, b.loginAs(email, password, "totp"))
	require.Nil(t, b.loginAs(email, password, "totp").get("mfa_enrolment_required"))

	// The confirmation spent the current step: use the next one.
	next := totpCode(t, secret, time.Now().Add(30*time.Second))
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": next})
	requireTokens(t, r)
	require.Equal(t, "totp", r.str("tenant", "slug"))
	require.Nil(t, r.get("recovery_codes"), "recovery codes are only shown at enrolment")
	me := b.do("GET", "/api/v1/me", r.str("access_token"), nil)
	require.Equal(t, 200, me.Status, "%s", me.Raw)
	require.Equal(t, true, me.get("mfa"))

	// A challenge is spent once it succeeded.
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": next})
	requireProblem(t, r, 401, "invalid-mfa-token")

	// The same code on a fresh challenge is a replay.
	mfaToken = requireChallenge(t, b.loginAs(email, password, "totp"))
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{name: "replayed code", body: map[string]any{"code": next}, status: 401, code: "invalid-mfa-code"},
		{name: "wrong code", body: map[string]any{"code": wrongTOTP(t, secret)}, status: 401, code: "invalid-mfa-code"},
		{name: "short code", body: map[string]any{"code": "12345"}, status: 401, code: "invalid-mfa-code"},
		{name: "unknown recovery code", body: map[string]any{"recovery_code": "aaaa-bbbb-cccc"}, status: 401, code: "invalid-recovery-code"},
		{name: "both code and recovery code", body: map[string]any{"code": next, "recovery_code": recovery[0]}, status: 422, code: "invalid-request"},
		{name: "neither", body: map[string]any{}, status: 422, code: "invalid-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["mfa_token"] = mfaToken
			r := b.do("POST", "/api/v1/auth/mfa/verify", "", tc.body)
			requireProblem(t, r, tc.status, tc.code)
		})
	}

	// A recovery code works (on the same challenge, after failures) once.
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "recovery_code": recovery[0]})
	requireTokens(t, r)
	mfaToken = requireChallenge(t, b.loginAs(email, password, "totp"))
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "recovery_code": recovery[0]})
	requireProblem(t, r, 401, "invalid-recovery-code")
	// Recovery codes are forgiving about case and dashes.
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "recovery_code": strings.ToUpper(strings.ReplaceAll(recovery[1], "-", ""))})
	requireTokens(t, r)

	// Five wrong codes exhaust a challenge: even a right code is then refused.
	mfaToken = requireChallenge(t, b.loginAs(email, password, "totp"))
	bad := wrongTOTP(t, secret)
	for range 5 {
		r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": bad})
		requireProblem(t, r, 401, "invalid-mfa-code")
	}
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "recovery_code": recovery[2]})
	requireProblem(t, r, 401, "invalid-mfa-token")

	// New recovery codes replace the old ones; turning MFA off needs a second
	// factor and brings back password-only logins.
	requireProblem(t, b.do("POST", "/api/v1/me/mfa/recovery-codes", inst.learner, map[string]any{"code": bad}), 401, "invalid-mfa-code")
	r = b.do("POST", "/api/v1/me/mfa/recovery-codes", inst.learner, map[string]any{"recovery_code": recovery[3]})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	fresh, _ := r.get("recovery_codes").([]any)
	require.Len(t, fresh, 10)
	requireProblem(t, b.do("POST", "/api/v1/me/mfa/disable", inst.learner, map[string]any{"recovery_code": recovery[4]}), 401, "invalid-recovery-code")
	requireProblem(t, b.do("POST", "/api/v1/me/mfa/disable", inst.learner, map[string]any{}), 422, "invalid-request")
	r = b.do("POST", "/api/v1/me/mfa/disable", inst.learner, map[string]any{"recovery_code": fresh[0]})
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	requireTokens(t, b.loginAs(email, password, "totp"))
	requireProblem(t, b.do("POST", "/api/v1/me/mfa/disable", inst.learner, map[string]any{"recovery_code": fresh[1]}), 409, "mfa-not-enabled")
}

func TestTenantRequiredMFA(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("strict")

	r := b.do("PATCH", "/api/v1/tenant", inst.admin, map[string]any{"mfa_required_roles": []string{"no-such-role"}})
	requireFieldError(t, r, "mfa_required_roles.0")
	r = b.do("PATCH", "/api/v1/tenant", inst.learner, map[string]any{"mfa_required_roles": []string{}})
	requireProblem(t, r, 403, "permission-denied")
	r = b.do("PATCH", "/api/v1/tenant", inst.admin, map[string]any{"mfa_required_roles": []string{"instructor"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, []any{"instructor"}, r.get("mfa_required_roles"))

	for _, tc := range []struct {
		name, email, tenant string
		wantMFA             bool
	}{
		{name: "instructor naming the institution", email: "instructor@strict.test", tenant: "strict", wantMFA: true},
		{name: "instructor with the only institution implied", email: "instructor@strict.test", wantMFA: true},
		{name: "learner", email: "learner@strict.test", tenant: "strict"},
		{name: "admin", email: "admin@strict.test", tenant: "strict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.loginAs(tc.email, password, tc.tenant)
			if !tc.wantMFA {
				requireTokens(t, r)
				return
			}
			requireChallenge(t, r)
			require.Equal(t, true, r.get("mfa_enrolment_required"), "%s", r.Raw)
		})
	}

	mfaToken := requireChallenge(t, b.loginAs("instructor@strict.test", password, "strict"))
	// Nothing is enrolled yet: neither a code nor a recovery code can pass.
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": "123456"})
	requireProblem(t, r, 409, "mfa-not-enrolled")
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "recovery_code": "aaaa-bbbb-cccc"})
	requireProblem(t, r, 409, "mfa-not-enrolled")
	r = b.do("POST", "/api/v1/auth/mfa/setup", "", map[string]any{"mfa_token": "edm_not-a-real-token"})
	requireProblem(t, r, 401, "invalid-mfa-token")

	r = b.do("POST", "/api/v1/auth/mfa/setup", "", map[string]any{"mfa_token": mfaToken})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	secret := r.str("secret")
	require.NotEmpty(t, secret)
	require.Contains(t, r.str("otpauth_url"), "instructor@strict.test")

	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": wrongTOTP(t, secret)})
	requireProblem(t, r, 401, "invalid-mfa-code")
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": totpCode(t, secret, time.Now())})
	requireTokens(t, r)
	require.Len(t, r.get("recovery_codes"), 10)
	require.Equal(t, "strict", r.str("tenant", "slug"))
	me := b.do("GET", "/api/v1/me", r.str("access_token"), nil)
	require.Equal(t, 200, me.Status, "%s", me.Raw)
	require.Equal(t, true, me.get("mfa"))
	require.Equal(t, true, me.get("user", "mfa_enabled"))

	// Enrolled now: the next login asks for a code, not for enrolment, and a
	// password alone cannot replace the authenticator.
	r = b.loginAs("instructor@strict.test", password, "strict")
	mfaToken = requireChallenge(t, r)
	require.Nil(t, r.get("mfa_enrolment_required"), "%s", r.Raw)
	r = b.do("POST", "/api/v1/auth/mfa/setup", "", map[string]any{"mfa_token": mfaToken})
	requireProblem(t, r, 409, "mfa-already-enabled")
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": totpCode(t, secret, time.Now().Add(30*time.Second))})
	requireTokens(t, r)
}

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.institution("fresh")
	first := b.loginAs("learner@fresh.test", password, "fresh")
	requireTokens(t, first)
	access1, refresh1 := first.str("access_token"), first.str("refresh_token")

	r := b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh1})
	requireTokens(t, r)
	access2, refresh2 := r.str("access_token"), r.str("refresh_token")
	require.NotEqual(t, refresh1, refresh2)
	require.NotEqual(t, access1, access2)
	require.Equal(t, first.str("session_id"), r.str("session_id"), "a refresh stays in its session")
	require.Equal(t, "fresh", r.str("tenant", "slug"))
	require.Equal(t, []any{"learner"}, r.get("tenant", "roles"))
	for _, tok := range []string{access1, access2} {
		me := b.do("GET", "/api/v1/me", tok, nil)
		require.Equal(t, 200, me.Status, "%s", me.Raw)
	}

	r = b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh2})
	requireTokens(t, r)
	refresh3 := r.str("refresh_token")

	// Someone replays a spent token: the whole family dies.
	r = b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh1})
	requireProblem(t, r, 401, "refresh-token-reused")
	r = b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh3})
	requireProblem(t, r, 401, "session-revoked")
	for _, tok := range []string{access1, access2} {
		requireProblem(t, b.do("GET", "/api/v1/me", tok, nil), 401, "session-revoked")
	}

	// Another session of the same user is untouched.
	other := b.loginAs("learner@fresh.test", password, "fresh")
	requireTokens(t, other)
	requireTokens(t, b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": other.str("refresh_token")}))

	for _, tc := range []struct {
		name, token string
	}{
		{name: "empty", token: ""},
		{name: "no prefix", token: "abc"},
		{name: "unknown", token: "edr_" + strings.Repeat("x", 40)},
		{name: "too long", token: "edr_" + strings.Repeat("x", 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": tc.token})
			requireProblem(t, r, 401, "invalid-refresh-token")
		})
	}
}

func TestSessionsAndLogout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("sess") // inst.learner is the learner's first session
	s1 := b.loginAs("learner@sess.test", password, "sess")
	requireTokens(t, s1)
	s2 := b.loginAs("learner@sess.test", password, "sess")
	requireTokens(t, s2)
	tok1 := s1.str("access_token")

	r := b.do("GET", "/api/v1/me/sessions", tok1, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	items := r.items()
	require.Len(t, items, 3)
	var current []string
	for _, it := range items {
		if it["current"] == true {
			current = append(current, it["id"].(string))
		}
		require.Equal(t, "127.0.0.1", it["ip"])
		require.NotEmpty(t, it["user_agent"])
		require.Equal(t, inst.id, it["tenant_id"])
		require.NotContains(t, it, "user_id")
	}
	require.Equal(t, []string{s1.str("session_id")}, current)

	// Revoking one session by ID; another user's session is not found.
	r = b.do("DELETE", "/api/v1/me/sessions/"+s2.str("session_id"), tok1, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/me", s2.str("access_token"), nil), 401, "session-revoked")
	r = b.do("DELETE", "/api/v1/me/sessions/"+s2.str("session_id"), tok1, nil)
	requireProblem(t, r, 404, "not-found")
	adminSession := b.do("GET", "/api/v1/me", inst.admin, nil).str("session_id")
	require.NotEmpty(t, adminSession)
	r = b.do("DELETE", "/api/v1/me/sessions/"+adminSession, tok1, nil)
	requireProblem(t, r, 404, "not-found")
	require.Equal(t, 200, b.do("GET", "/api/v1/me", inst.admin, nil).Status)

	// Revoking all others keeps only this one.
	r = b.do("DELETE", "/api/v1/me/sessions", tok1, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, float64(1), r.get("revoked"))
	requireProblem(t, b.do("GET", "/api/v1/me", inst.learner, nil), 401, "session-revoked")
	r = b.do("GET", "/api/v1/me/sessions", tok1, nil)
	require.Len(t, r.items(), 1)
	require.Equal(t, true, r.items()[0]["current"])

	r = b.do("POST", "/api/v1/auth/logout", tok1, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/me", tok1, nil), 401, "session-revoked")
	requireProblem(t, b.do("POST", "/api/v1/auth/logout", tok1, nil), 401, "session-revoked")
	r = b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": s1.str("refresh_token")})
	requireProblem(t, r, 401, "session-revoked")
}

// A signed-in person changes their password with the current one: their
// other sessions are signed out, this one stays, the old password no
// longer works, and the kernel publishes the event the messaging plugin
// emails. A wrong current password counts as a failed login.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("chpw") // inst.learner is another session of the learner
	s1 := b.loginAs("learner@chpw.test", password, "chpw")
	tok := s1.str("access_token")
	const next = "a-Different-horse-42"

	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"no current password", map[string]any{"new_password": next}, "current_password"},
		{"a weak new one", map[string]any{"current_password": password, "new_password": "password1"}, "new_password"},
		{"the same again", map[string]any{"current_password": password, "new_password": password}, "new_password"},
		{"a wrong current one", map[string]any{"current_password": "not-the-Password-7", "new_password": next}, "current_password"},
		{"NUL", map[string]any{"current_password": password, "new_password": "abc\u0000defGHI123"}, "new_password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := b.do("POST", "/api/v1/me/password", tok, c.body)
			requireProblem(t, r, 422, "invalid-request")
			require.Contains(t, string(r.Raw), c.field)
		})
	}
	require.Equal(t, 1, b.count(`SELECT failed_logins FROM kernel.users WHERE email = 'learner@chpw.test'`), "the wrong one counted")
	// API keys cannot change anyone's password.
	key := b.do("POST", "/api/v1/tenant/apikeys", inst.admin, map[string]any{"name": "k", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 201, key.Status, "%s", key.Raw)
	require.Equal(t, 403, b.do("POST", "/api/v1/me/password", key.str("key"), map[string]any{"current_password": password, "new_password": next}).Status)

	r := b.do("POST", "/api/v1/me/password", tok, map[string]any{"current_password": password, "new_password": next})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EqualValues(t, 1, r.get("sessions_revoked"))
	require.Equal(t, 200, b.do("GET", "/api/v1/me", tok, nil).Status, "this session stays")
	requireProblem(t, b.do("GET", "/api/v1/me", inst.learner, nil), 401, "session-revoked")
	requireProblem(t, b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "learner@chpw.test", "password": password}), 401, "bad-credentials")
	require.Equal(t, 200, b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "learner@chpw.test", "password": next}).Status)
	require.Zero(t, b.count(`SELECT failed_logins FROM kernel.users WHERE email = 'learner@chpw.test'`))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.audit_log WHERE action = 'identity.password.changed'`))
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.outbox WHERE type = 'identity.password.changed.v1' AND tenant_id IS NULL`)+
		b.count(`SELECT count(*) FROM kernel.events WHERE type = 'identity.password.changed.v1' AND tenant_id IS NULL`))
	require.Zero(t, b.count(`SELECT count(*) FROM kernel.events WHERE type = 'identity.password.changed.v1' AND data::text LIKE '%'||$1||'%'`, next),
		"the password is in no event")
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("reset")
	const email = "learner@reset.test"
	const newPassword = "purple-Quartz-lantern-71"

	known := b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": email})
	require.Equal(t, 202, known.Status, "%s", known.Raw)
	unknown := b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "ghost@reset.test"})
	require.Equal(t, 202, unknown.Status, "%s", unknown.Raw)
	require.Equal(t, known.Body, unknown.Body, "the answer must not reveal whether the account exists")
	b.kernel.API.Wait() // the work behind the answers
	var ghostEvents int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT id, type, tenant_id, data, occurred_at FROM kernel.outbox UNION ALL SELECT id, type, tenant_id, data, occurred_at FROM kernel.events WHERE source = 'kernel') AS ev WHERE data->>'email' = 'ghost@reset.test'`).Scan(&ghostEvents))
	require.Zero(t, ghostEvents)
	requireFieldError(t, b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "not-an-email"}), "email")

	// Only the newest token works.
	stale := b.resetToken(email)
	known = b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": email})
	require.Equal(t, 202, known.Status, "%s", known.Raw)
	tok := b.resetToken(email)
	require.NotEqual(t, stale, tok)
	r := b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": stale, "password": newPassword})
	requireProblem(t, r, 410, "invalid-reset-token")

	for _, tc := range []struct {
		name, token, password, field string
	}{
		{name: "too short", token: tok, password: "short", field: "password"},
		{name: "too weak", token: tok, password: "aaaaaaaaaaaa", field: "password"},
		{name: "contains the email", token: tok, password: "learner-Quartz-lantern-71", field: "password"},
		{name: "not a reset token", token: "abc", password: newPassword, field: "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": tc.token, "password": tc.password})
			requireFieldError(t, r, tc.field)
		})
	}

	// The rejected attempts did not spend the token.
	r = b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": tok, "password": newPassword})
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/me", inst.learner, nil), 401, "session-revoked")
	requireProblem(t, b.loginAs(email, password, "reset"), 401, "bad-credentials")
	requireTokens(t, b.loginAs(email, newPassword, "reset"))

	r = b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": tok, "password": "another-Granite-harbour-33"})
	requireProblem(t, r, 410, "invalid-reset-token")
	requireTokens(t, b.loginAs(email, newPassword, "reset"))
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.institution("lock")
	const email = "learner@lock.test"

	for i := 1; i <= 4; i++ {
		requireProblem(t, b.loginAs(email, "wrong-password-"+strconv.Itoa(i), "lock"), 401, "bad-credentials")
	}
	// The fifth failure locks the account.
	requireProblem(t, b.loginAs(email, "wrong-password-5", "lock"), 429, "account-locked")
	r := b.loginAs(email, password, "lock")
	requireProblem(t, r, 429, "account-locked")
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	require.True(t, retry >= 1 && retry <= 61, "Retry-After %d", retry)

	// Other accounts are not affected, and unknown emails never lock, so
	// that lockout does not reveal which accounts exist.
	requireTokens(t, b.loginAs("admin@lock.test", password, "lock"))
	for range 6 {
		requireProblem(t, b.loginAs("ghost@lock.test", password, ""), 401, "bad-credentials")
	}

	// Resetting the password lifts the lock.
	r = b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": email})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": b.resetToken(email), "password": "purple-Quartz-lantern-71"})
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	requireTokens(t, b.loginAs(email, "purple-Quartz-lantern-71", "lock"))
}

func TestAuthRateLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, env string
	}{
		{name: "per address", env: "EDULURE_AUTH_RATE_PER_IP"},
		{name: "per account", env: "EDULURE_AUTH_RATE_PER_ACCOUNT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.env, "3")
			for range 3 {
				requireProblem(t, b.loginAs("someone@limit.test", "wrong-password", ""), 401, "bad-credentials")
			}
			// A client cannot dodge the limit by claiming another address.
			r := b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "someone@limit.test", "password": "wrong-password"}, "X-Forwarded-For", "203.0.113.9", "X-Real-IP", "203.0.113.9")
			requireProblem(t, r, 429, "rate-limited")
			retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
			require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
			require.Positive(t, retry)
			// Routes outside authentication are not limited.
			require.Equal(t, 200, b.do("GET", "/healthz", "", nil).Status)
		})
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("keys")
	other := b.institution("other")

	r := b.do("POST", "/api/v1/tenant/apikeys", inst.admin, map[string]any{"name": "ci", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	key, keyID := r.str("key"), r.str("id")
	require.True(t, strings.HasPrefix(key, "edk_"), key)
	require.Equal(t, "ci", r.str("name"))
	require.Equal(t, []any{"tenancy.member.read"}, r.get("permissions"))
	require.Equal(t, inst.adminID, r.str("created_by"))

	me := b.do("GET", "/api/v1/me", key, nil)
	require.Equal(t, 200, me.Status, "%s", me.Raw)
	require.Equal(t, "apikey", me.str("kind"))
	require.Equal(t, keyID, me.str("api_key", "id"))
	require.Equal(t, "keys", me.str("tenant", "slug"))
	require.Nil(t, me.get("user"))

	members := b.do("GET", "/api/v1/tenant/members", key, nil)
	require.Equal(t, 200, members.Status, "%s", members.Raw)
	require.Len(t, members.items(), 3)

	requireProblem(t, b.do("POST", "/api/v1/tenant/invitations", key, map[string]any{"email": "new@keys.test", "roles": []string{"learner"}}), 403, "permission-denied")
	requireProblem(t, b.do("GET", "/api/v1/me/sessions", key, nil), 403, "user-required")
	requireProblem(t, b.do("POST", "/api/v1/auth/logout", key, nil), 403, "user-required")
	requireProblem(t, b.do("GET", "/api/v1/me", key+"x", nil), 401, "invalid-api-key")
	requireProblem(t, b.do("GET", "/api/v1/me", "edk_nonsense", nil), 401, "invalid-api-key")

	// The creator can give a key only what they hold themselves.
	r = b.do("POST", "/api/v1/tenant/apikeys", inst.instructor, map[string]any{"name": "mine", "permissions": []string{"tenancy.member.read"}})
	requireProblem(t, r, 403, "permission-denied")
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{name: "permission the creator lacks", body: map[string]any{"name": "x", "permissions": []string{"platform.tenant.create"}}, field: "permissions.0"},
		{name: "unknown permission", body: map[string]any{"name": "x", "permissions": []string{"no.such.permission"}}, field: "permissions.0"},
		{name: "no permissions", body: map[string]any{"name": "x", "permissions": []string{}}, field: "permissions"},
		{name: "no name", body: map[string]any{"name": "  ", "permissions": []string{"tenancy.member.read"}}, field: "name"},
		{name: "expiry in the past", body: map[string]any{"name": "x", "permissions": []string{"tenancy.member.read"}, "expires_at": past}, field: "expires_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireFieldError(t, b.do("POST", "/api/v1/tenant/apikeys", inst.admin, tc.body), tc.field)
		})
	}

	r = b.do("GET", "/api/v1/tenant/apikeys", inst.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Len(t, r.items(), 1)
	listed := r.items()[0]
	require.Equal(t, keyID, listed["id"])
	require.NotNil(t, listed["last_used_at"], "the key was used")
	require.Nil(t, listed["revoked_at"])
	require.NotContains(t, listed, "key")
	require.NotContains(t, string(r.Raw), key[len(key)-20:], "the secret is shown only once")
	require.Empty(t, b.do("GET", "/api/v1/tenant/apikeys", other.admin, nil).items(), "keys are per institution")

	// Another institution cannot revoke it.
	requireProblem(t, b.do("DELETE", "/api/v1/tenant/apikeys/"+keyID, other.admin, nil), 404, "not-found")
	require.Equal(t, 200, b.do("GET", "/api/v1/me", key, nil).Status)

	r = b.do("DELETE", "/api/v1/tenant/apikeys/"+keyID, inst.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.NotNil(t, r.get("revoked_at"))
	requireProblem(t, b.do("GET", "/api/v1/me", key, nil), 401, "api-key-revoked")
	requireProblem(t, b.do("GET", "/api/v1/tenant/members", key, nil), 401, "api-key-revoked")
	r = b.do("GET", "/api/v1/tenant/apikeys", inst.admin, nil)
	require.NotNil(t, r.items()[0]["revoked_at"])
}

func TestBadAccessTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("tok")
	good := inst.learner
	header, claims := jwtPart(t, good, 0), jwtPart(t, good, 1)
	parts := strings.Split(good, ".")

	elevated := map[string]any{}
	for k, v := range claims {
		elevated[k] = v
	}
	elevated["op"] = true
	tampered := parts[0] + "." + b64JSON(t, elevated) + "." + parts[2]
	none := b64JSON(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64JSON(t, elevated) + "."

	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sign := func(kid string) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(elevated))
		tk.Header["kid"] = kid
		s, err := tk.SignedString(stranger)
		require.NoError(t, err)
		return s
	}

	for _, tc := range []struct {
		name, auth, code string
	}{
		{name: "missing", auth: "", code: "missing-credentials"},
		{name: "other scheme", auth: "Basic bGVhcm5lcjpwdw==", code: "missing-credentials"},
		{name: "empty bearer", auth: "Bearer ", code: "missing-credentials"},
		{name: "garbage", auth: "Bearer not-a-token", code: "token-malformed"},
		{name: "alg none", auth: "Bearer " + none, code: "token-signature"},
		{name: "tampered payload", auth: "Bearer " + tampered, code: "token-signature"},
		{name: "unknown key", auth: "Bearer " + sign(uuid.NewString()), code: "token-unknown-key"},
		{name: "known kid, wrong key", auth: "Bearer " + sign(header["kid"].(string)), code: "token-signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.auth != "" {
				h = []string{"Authorization", tc.auth}
			}
			r := b.do("GET", "/api/v1/me", "", nil, h...)
			requireProblem(t, r, 401, tc.code)
			require.Equal(t, `Bearer realm="edulure"`, r.Header.Get("WWW-Authenticate"))
		})
	}
	// The genuine token still works after all that.
	require.Equal(t, 200, b.do("GET", "/api/v1/me", good, nil).Status)
}

func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("rot")
	op := b.operator()
	oldKID := jwtPart(t, inst.learner, 0)["kid"].(string)
	require.NotEmpty(t, oldKID)
	before := b.loginAs("instructor@rot.test", password, "rot")
	requireTokens(t, before)

	requireProblem(t, b.do("POST", "/api/v1/admin/keys/rotate", inst.admin, nil), 403, "operator-required")
	r := b.do("POST", "/api/v1/admin/keys/rotate", op, nil)
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	newKID := r.str("kid")
	require.NotEmpty(t, newKID)
	require.NotEqual(t, oldKID, newKID)

	// Tokens signed by the old key keep working.
	require.Equal(t, 200, b.do("GET", "/api/v1/me", inst.learner, nil).Status)
	jwks := b.do("GET", "/.well-known/jwks.json", "", nil)
	require.Equal(t, 200, jwks.Status, "%s", jwks.Raw)
	keys, _ := jwks.get("keys").([]any)
	require.Len(t, keys, 2)
	var kids []string
	for _, k := range keys {
		m := k.(map[string]any)
		require.Equal(t, "OKP", m["kty"])
		require.Equal(t, "Ed25519", m["crv"])
		require.Equal(t, "EdDSA", m["alg"])
		require.NotContains(t, m, "d", "the private part is never published")
		kids = append(kids, m["kid"].(string))
	}
	require.ElementsMatch(t, []string{oldKID, newKID}, kids)

	list := b.do("GET", "/api/v1/admin/keys", op, nil)
	require.Equal(t, 200, list.Status, "%s", list.Raw)
	active := map[string]bool{}
	for _, it := range list.items() {
		active[it["kid"].(string)] = it["active"].(bool)
	}
	require.Equal(t, map[string]bool{oldKID: false, newKID: true}, active)

	fresh := b.login("learner@rot.test", "rot")
	require.Equal(t, newKID, jwtPart(t, fresh, 0)["kid"])

	r = b.do("DELETE", "/api/v1/admin/keys/"+newKID, op, nil)
	requireProblem(t, r, 409, "cannot-retire-key")
	r = b.do("DELETE", "/api/v1/admin/keys/"+oldKID, op, nil)
	require.Equal(t, 204, r.Status, "%s", r.Raw)

	// The operator's own token was signed by the old key too.
	requireProblem(t, b.do("GET", "/api/v1/me", op, nil), 401, "token-key-retired")
	requireProblem(t, b.do("GET", "/api/v1/me", inst.learner, nil), 401, "token-key-retired")
	require.Equal(t, 200, b.do("GET", "/api/v1/me", fresh, nil).Status)
	jwks = b.do("GET", "/.well-known/jwks.json", "", nil)
	keys, _ = jwks.get("keys").([]any)
	require.Len(t, keys, 1)
	require.Equal(t, newKID, keys[0].(map[string]any)["kid"])

	// As the problem says, a refresh gets a token from the new key.
	requireProblem(t, b.do("GET", "/api/v1/me", before.str("access_token"), nil), 401, "token-key-retired")
	r = b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": before.str("refresh_token")})
	requireTokens(t, r)
	require.Equal(t, newKID, jwtPart(t, r.str("access_token"), 0)["kid"])
	require.Equal(t, 200, b.do("GET", "/api/v1/me", r.str("access_token"), nil).Status)

	op2 := b.login("op@platform.test", "")
	r = b.do("DELETE", "/api/v1/admin/keys/"+oldKID, op2, nil)
	requireProblem(t, r, 404, "not-found") // already retired
}

func TestLoginRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.institution("valid")
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		status     int
		code       string
		field      string
	}{
		{name: "login without email", path: "/api/v1/auth/login", body: map[string]any{"password": password}, field: "email"},
		{name: "login without password", path: "/api/v1/auth/login", body: map[string]any{"email": "learner@valid.test"}, field: "password"},
		{name: "login with a malformed institution", path: "/api/v1/auth/login", body: map[string]any{"email": "learner@valid.test", "password": password, "tenant": "Not A Slug"}, field: "tenant"},
		{name: "signup with a malformed institution", path: "/api/v1/auth/signup", body: map[string]any{"email": "new@valid.test", "password": password, "display_name": "New", "tenant": "Not A Slug"}, field: "tenant"},
		{name: "login to an institution one is not in", path: "/api/v1/auth/login", body: map[string]any{"email": "learner@valid.test", "password": password, "tenant": "elsewhere"}, status: 403, code: "not-a-member"},
		{name: "login with a wrong password", path: "/api/v1/auth/login", body: map[string]any{"email": "learner@valid.test", "password": "wrong-password", "tenant": "valid"}, status: 401, code: "bad-credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("POST", tc.path, "", tc.body)
			if tc.field != "" {
				requireFieldError(t, r, tc.field)
				return
			}
			requireProblem(t, r, tc.status, tc.code)
		})
	}
}

// A session that began before the institution required MFA for the role
// cannot be refreshed into new tokens: the person must log in again.
func TestRefreshHonoursNewMFARequirement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("later")
	r := b.loginAs("instructor@later.test", password, "later")
	requireTokens(t, r)
	refresh := r.str("refresh_token")

	r = b.do("PATCH", "/api/v1/tenant", inst.admin, map[string]any{"mfa_required_roles": []string{"instructor"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)

	r = b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh})
	requireProblem(t, r, 401, "mfa-required")
	r = b.loginAs("instructor@later.test", password, "later")
	requireChallenge(t, r)
}
