package httpapi_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// enrolTOTP turns on TOTP for the holder of token and returns the secret and
// the recovery codes. The confirmation spends the current time step.
func (b *testBundle) enrolTOTP(t *testing.T, token string) (string, []any) {
	t.Helper()
	r := b.do("POST", "/api/v1/me/mfa/totp", token, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	secret := r.str("secret")
	r = b.do("POST", "/api/v1/me/mfa/totp/confirm", token, map[string]any{"code": totpCode(t, secret, time.Now())})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	codes, _ := r.get("recovery_codes").([]any)
	return secret, codes
}

// TestSecondFactorLockout: wrong second factors are counted per account,
// across challenges and replicas. The tenth in a row locks two-factor
// sign-in (and the other routes that take a code) with backoff, whatever
// challenge or replica the guesses go to; a right code is then refused too,
// and the person is told by an event.
func TestSecondFactorLockout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	replica := b.replica("none")
	inst := b.institution("mfalock")
	const email = "learner@mfalock.test"
	secret, recovery := b.enrolTOTP(t, inst.learner)
	bad := wrongTOTP(t, secret)

	// Three logins: five wrong codes on the first (spending it), four on
	// the second, on another replica; the tenth wrong code, on a third
	// challenge, locks.
	verify := func(on *testBundle, mfaToken string, body map[string]any) response {
		body["mfa_token"] = mfaToken
		return on.do("POST", "/api/v1/auth/mfa/verify", "", body)
	}
	first := requireChallenge(t, b.loginAs(email, password, "mfalock"))
	for range 5 {
		requireProblem(t, verify(b, first, map[string]any{"code": bad}), 401, "invalid-mfa-code")
	}
	second := requireChallenge(t, replica.loginAs(email, password, "mfalock"))
	for range 3 {
		requireProblem(t, verify(replica, second, map[string]any{"code": bad}), 401, "invalid-mfa-code")
	}
	requireProblem(t, verify(replica, second, map[string]any{"recovery_code": "aaaa-bbbb-cccc"}), 401, "invalid-recovery-code")
	third := requireChallenge(t, b.loginAs(email, password, "mfalock"))
	r := verify(b, third, map[string]any{"code": bad})
	requireProblem(t, r, 429, "mfa-locked")

	// Locked: the right code and a recovery code are refused on any
	// replica, on a fresh challenge too, and are not spent.
	right := totpCode(t, secret, time.Now().Add(30*time.Second)) // the confirmation spent the current step
	fourth := requireChallenge(t, replica.loginAs(email, password, "mfalock"))
	r = verify(replica, fourth, map[string]any{"code": right})
	requireProblem(t, r, 429, "mfa-locked")
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	require.True(t, retry >= 1 && retry <= 5*60+1, "Retry-After %d", retry)
	requireProblem(t, verify(b, fourth, map[string]any{"recovery_code": recovery[0].(string)}), 429, "mfa-locked")
	requireProblem(t, b.do("POST", "/api/v1/me/mfa/disable", inst.learner, map[string]any{"code": right}), 429, "mfa-locked")

	// The lock is in the database and ends at the time it names.
	var failures int
	var lockedFor float64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT mfa_failures, extract(epoch FROM mfa_locked_until - now())::float8
		FROM kernel.users WHERE email = $1`, email).Scan(&failures, &lockedFor))
	require.Equal(t, 10, failures)
	require.True(t, lockedFor > 0 && lockedFor <= 5*60, "locked for %fs", lockedFor)

	// The person is told, with a type in the catalogue.
	var data map[string]any
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT data FROM (SELECT type, data FROM kernel.outbox UNION ALL SELECT type, data FROM kernel.events) ev
		WHERE type = 'identity.mfa.locked.v1'`).Scan(&data))
	require.Equal(t, inst.learnerID, data["user_id"])
	require.Equal(t, email, data["email"])
	require.EqualValues(t, 10, data["failures"])
	require.NotEmpty(t, data["locked_until"])
	types := b.do("GET", "/api/v1/events/types", inst.admin, nil)
	require.Equal(t, 200, types.Status, "%s", types.Raw)
	found := false
	for _, it := range types.items() {
		found = found || it["type"] == "identity.mfa.locked.v1" && it["schema"] != nil
	}
	require.True(t, found, "identity.mfa.locked.v1 is not in the catalogue: %s", types.Raw)

	// Other accounts are not affected.
	adminSecret, _ := b.enrolTOTP(t, inst.admin)
	ch := requireChallenge(t, b.loginAs("admin@mfalock.test", password, "mfalock"))
	requireTokens(t, verify(b, ch, map[string]any{"code": totpCode(t, adminSecret, time.Now().Add(30*time.Second))}))

	// Once the lock has passed (here: moved into the past), the right
	// code works and clears the count; a later wrong code locks again
	// for longer.
	_, err = b.pool.Exec(context.Background(), `UPDATE kernel.users SET mfa_locked_until = now() - interval '1 second' WHERE email = $1`, email)
	require.NoError(t, err)
	fifth := requireChallenge(t, b.loginAs(email, password, "mfalock"))
	requireTokens(t, verify(b, fifth, map[string]any{"code": totpCode(t, secret, time.Now().Add(30*time.Second))}))
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT mfa_failures FROM kernel.users WHERE email = $1`, email).Scan(&failures))
	require.Zero(t, failures)
}

// TestSecondFactorLockoutBacksOff: each failure after a lock has passed
// locks again for twice as long.
func TestSecondFactorLockoutBacksOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inst := b.institution("backoff")
	const email = "learner@backoff.test"
	secret, _ := b.enrolTOTP(t, inst.learner)
	bad := wrongTOTP(t, secret)
	lockedFor := func() time.Duration {
		var secs float64
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT extract(epoch FROM mfa_locked_until - now())::float8
			FROM kernel.users WHERE email = $1`, email).Scan(&secs))
		return time.Duration(secs * float64(time.Second))
	}
	for i := 1; i <= 10; i++ {
		ch := requireChallenge(t, b.loginAs(email, password, "backoff"))
		r := b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": ch, "code": bad})
		if i < 10 {
			requireProblem(t, r, 401, "invalid-mfa-code")
		} else {
			requireProblem(t, r, 429, "mfa-locked")
		}
	}
	previous := lockedFor()
	require.True(t, previous > 4*time.Minute && previous <= 5*time.Minute, "first lock %s", previous)
	for _, want := range []time.Duration{10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour} {
		_, err := b.pool.Exec(context.Background(), `UPDATE kernel.users SET mfa_locked_until = now() - interval '1 second' WHERE email = $1`, email)
		require.NoError(t, err)
		ch := requireChallenge(t, b.loginAs(email, password, "backoff"))
		requireProblem(t, b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": ch, "code": bad}), 429, "mfa-locked")
		got := lockedFor()
		require.True(t, got > want-time.Minute && got <= want, "want a lock of %s, got %s", want, got)
	}
}
