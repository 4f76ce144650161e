package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every answer that carries tokens says not to store it (RFC 6749 §5.1),
// and so does every other answer under /api/v1/auth, problems included.
func TestTokenAnswersAreNotCached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.institution("alpha")
	b.institution("beta")
	requireNoStore := func(t *testing.T, r response, what string) {
		t.Helper()
		require.Equal(t, "no-store", r.Header.Get("Cache-Control"), "%s: %s", what, r.Raw)
		require.Equal(t, "no-cache", r.Header.Get("Pragma"), "%s: %s", what, r.Raw)
	}

	login := b.loginAs("learner@alpha.test", password, "alpha")
	requireTokens(t, login)
	requireNoStore(t, login, "login")

	r := b.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": login.str("refresh_token")})
	requireTokens(t, r)
	requireNoStore(t, r, "refresh")

	// A member of two institutions switches between them.
	inv := b.do("POST", "/api/v1/tenant/invitations", b.login("admin@beta.test", "beta"), map[string]any{"email": "learner@alpha.test", "roles": []string{"learner"}})
	require.Equal(t, 201, inv.Status, "%s", inv.Raw)
	r = b.do("POST", "/api/v1/me/invitations/accept", login.str("access_token"), map[string]any{"token": inv.str("token")})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/auth/switch", login.str("access_token"), map[string]any{"tenant": "beta"})
	requireTokens(t, r)
	requireNoStore(t, r, "switch")

	// The second factor: alpha requires it of instructors, who enrol while
	// logging in.
	r = b.do("PATCH", "/api/v1/tenant", a.admin, map[string]any{"mfa_required_roles": []string{"instructor"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	r = b.loginAs("instructor@alpha.test", password, "alpha")
	mfaToken := requireChallenge(t, r)
	requireNoStore(t, r, "login answering a challenge")
	r = b.do("POST", "/api/v1/auth/mfa/setup", "", map[string]any{"mfa_token": mfaToken})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	requireNoStore(t, r, "mfa setup (a TOTP secret)")
	r = b.do("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": mfaToken, "code": totpCode(t, r.str("secret"), time.Now())})
	requireTokens(t, r)
	requireNoStore(t, r, "mfa verify")

	// Problems too, and routes that carry no token.
	r = b.loginAs("learner@alpha.test", "wrong-Password-123", "alpha")
	requireProblem(t, r, 401, "bad-credentials")
	requireNoStore(t, r, "failed login")
	r = b.do("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "learner@alpha.test"})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	requireNoStore(t, r, "forgot password")
}

// HSTS is for HTTPS: a TLS connection, or X-Forwarded-Proto from a proxy
// the operator said to trust. Anyone can send the header.
func TestHSTSOnlyOverTrustedHTTPS(t *testing.T) {
	t.Parallel()
	untrusted := setup(t)
	trusted := setup(t, "EDULURE_TRUST_PROXY", "true")
	for _, tc := range []struct {
		name string
		b    *testBundle
		sent []string
		hsts bool
	}{
		{name: "plain HTTP", b: untrusted},
		{name: "forged X-Forwarded-Proto", b: untrusted, sent: []string{"X-Forwarded-Proto", "https"}},
		{name: "forged X-Forwarded-Ssl", b: untrusted, sent: []string{"X-Forwarded-Ssl", "on"}},
		{name: "trusted proxy over HTTP", b: trusted, sent: []string{"X-Forwarded-Proto", "http"}},
		{name: "trusted proxy over HTTPS", b: trusted, sent: []string{"X-Forwarded-Proto", "https"}, hsts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.b.do("GET", "/healthz", "", nil, tc.sent...)
			require.Equal(t, 200, r.Status)
			if tc.hsts {
				require.Contains(t, r.Header.Get("Strict-Transport-Security"), "max-age=")
			} else {
				require.Empty(t, r.Header.Get("Strict-Transport-Security"))
			}
		})
	}
}

// A request line or headers over the limit get a problem document like
// every other refusal, not the HTTP server's text/plain.
func TestHeadersTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name    string
		path    string
		headers []string
	}{
		{name: "70 KB path", path: "/api/v1/" + strings.Repeat("a", 70<<10)},
		{name: "70 KB query", path: "/api/v1/me?x=" + strings.Repeat("a", 70<<10)},
		{name: "70 KB header", path: "/healthz", headers: []string{"X-Padding", strings.Repeat("a", 70<<10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("GET", tc.path, "", nil, tc.headers...)
			requireProblem(t, r, http.StatusRequestHeaderFieldsTooLarge, "headers-too-large")
			require.Contains(t, r.str("detail"), "limit of 65536")
		})
	}
	// Under the limit all is well.
	r := b.do("GET", "/healthz", "", nil, "X-Padding", strings.Repeat("a", 60<<10))
	require.Equal(t, 200, r.Status, "%s", r.Raw)
}

// Readiness tells a load balancer whether to send traffic; which plugins
// are installed and how they fail is for operators.
func TestReadyzShowsChecksToOperatorsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.institution("alpha")
	op := b.operator()

	r := b.do("GET", "/readyz", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.JSONEq(t, `{"status":"ok"}`, string(r.Raw))
	for name, tok := range map[string]string{"an institution's admin": a.admin, "a bad token": "nope"} {
		r = b.do("GET", "/readyz", tok, nil)
		require.Equal(t, 200, r.Status, "%s: %s", name, r.Raw)
		require.JSONEq(t, `{"status":"ok"}`, string(r.Raw), name)
	}
	r = b.do("GET", "/readyz", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "ok", r.str("status"))
	require.Equal(t, "ok", r.str("checks", "database"))
}
