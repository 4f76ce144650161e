package httpapi_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/identity"
)

// verificationToken reads the newest email-verification token sent to
// email from the kernel's outbox or event log, opened as the messaging
// plugin that emails it gets it.
func (b *testBundle) verificationToken(email string) string {
	b.t.Helper()
	var id, typ string
	var data []byte
	err := b.pool.QueryRow(context.Background(), `SELECT id::text, type, data FROM (SELECT id, type, data FROM kernel.outbox UNION ALL SELECT id, type, data FROM kernel.events WHERE source = 'kernel') AS ev
		WHERE type = 'identity.email_verification.requested.v1' AND data->>'email' = $1 ORDER BY id DESC LIMIT 1`, email).Scan(&id, &typ, &data)
	require.NoError(b.t, err, "no verification sent to %s", email)
	return b.eventSecret(id, typ, data, "token", "edv_")
}

// verifyEmail verifies an address through the public route with the token
// that was sent to it.
func (b *testBundle) verifyEmail(email string) {
	b.t.Helper()
	r := b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": b.verificationToken(email)})
	require.Equal(b.t, 204, r.Status, "%s", r.Raw)
}

// TestPreRegisteredEmailDoesNotBecomeAdmin is the audit's attack: an
// account signed up with someone else's address (never verified) is not
// made the admin of a new institution created for that address; an
// invitation goes to the address instead, and its owner takes the account
// over with a password reset.
func TestPreRegisteredEmailDoesNotBecomeAdmin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	op := b.operator()
	const dean = "dean@newuni.test"

	r := b.signupVia(dean, nil)
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, false, r.get("user", "email_verified"), "%s", r.Raw)
	squatter := b.login(dean, "")
	require.Equal(t, false, b.do("GET", "/api/v1/me", squatter, nil).get("user", "email_verified"))

	r = b.do("POST", "/api/v1/tenants", op, map[string]any{"slug": "newuni", "name": "New University", "admin_email": dean})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Nil(t, r.get("admin"), "an unverified account became admin: %s", r.Raw)
	inviteToken := r.str("admin_invitation", "token")
	require.NotEmpty(t, inviteToken, "%s", r.Raw)
	require.Equal(t, dean, r.str("admin_invitation", "email"))

	// The squatter is not a member and cannot log in to the institution.
	requireProblem(t, b.loginAs(dean, password, "newuni"), 403, "not-a-member")
	r = b.loginAs(dean, password, "")
	requireTokens(t, r)
	require.Empty(t, r.get("memberships"), "%s", r.Raw)
	// Nor can anyone make the unverified account admin another way.
	r = b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": "edv_guessed-token"})
	requireProblem(t, r, 410, "invalid-verification-token")

	// The real dean owns the inbox: a password reset (sent there) takes the
	// account over, proving the address and ending the squatter's sessions.
	require.Equal(t, 202, b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": dean}).Status)
	const deansPassword = "granite-Owl-meadow-58"
	r = b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": b.resetToken(dean), "password": deansPassword})
	require.Equal(t, 204, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/me", squatter, nil), 401, "session-revoked")
	requireProblem(t, b.loginAs(dean, password, ""), 401, "bad-credentials")
	r = b.loginAs(dean, deansPassword, "")
	requireTokens(t, r)
	tok := r.str("access_token")
	require.Equal(t, true, b.do("GET", "/api/v1/me", tok, nil).get("user", "email_verified"))
	r = b.do("POST", "/api/v1/me/invitations/accept", tok, map[string]any{"token": inviteToken})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.loginAs(dean, deansPassword, "newuni")
	requireTokens(t, r)
	require.Equal(t, []any{"admin"}, r.get("tenant", "roles"))

	// A verified account, by contrast, becomes admin at once.
	r = b.do("POST", "/api/v1/tenants", op, map[string]any{"slug": "college", "name": "College", "admin_email": dean})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Nil(t, r.get("admin_invitation"), "%s", r.Raw)
	require.Equal(t, []any{"admin"}, r.get("admin", "roles"))
}

// TestEmailVerification: tokens are sent as events, stored hashed, single
// use, expiring; the newest voids older ones; verifying is public, asking
// again needs the account's login.
func TestEmailVerification(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const email = "ada@verify.test"
	r := b.signupVia(email, nil)
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	userID := r.str("user", "id")
	first := b.verificationToken(email)

	// Only the token's SHA-256 is stored.
	sum := sha256.Sum256([]byte(first))
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.email_verifications WHERE token_hash = $1 AND user_id = $2`, sum[:], userID).Scan(&n))
	require.Equal(t, 1, n)
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.email_verifications v WHERE position($1 in v::text) > 0`, first).Scan(&n))
	require.Zero(t, n, "the token is stored in clear")

	// The event is in the catalogue with its schema.
	tok := b.login(email, "")
	types := b.do("GET", "/api/v1/events/types", tok, nil)
	require.Equal(t, 200, types.Status, "%s", types.Raw)
	found := false
	for _, it := range types.items() {
		found = found || it["type"] == "identity.email_verification.requested.v1" && it["schema"] != nil
	}
	require.True(t, found, "%s", types.Raw)

	// Asking again sends a new token and voids the first.
	r = b.do("POST", "/api/v1/auth/email/verify/resend", tok, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	second := b.verificationToken(email)
	require.NotEqual(t, first, second)
	requireProblem(t, b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": first}), 410, "invalid-verification-token")
	requireProblem(t, b.do("POST", "/api/v1/auth/email/verify/resend", "", nil), 401, "missing-credentials")

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{name: "no token", body: map[string]any{}, field: "token"},
		{name: "not a verification token", body: map[string]any{"token": "edp_" + second[4:]}, field: "token"},
		{name: "too long", body: map[string]any{"token": "edv_" + strings.Repeat("a", 300)}, field: "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireFieldError(t, b.do("POST", "/api/v1/auth/email/verify", "", tc.body), tc.field)
		})
	}

	require.Equal(t, 204, b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": second}).Status)
	requireProblem(t, b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": second}), 410, "invalid-verification-token")
	require.Equal(t, true, b.do("GET", "/api/v1/me", tok, nil).get("user", "email_verified"))
	requireProblem(t, b.do("POST", "/api/v1/auth/email/verify/resend", tok, nil), 409, "email-already-verified")

	// An expired token does not verify.
	const late = "late@verify.test"
	require.Equal(t, 201, b.signupVia(late, nil).Status)
	_, err := b.pool.Exec(context.Background(), `UPDATE kernel.email_verifications SET expires_at = now() - interval '1 second' WHERE email = $1`, late)
	require.NoError(t, err)
	requireProblem(t, b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": b.verificationToken(late)}), 410, "invalid-verification-token")
	require.Equal(t, false, b.do("GET", "/api/v1/me", b.login(late, ""), nil).get("user", "email_verified"))
}

// TestUnverifiedAccountLimits: an unverified account may join an open
// institution as a learner and use what that gives, but gets no further
// role and creates no API key until its address is verified.
func TestUnverifiedAccountLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	open := b.institution("open")
	require.Equal(t, 200, b.do("PATCH", "/api/v1/tenant", open.admin, map[string]any{"self_signup": true}).Status)
	// This institution lets learners read members and make keys.
	r := b.do("PUT", "/api/v1/tenant/roles/learner", open.admin, map[string]any{"permissions": []string{"tenancy.settings.read", "tenancy.member.read", "identity.apikey.create"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)

	const email = "newbie@example.edu"
	r = b.signupVia(email, map[string]any{"tenant": "open"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	newbieID := r.str("user", "id")
	tok := b.login(email, "open")
	require.Equal(t, 200, b.do("GET", "/api/v1/tenant/members", tok, nil).Status)

	requireProblem(t, b.do("POST", "/api/v1/tenant/apikeys", tok, map[string]any{"name": "k", "permissions": []string{"tenancy.member.read"}}), 403, "email-unverified")
	r = b.do("PUT", "/api/v1/tenant/members/"+newbieID+"/roles", open.admin, map[string]any{"roles": []string{"learner", "instructor"}})
	requireProblem(t, r, 409, "email-unverified")
	r = b.do("GET", "/api/v1/tenant/members/"+newbieID, open.admin, nil)
	require.Equal(t, false, r.get("email_verified"), "%s", r.Raw)
	require.Equal(t, []any{"learner"}, r.get("roles"))

	b.verifyEmail(email)
	r = b.do("POST", "/api/v1/tenant/apikeys", tok, map[string]any{"name": "k", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	r = b.do("PUT", "/api/v1/tenant/members/"+newbieID+"/roles", open.admin, map[string]any{"roles": []string{"learner", "instructor"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, b.do("GET", "/api/v1/tenant/members/"+newbieID, open.admin, nil).get("email_verified"))
}

// TestInvitationProvesEmail: an invitation's token was sent to the address,
// so signing up or accepting with it verifies the address.
func TestInvitationProvesEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.institution("acme")
	invite := func(email string) string {
		r := b.do("POST", "/api/v1/tenant/invitations", acme.admin, map[string]any{"email": email, "roles": []string{"instructor"}})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		return r.str("token")
	}
	r := b.signupVia("grace@acme.test", map[string]any{"invitation_token": invite("grace@acme.test")})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, true, r.get("user", "email_verified"), "%s", r.Raw)

	require.Equal(t, 201, b.signupVia("alan@acme.test", nil).Status)
	alan := b.login("alan@acme.test", "")
	r = b.do("POST", "/api/v1/me/invitations/accept", alan, map[string]any{"token": invite("alan@acme.test")})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, true, b.do("GET", "/api/v1/me", alan, nil).get("user", "email_verified"))
	// The pending verification token is spent with it.
	requireProblem(t, b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": b.verificationToken("alan@acme.test")}), 410, "invalid-verification-token")
}

// TestResetOfUnverifiedAccount: a reset is the first proof that the
// person holds the address of an unverified account, so whatever the
// account set up before (second factor, API keys) goes with the old
// password; a verified account's reset keeps them.
func TestResetOfUnverifiedAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	open := b.institution("open")
	require.Equal(t, 200, b.do("PATCH", "/api/v1/tenant", open.admin, map[string]any{"self_signup": true}).Status)
	const email = "victim@example.edu"
	r := b.signupVia(email, map[string]any{"tenant": "open"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	userID := uuid.MustParse(r.str("user", "id"))
	squatter := b.login(email, "open")
	secret, _ := b.enrolTOTP(t, squatter)
	require.NotEmpty(t, secret)
	// A key the account made before unverified accounts were refused keys
	// (made here directly in the database).
	var key string
	tenantID := uuid.MustParse(open.id)
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		var err error
		_, key, err = identity.CreateAPIKey(context.Background(), tx, identity.APIKey{TenantID: tenantID, Name: "old", Permissions: []string{"tenancy.settings.read"}, CreatedBy: &userID})
		return err
	}))
	require.Equal(t, 200, b.do("GET", "/api/v1/tenant", key, nil).Status)

	require.Equal(t, 202, b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": email}).Status)
	const owners = "granite-Owl-meadow-58"
	require.Equal(t, 204, b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": b.resetToken(email), "password": owners}).Status)
	requireProblem(t, b.do("GET", "/api/v1/tenant", key, nil), 401, "api-key-revoked")
	// No second factor the owner never set up stands in the way.
	r = b.loginAs(email, owners, "open")
	requireTokens(t, r)
	me := b.do("GET", "/api/v1/me", r.str("access_token"), nil)
	require.Equal(t, true, me.get("user", "email_verified"))
	require.Equal(t, false, me.get("user", "mfa_enabled"))

	// Now verified: the owner's own second factor and keys survive a reset.
	owner := r.str("access_token")
	secret, _ = b.enrolTOTP(t, owner)
	r = b.do("PUT", "/api/v1/tenant/roles/learner", open.admin, map[string]any{"permissions": []string{"tenancy.settings.read", "identity.apikey.create"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/tenant/apikeys", owner, map[string]any{"name": "mine", "permissions": []string{"tenancy.settings.read"}})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	ownersKey := r.str("key")
	require.Equal(t, 202, b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": email}).Status)
	require.Equal(t, 204, b.do("POST", "/api/v1/auth/password/reset", "", map[string]any{"token": b.resetToken(email), "password": "another-Granite-harbour-33"}).Status)
	ch := requireChallenge(t, b.loginAs(email, "another-Granite-harbour-33", "open"))
	requireTokens(t, b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": ch, "code": totpCode(t, secret, time.Now().Add(30*time.Second))}))
	require.Equal(t, 200, b.do("GET", "/api/v1/tenant", ownersKey, nil).Status)
}
