package console_test

import (
	"context"
	"fmt"
	stdhtml "html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
)

// browserless is an HTTP client with cookies that does not follow
// redirects, for the console's HTTP-level checks.
type browserless struct {
	t      *testing.T
	k      *kernel
	client *http.Client
}

func newBrowserless(t *testing.T, k *kernel) *browserless {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browserless{t: t, k: k, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browserless) do(method, path string, form url.Values, headers ...string) (*http.Response, string) {
	b.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.k.url+path, rd)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, string(raw)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(html)
	require.NotNil(t, m, "no CSRF field in %s", html)
	return m[1]
}

func sessionCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == "edulure_console" {
			return c
		}
	}
	return nil
}

// The console's pages carry a strict CSP and clickjacking protection; its
// cookie is HttpOnly, SameSite=Strict, and Secure except on loopback; every
// form post needs the session's CSRF token and the same origin; the
// cookie holds the tokens sealed, so it reads as nothing and a changed one
// is no session.
func TestConsoleSessionSecurity(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	b := newBrowserless(t, k)

	res, _ := b.do("GET", "/console", nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/console/login?next=%2Fconsole", res.Header.Get("Location"))

	res, html := b.do("GET", "/console/login", nil)
	require.Equal(t, 200, res.StatusCode)
	csp := res.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self'")
	require.Contains(t, csp, "style-src 'self'")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.NotContains(t, csp, "unsafe")
	require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	require.NotContains(t, html, "<script>", "no inline script")
	require.NotContains(t, html, "style=", "no inline style")
	c := sessionCookie(res)
	require.NotNil(t, c)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.False(t, c.Secure, "plain http on loopback (a developer's machine)")
	csrf := csrfOf(t, html)

	// Served under another name, the cookie is Secure.
	res, _ = newBrowserless(t, k).do("GET", "/console/login", nil, "Host", "console.northwind.example")
	require.True(t, sessionCookie(res).Secure)

	login := url.Values{"email": {"admin@northwind.test"}, "password": {password}}
	res, html = b.do("POST", "/console/login", login)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "no CSRF token")
	require.Contains(t, html, "security token")

	login.Set("csrf", csrf)
	res, _ = b.do("POST", "/console/login", login, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, res.StatusCode, "another site's form")

	wrong := url.Values{"email": {"admin@northwind.test"}, "password": {"not-the-password-1"}, "csrf": {csrf}}
	res, html = b.do("POST", "/console/login", wrong)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, html, `role="alert"`)

	res, _ = b.do("POST", "/console/login", login, "Origin", k.url, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/console", res.Header.Get("Location"))
	sealed := sessionCookie(res).Value
	require.NotContains(t, sealed, "eyJ", "no readable JWT in the cookie")
	require.NotContains(t, sealed, "edr_", "no readable refresh token in the cookie")

	res, html = b.do("GET", "/console", nil)
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, html, "admin@northwind.test")
	require.Contains(t, html, "Institution northwind")

	// A changed cookie is no session.
	u, _ := url.Parse(k.url + "/console")
	tampered := []byte(sealed)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '-' || tampered[len(tampered)/2] == '_' {
		tampered[len(tampered)/2] = 'A'
	}
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "edulure_console", Value: string(tampered), Path: "/console"}})
	res, _ = b.do("GET", "/console", nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)

	// A page that does not exist is a 404 page, not a login loop.
	res, _ = b.do("GET", "/console/nowhere", nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

// Signing out revokes the session in the kernel: the tokens the cookie
// held no longer work, and the console asks to sign in again.
func TestConsoleSignOutRevokes(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	b := newBrowserless(t, k)
	_, html := b.do("GET", "/console/login", nil)
	res, _ := b.do("POST", "/console/login", url.Values{"email": {"admin@northwind.test"}, "password": {password}, "csrf": {csrfOf(t, html)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/account", nil)
	require.Contains(t, html, "this session")
	res, _ = b.do("POST", "/console/logout", url.Values{"csrf": {csrfOf(t, html)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/console/login", res.Header.Get("Location"))
	res, _ = b.do("GET", "/console/account", nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)

	// The kernel lists the console's session as revoked: a new login sees
	// only its own.
	token := k.login("admin@northwind.test", "northwind")
	status, body := k.api("GET", "/api/v1/me/sessions", token, nil)
	require.Equal(t, 200, status)
	require.Len(t, body["items"], 1, "%v", body)
}

// The account page changes the password: typed twice, the current one
// checked by the API (its message shown on the field), the other sessions
// signed out, the console's own session kept.
func TestConsoleChangesPassword(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	other := k.login("admin@northwind.test", "northwind")
	b := newBrowserless(t, k)
	csrf := signIn(t, b, "admin@northwind.test", "northwind")
	const next = "a-New-console-horse-5"
	post := func(current, n, again string) (*http.Response, string) {
		return b.do("POST", "/console/account/password", url.Values{"csrf": {csrf}, "current_password": {current}, "new_password": {n}, "new_password_again": {again}})
	}
	res, html := post(password, next, next+"x")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, html, "is not the same as the new password")
	res, html = post("wrong-Horse-battery-1", next, next)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, html, "is not your current password")
	require.Contains(t, html, `role="alert"`)
	res, _ = post(password, next, next)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/account", nil)
	require.Contains(t, html, "Your password is changed")
	require.Contains(t, html, "this session", "the console's session stays")
	status, _ := k.api("GET", "/api/v1/me", other, nil)
	require.Equal(t, http.StatusUnauthorized, status, "the other session is signed out")
	status, _ = k.api("POST", "/api/v1/auth/login", "", map[string]any{"email": "admin@northwind.test", "password": next})
	require.Equal(t, http.StatusOK, status)
}

// An access token near its end is refreshed by the console before it
// calls the API (here every request: tokens live 20 s, and the console
// refreshes within 30 s of the end): the refresh token rotates, the
// session stays one session, and a refresh token the kernel no longer
// takes (the session revoked elsewhere) sends the browser to sign in.
func TestConsoleRefreshesTokens(t *testing.T) {
	k := start(t, nil, "EDULURE_ACCESS_TOKEN_TTL", "20s")
	k.institution("northwind")
	b := newBrowserless(t, k)
	_, html := b.do("GET", "/console/login", nil)
	res, _ := b.do("POST", "/console/login", url.Values{"email": {"admin@northwind.test"}, "password": {password}, "csrf": {csrfOf(t, html)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	first := sessionCookie(res).Value
	res, html = b.do("GET", "/console/account", nil)
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, html, "this session")
	second := sessionCookie(res).Value
	require.NotEqual(t, first, second, "new tokens sealed in the cookie")
	res, _ = b.do("GET", "/console/account", nil)
	require.Equal(t, 200, res.StatusCode)

	// One session in the kernel: the console's (and this login's).
	token := k.login("admin@northwind.test", "northwind")
	status, body := k.api("GET", "/api/v1/me/sessions", token, nil)
	require.Equal(t, 200, status)
	require.Len(t, body["items"], 2, "%v", body)
	// Revoke the console's from elsewhere: the next page asks to sign in.
	status, _ = k.api("DELETE", "/api/v1/me/sessions", token, nil)
	require.Equal(t, 200, status)
	res, _ = b.do("GET", "/console/account", nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/console/login", res.Header.Get("Location"))
	_, html = b.do("GET", "/console/login", nil)
	require.Contains(t, html, "Your session has ended")
}

var (
	secretShown = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	qrShown     = regexp.MustCompile(`<img class="qr" src="data:image/png;base64,[A-Za-z0-9+/=&#;]+"`)
)

// An institution that requires a second factor of a role: its member
// without one enrols within the sign-in (QR code and key), and is signed
// in with recovery codes shown once. A wrong code is refused, the same key
// shown again.
func TestConsoleEnrolsWithinSignIn(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	admin := k.login("admin@northwind.test", "northwind")
	status, body := k.api("PATCH", "/api/v1/tenant", admin, map[string]any{"mfa_required_roles": []string{"learner"}})
	require.Equal(t, 200, status, "%v", body)

	b := newBrowserless(t, k)
	_, html := b.do("GET", "/console/login", nil)
	csrf := csrfOf(t, html)
	res, _ := b.do("POST", "/console/login", url.Values{"email": {"learner@northwind.test"}, "password": {password}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/console/login/mfa"))
	res, html = b.do("GET", res.Header.Get("Location"), nil)
	require.Equal(t, 200, res.StatusCode)
	require.Regexp(t, qrShown, html)
	secret := secretShown.FindStringSubmatch(html)
	require.NotNil(t, secret, html)

	form := url.Values{"code": {wrongCode(t, secret[1])}, "csrf": {csrf}, "secret": {secret[1]}, "otpauth": {otpauthOf(t, html)}}
	res, html = b.do("POST", "/console/login/mfa", form)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, html, `role="alert"`)
	again := secretShown.FindStringSubmatch(html)
	require.NotNil(t, again, "the key is shown again")
	require.Equal(t, secret[1], again[1], "the same key: the person may have scanned it")
	require.Regexp(t, qrShown, html)

	code, err := totp.GenerateCode(again[1], time.Now())
	require.NoError(t, err)
	form.Set("code", code)
	res, html = b.do("POST", "/console/login/mfa", form)
	require.Equal(t, 200, res.StatusCode, html)
	require.Contains(t, html, `id="recovery-codes"`)
	res, html = b.do("GET", "/console", nil)
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, html, "learner@northwind.test")
}

var otpauthField = regexp.MustCompile(`name="otpauth" value="([^"]+)"`)

func otpauthOf(t *testing.T, html string) string {
	t.Helper()
	m := otpauthField.FindStringSubmatch(html)
	require.NotNil(t, m, "no otpauth field in %s", html)
	return stdhtml.UnescapeString(m[1])
}

// Someone in two institutions switches from one to the other: the
// console's session is then the new institution's, the old one signed
// out in the kernel.
func TestConsoleSwitchInstitution(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	k.institution("southwind")
	_, err := app.CreateUser(context.Background(), k.kernel.Pool, app.UserSpec{Email: "admin@northwind.test", Name: "Admin", Password: password, Tenant: "southwind", Roles: []string{"instructor"}})
	require.NoError(t, err)
	b := newBrowserless(t, k)
	_, html := b.do("GET", "/console/login", nil)
	csrf := csrfOf(t, html)
	// Naming no institution, the choice comes first.
	res, _ := b.do("POST", "/console/login", url.Values{"email": {"admin@northwind.test"}, "password": {password}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/console/account", res.Header.Get("Location"))
	_, html = b.do("GET", "/console/account", nil)
	require.Contains(t, html, "Choose the institution to work in.")
	res, _ = b.do("POST", "/console/switch", url.Values{"tenant": {"northwind"}, "csrf": {csrfOf(t, html)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/account", nil)
	require.Contains(t, html, "<strong>Institution northwind</strong>")
	require.Contains(t, html, "Switch to Institution southwind")
	res, _ = b.do("POST", "/console/switch", url.Values{"tenant": {"southwind"}, "csrf": {csrfOf(t, html)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console", nil)
	require.Contains(t, html, "You are now working in Institution southwind.")
	require.Contains(t, html, "<strong>Institution southwind</strong>")
	require.Contains(t, html, "instructor")

	token := k.login("admin@northwind.test", "southwind")
	status, body := k.api("GET", "/api/v1/me/sessions", token, nil)
	require.Equal(t, 200, status)
	require.Len(t, body["items"], 2, "the console's new session and this login: the old one was signed out: %v", body)
}

// Bad input through the console gets a 4xx page naming the problem (the
// API's own answer), never a 500: NUL characters, IDs that are not IDs,
// another institution's member, unknown plugins and screens, oversized
// forms, the static directory.
func TestConsoleBadInput(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	k.institution("southwind")
	admin := k.login("admin@southwind.test", "southwind")
	_, members := k.api("GET", "/api/v1/tenant/members", admin, nil)
	other := members["items"].([]any)[0].(map[string]any)["user_id"].(string)

	b := newBrowserless(t, k)
	_, html := b.do("GET", "/console/login", nil)
	csrf := csrfOf(t, html)
	res, _ := b.do("POST", "/console/login", url.Values{"email": {"admin@northwind.test"}, "password": {password}, "tenant": {"northwind"}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)

	for _, c := range []struct {
		name, method, path string
		form               url.Values
		status             int
		says               string
	}{
		{"NUL in an email", "POST", "/console/people/invite", url.Values{"email": {"a\x00b@northwind.test"}, "roles": {"learner"}}, 422, "email"},
		{"not an ID", "GET", "/console/people/not-a-uuid", nil, 404, "not a valid ID"},
		{"another institution's member", "GET", "/console/people/" + other, nil, 404, ""},
		{"another institution's member's roles", "POST", "/console/people/" + other + "/roles", url.Values{"roles": {"admin"}}, 404, ""},
		{"unknown plugin", "GET", "/console/plugins/nope/settings", nil, 404, "nope"},
		{"unknown screen", "GET", "/console/apps/nope/nope_get_x", nil, 404, ""},
		{"NUL in a role name", "POST", "/console/roles", url.Values{"name": {"r\x00"}, "permissions": {"tenancy.member.read"}}, 422, "role"},
		{"a job that does not exist", "POST", "/console/jobs/nope/nope/run", url.Values{}, 303, ""},
		{"the static directory", "GET", "/console/static", nil, 404, ""},
		{"no such page", "GET", "/console/nowhere/at/all", nil, 404, ""},
		{"an audit filter that is not a time", "GET", "/console/audit?from=yesterday", nil, 422, "RFC 3339"},
		{"an audit filter that is not an action", "GET", "/console/audit?action=Drop%20table", nil, 422, "tenancy.member."},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.form != nil {
				c.form.Set("csrf", csrf)
			}
			res, html := b.do(c.method, c.path, c.form)
			require.Equal(t, c.status, res.StatusCode, html)
			if c.status >= 400 {
				require.Contains(t, res.Header.Get("Content-Type"), "text/html")
				require.Contains(t, html, `role="alert"`)
				require.Contains(t, html, c.says)
			}
		})
	}
	// The audit log filtered by the API: a family of actions, and the
	// filters carried to the older entries.
	actions := func(page string) []string {
		t.Helper()
		res, html := b.do("GET", page, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, html)
		var out []string
		for _, m := range auditAction.FindAllStringSubmatch(html, -1) {
			out = append(out, m[1])
		}
		return out
	}
	status, _ := k.api("PATCH", "/api/v1/tenant", k.login("admin@northwind.test", "northwind"), map[string]any{"name": "Northwind College"})
	require.Equal(t, http.StatusOK, status)
	all := actions("/console/audit")
	require.NotEmpty(t, all)
	family := actions("/console/audit?action=tenancy.member.")
	require.NotEmpty(t, family)
	require.Less(t, len(family), len(all))
	for _, a := range family {
		require.True(t, strings.HasPrefix(a, "tenancy.member."), a)
	}
	// A form past the body limit is refused whole.
	big := url.Values{"csrf": {csrf}, "email": {strings.Repeat("a", 2<<20)}}
	res, _ = b.do("POST", "/console/people/invite", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	// Nothing was half-written: no invitation.
	northwind := k.login("admin@northwind.test", "northwind")
	_, inv := k.api("GET", "/api/v1/tenant/invitations", northwind, nil)
	require.Empty(t, inv["items"])
}

var auditAction = regexp.MustCompile(`<th scope="row">([a-z0-9_.]+)</th>`)

var memberLink = regexp.MustCompile(`href="/console/people/([0-9a-f-]{36})">learner@northwind.test<`)

// A member's data exported (downloaded through a signed link) and an
// erasure scheduled, then cancelled during its cool-off.
func TestConsolePersonalData(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	admin := k.login("admin@northwind.test", "northwind")
	b := newBrowserless(t, k)
	_, html := b.do("GET", "/console/login", nil)
	csrf := csrfOf(t, html)
	res, _ := b.do("POST", "/console/login", url.Values{"email": {"admin@northwind.test"}, "password": {password}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/people", nil)
	m := memberLink.FindStringSubmatch(html)
	require.NotNil(t, m)
	learner := m[1]

	res, _ = b.do("POST", "/console/people/"+learner+"/export", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/console/privacy", res.Header.Get("Location"))
	export := k.waitAPI("/api/v1/tenant/data-exports", admin, func(e map[string]any) bool { return e["state"] == "ready" })
	_, html = b.do("GET", "/console/privacy", nil)
	require.Contains(t, html, "learner@northwind.test")
	require.Contains(t, html, "/console/privacy/exports/"+export["id"].(string)+"/download")
	res, _ = b.do("POST", "/console/privacy/exports/"+export["id"].(string)+"/download", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	link := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(link, "/api/v1/blobs/"), link)
	zip, err := http.Get(k.url + link)
	require.NoError(t, err)
	zip.Body.Close()
	require.Equal(t, 200, zip.StatusCode)
	require.Equal(t, "application/zip", zip.Header.Get("Content-Type"))

	res, _ = b.do("POST", "/console/people/"+learner+"/erasure", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/privacy", nil)
	require.Contains(t, html, "The erasure is scheduled")
	erasure := k.waitAPI("/api/v1/tenant/erasures", admin, func(e map[string]any) bool { return e["state"] == "scheduled" })
	res, _ = b.do("POST", "/console/privacy/erasures/"+erasure["id"].(string)+"/cancel", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/privacy", nil)
	require.Contains(t, html, "The erasure is now cancelled.")
	res, html = b.do("POST", "/console/people/"+learner+"/nonsense", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusNotFound, res.StatusCode, html)
}

// A learner's own data from the account page: an export asked for and
// downloaded, an erasure scheduled and cancelled during the cool-off.
func TestConsoleMyData(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	learner := k.login("learner@northwind.test", "northwind")
	b := newBrowserless(t, k)
	csrf := signIn(t, b, "learner@northwind.test", "northwind")
	_, html := b.do("GET", "/console/account", nil)
	require.Contains(t, html, "Your data in")
	require.Contains(t, html, "No exports.")

	res, _ := b.do("POST", "/console/account/data/export", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	export := k.waitAPI("/api/v1/me/data-exports", learner, func(e map[string]any) bool { return e["state"] == "ready" })
	_, html = b.do("GET", "/console/account", nil)
	require.Contains(t, html, "/console/account/exports/"+export["id"].(string)+"/download")
	res, _ = b.do("POST", "/console/account/exports/"+export["id"].(string)+"/download", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	link := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(link, "/api/v1/blobs/"), link)
	zip, err := http.Get(k.url + link)
	require.NoError(t, err)
	zip.Body.Close()
	require.Equal(t, 200, zip.StatusCode)

	res, _ = b.do("POST", "/console/account/data/erasure", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/account", nil)
	require.Contains(t, html, "Your erasure is scheduled")
	erasure := k.waitAPI("/api/v1/me/erasures", learner, func(e map[string]any) bool { return e["state"] == "scheduled" })
	res, _ = b.do("POST", "/console/account/erasures/"+erasure["id"].(string)+"/cancel", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, html = b.do("GET", "/console/account", nil)
	require.Contains(t, html, "Your erasure is cancelled.")
	res, html = b.do("POST", "/console/account/data/nonsense", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusNotFound, res.StatusCode, html)
	// Another's export is not one's own.
	admin := newBrowserless(t, k)
	adminCSRF := signIn(t, admin, "admin@northwind.test", "northwind")
	res, _ = admin.do("POST", "/console/account/exports/"+export["id"].(string)+"/download", url.Values{"csrf": {adminCSRF}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/console/account", res.Header.Get("Location"), "no download of someone else's export")
}

// consoleCSP is the policy every console answer carries.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// signIn signs b in through the console's form and returns its CSRF token.
func signIn(t *testing.T, b *browserless, email, tenant string) string {
	t.Helper()
	_, html := b.do("GET", "/console/login", nil)
	csrf := csrfOf(t, html)
	res, _ := b.do("POST", "/console/login", url.Values{"email": {email}, "password": {password}, "tenant": {tenant}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	return csrf
}

// TestConsoleAttacks attacks the console from outside: the CSP and
// clickjacking headers on every page, a forged or missing CSRF token, a
// token of another browser's session, cross-site posts, redirects through
// next and back to another site, another institution's IDs in every form
// that takes one, NUL characters in forms, and a learner, who sees no
// admin section in the menu, no settings form to save, and whose posts of
// admin actions change nothing. Never a 5xx.
func TestConsoleAttacks(t *testing.T) {
	k := start(t, nil)
	k.institution("northwind")
	k.institution("southwind")
	north := k.login("admin@northwind.test", "northwind")
	south := k.login("admin@southwind.test", "southwind")
	idOf := func(token, email string) string {
		_, members := k.api("GET", "/api/v1/tenant/members", token, nil)
		for _, m := range members["items"].([]any) {
			if m := m.(map[string]any); m["email"] == email {
				return m["user_id"].(string)
			}
		}
		t.Fatalf("no member %s", email)
		return ""
	}
	southLearner := idOf(south, "learner@southwind.test")
	southAdmin := idOf(south, "admin@southwind.test")
	northAdmin := idOf(north, "admin@northwind.test")
	status, inv := k.api("POST", "/api/v1/tenant/invitations", south, map[string]any{"email": "invited@southwind.test", "roles": []string{"learner"}})
	require.Equal(t, 201, status, "%v", inv)
	status, key := k.api("POST", "/api/v1/tenant/apikeys", south, map[string]any{"name": "theirs", "permissions": []string{"tenancy.member.read"}})
	require.Equal(t, 201, status, "%v", key)
	status, erasure := k.api("POST", "/api/v1/tenant/members/"+southLearner+"/erasure", south, nil)
	require.Equal(t, 202, status, "%v", erasure)
	southState := func() string {
		var sb strings.Builder
		for _, p := range []string{"/api/v1/tenant/members", "/api/v1/tenant/invitations", "/api/v1/tenant/apikeys", "/api/v1/tenant/erasures", "/api/v1/tenant/data-exports", "/api/v1/tenant/roles", "/api/v1/tenant"} {
			_, body := k.api("GET", p, south, nil)
			delete(body, "request_id")
			fmt.Fprintf(&sb, "%s: %v\n", p, body)
		}
		return sb.String()
	}
	before := southState()

	admin := newBrowserless(t, k)
	csrf := signIn(t, admin, "admin@northwind.test", "northwind")

	// Every page: the CSP, no framing, no caching.
	for _, page := range []string{"/console", "/console/account", "/console/institution", "/console/plugins", "/console/people", "/console/people/" + northAdmin,
		"/console/privacy", "/console/roles", "/console/roles/learner", "/console/apikeys", "/console/audit", "/console/events", "/console/deliveries", "/console/jobs",
		"/console/nowhere", "/console/people/" + southAdmin, "/console/static/console.css"} {
		res, html := admin.do("GET", page, nil)
		require.Less(t, res.StatusCode, 500, "%s: %s", page, html)
		require.Equal(t, consoleCSP, res.Header.Get("Content-Security-Policy"), page)
		require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), page)
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), page)
		if !strings.Contains(page, "/static/") {
			require.Equal(t, "no-store", res.Header.Get("Cache-Control"), page)
			require.NotContains(t, html, "<script>", page)
		}
	}
	res, _ := newBrowserless(t, k).do("GET", "/console/login", nil)
	require.Equal(t, consoleCSP, res.Header.Get("Content-Security-Policy"))

	// CSRF: none, forged, another browser's, on the right session.
	other := newBrowserless(t, k)
	_, html := other.do("GET", "/console/login", nil)
	otherCSRF := csrfOf(t, html)
	invite := func(token string) url.Values {
		return url.Values{"email": {"csrf@northwind.test"}, "roles": {"learner"}, "csrf": {token}}
	}
	for name, form := range map[string]url.Values{"no token": {"email": {"csrf@northwind.test"}, "roles": {"learner"}},
		"empty token": invite(""), "forged token": invite(strings.Repeat("A", len(csrf))), "another browser's token": invite(otherCSRF),
		"token with a NUL": invite(csrf + "\x00"), "token twice, the first forged": {"csrf": {"forged", csrf}, "email": {"csrf@northwind.test"}, "roles": {"learner"}}} {
		res, html := admin.do("POST", "/console/people/invite", form)
		require.Equal(t, http.StatusForbidden, res.StatusCode, "%s: %s", name, html)
	}
	// Cross-site posts, with a valid token.
	for name, h := range map[string][]string{"cross-site": {"Sec-Fetch-Site", "cross-site"}, "same-site (a sibling subdomain)": {"Sec-Fetch-Site", "same-site"},
		"another origin": {"Origin", "https://evil.example"}, "another port": {"Origin", strings.Replace(k.url, "127.0.0.1:", "127.0.0.1:1", 1)},
		"origin without a host": {"Origin", "file://"}} {
		res, html := admin.do("POST", "/console/people/invite", invite(csrf), h...)
		require.Equal(t, http.StatusForbidden, res.StatusCode, "%s: %s", name, html)
	}
	_, invs := k.api("GET", "/api/v1/tenant/invitations", north, nil)
	require.Empty(t, invs["items"], "no refused post invited anyone")

	// Redirects stay in the console.
	for _, next := range []string{"https://evil.example/", "//evil.example", "/\\evil.example", "/console\\@evil.example", "javascript:alert(1)", "/console.evil.example", "/console/\r\nLocation: https://evil.example"} {
		b := newBrowserless(t, k)
		_, html := b.do("GET", "/console/login?next="+url.QueryEscape(next), nil)
		res, _ := b.do("POST", "/console/login", url.Values{"email": {"admin@northwind.test"}, "password": {password}, "tenant": {"northwind"}, "csrf": {csrfOf(t, html)}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/console", res.Header.Get("Location"), next)
	}
	res, _ = admin.do("POST", "/console/plugins/nope/enabled", url.Values{"csrf": {csrf}, "enabled": {"true"}, "back": {"/console\\@evil.example"}})
	require.Less(t, res.StatusCode, 500)
	require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/console"), res.Header.Get("Location"))
	require.NotContains(t, res.Header.Get("Location"), "evil")
	res, _ = admin.do("POST", "/console/deliveries/replay-dead", url.Values{"csrf": {csrf}, "back": {"https://evil.example/"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.NotContains(t, res.Header.Get("Location"), "evil")

	// Another institution's IDs in every form that takes one: nothing of
	// theirs changes.
	for _, path := range []string{"/console/people/" + southLearner + "/roles", "/console/people/" + southLearner + "/remove", "/console/people/" + southAdmin + "/remove",
		"/console/people/" + southLearner + "/export", "/console/people/" + southLearner + "/erasure", "/console/people/invitations/" + inv["id"].(string) + "/revoke",
		"/console/apikeys/" + key["id"].(string) + "/revoke", "/console/privacy/erasures/" + erasure["id"].(string) + "/cancel",
		"/console/privacy/exports/" + erasure["id"].(string) + "/download", "/console/account/sessions/" + southAdmin + "/revoke"} {
		res, html := admin.do("POST", path, url.Values{"csrf": {csrf}, "roles": {"admin"}})
		require.Less(t, res.StatusCode, 500, "%s: %s", path, html)
	}
	// NUL characters in forms: the API's 422, at the field.
	for _, c := range []struct{ path, field, value string }{
		{"/console/institution", "name", "North\x00wind"},
		{"/console/apikeys", "name", "key\x00"},
		{"/console/roles", "permissions", "tenancy.member.read\x00"},
		{"/console/people/invite", "roles", "learner\x00"},
	} {
		form := url.Values{"csrf": {csrf}, c.field: {c.value}}
		switch c.path {
		case "/console/roles":
			form.Set("name", "nul")
		case "/console/people/invite":
			form.Set("email", "nul@northwind.test")
		case "/console/apikeys":
			form.Set("permissions", "tenancy.member.read")
		case "/console/institution":
			form.Set("erasure_cool_off_hours", "1")
		}
		res, html := admin.do("POST", c.path, form)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%s: %s", c.path, html)
		require.Contains(t, html, `role="alert"`)
	}
	// NUL and bytes that are not UTF-8 in paths and queries: a 4xx page.
	for _, page := range []string{"/console/people/%00", "/console/people/%FF", "/console/roles/%00", "/console/plugins/%00/settings", "/console/jobs/%00/x",
		"/console/apps/%00/x", "/console/audit?cursor=%00", "/console/events?type=%FF", "/console/deliveries?status=%00", "/console/login?next=%00",
		"/console/apps/courses/courses_get_courses?cursor=%FF"} {
		res, html := admin.do("GET", page, nil)
		require.Less(t, res.StatusCode, 500, "%s: %s", page, html)
		require.Equal(t, consoleCSP, res.Header.Get("Content-Security-Policy"), page)
	}
	for _, path := range []string{"/console/people/%00/roles", "/console/apikeys/%FF/revoke", "/console/privacy/erasures/%00/cancel", "/console/deliveries/%00/replay",
		"/console/jobs/x/%00/run", "/console/operator/keys/%00/retire", "/console/account/sessions/%FF/revoke"} {
		res, html := admin.do("POST", path, url.Values{"csrf": {csrf}})
		require.Less(t, res.StatusCode, 500, "%s: %s", path, html)
	}
	require.Equal(t, before, southState(), "nothing of the other institution changed")

	// A learner: no admin section, no settings form, and admin actions
	// posted anyway change nothing.
	learner := newBrowserless(t, k)
	lcsrf := signIn(t, learner, "learner@northwind.test", "northwind")
	_, html = learner.do("GET", "/console", nil)
	for _, section := range []string{"/console/plugins", "/console/people", "/console/roles", "/console/privacy", "/console/audit", "/console/events", "/console/deliveries", "/console/jobs"} {
		require.NotContains(t, html, `href="`+section+`"`, "a learner's menu")
	}
	require.Contains(t, html, `href="/console/account"`)
	_, html = learner.do("GET", "/console/institution", nil)
	require.NotContains(t, html, "Save settings")
	northState := func() string {
		var sb strings.Builder
		for _, p := range []string{"/api/v1/tenant/members", "/api/v1/tenant/invitations", "/api/v1/tenant/apikeys", "/api/v1/tenant/erasures", "/api/v1/tenant/roles", "/api/v1/tenant", "/api/v1/tenant/plugins"} {
			_, body := k.api("GET", p, north, nil)
			delete(body, "request_id")
			fmt.Fprintf(&sb, "%s: %v\n", p, body)
		}
		return sb.String()
	}
	nBefore := northState()
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/console/people/invite", url.Values{"email": {"mine@northwind.test"}, "roles": {"admin"}}},
		{"/console/people/" + northAdmin + "/roles", url.Values{"roles": {"learner"}}},
		{"/console/people/" + northAdmin + "/remove", url.Values{}},
		{"/console/people/" + northAdmin + "/erasure", url.Values{}},
		{"/console/institution", url.Values{"name": {"Pwned"}, "erasure_cool_off_hours": {"0"}}},
		{"/console/roles", url.Values{"name": {"boss"}, "permissions": {"tenancy.member.remove"}}},
		{"/console/apikeys", url.Values{"name": {"mine"}, "permissions": {"tenancy.member.remove"}}},
		{"/console/deliveries/replay-dead", url.Values{}},
		{"/console/operator/institutions", url.Values{"slug": {"mine"}, "name": {"Mine"}}},
		{"/console/operator/keys/rotate", url.Values{}},
	} {
		c.form.Set("csrf", lcsrf)
		res, html := learner.do("POST", c.path, c.form)
		require.Less(t, res.StatusCode, 500, "%s: %s", c.path, html)
		require.NotEqual(t, http.StatusOK, res.StatusCode, "%s: %s", c.path, html)
	}
	require.Equal(t, nBefore, northState(), "a learner changed nothing")
}

// A plugin's screen offers a person only the form and the row buttons
// whose routes they may use: a learner allowed to read the catalogue
// sees it without the "create a course" form or a "Publish" button,
// which an admin has; the learner's post of them anyway is the API's
// refusal, and nothing is created.
func TestConsoleScreensOfferOnlyWhatOneMay(t *testing.T) {
	k := start(t, []plugin{{name: "courses", module: "plugins/courses"}})
	k.institution("northwind")
	admin := k.login("admin@northwind.test", "northwind")
	status, created := k.api("POST", "/api/v1/courses", admin, map[string]any{"title": "Practical Statistics", "summary": "Numbers you can trust."})
	require.Equal(t, 201, status, "%v", created)
	id := created["id"].(string)
	status, module := k.api("POST", "/api/v1/courses/"+id+"/modules", admin, map[string]any{"title": "Basics"})
	require.Equal(t, 201, status, "%v", module)
	status, lesson := k.api("POST", "/api/v1/courses/"+id+"/modules/"+module["id"].(string)+"/lessons", admin,
		map[string]any{"title": "Means", "body": "# Means\n\nThe average.", "estimated_minutes": 10})
	require.Equal(t, 201, status, "%v", lesson)
	status, published := k.api("POST", "/api/v1/courses/"+id+"/publish", admin, nil)
	require.Less(t, status, 300, "%v", published)

	const catalogue = "/console/apps/courses/courses_get_courses"
	ab := newBrowserless(t, k)
	signIn(t, ab, "admin@northwind.test", "northwind")
	res, html := ab.do("GET", catalogue, nil)
	require.Equal(t, 200, res.StatusCode, html)
	require.Contains(t, html, "Practical Statistics")
	require.Regexp(t, `<button type="submit" class="small secondary">Publish`, html)
	require.Contains(t, html, `<button type="submit">Save</button>`)

	// The learner may also see which plugins are on (the console shows
	// plugin screens to those who may), and read the catalogue.
	status, role := k.api("PUT", "/api/v1/tenant/roles/viewer", admin, map[string]any{"permissions": []string{"tenancy.plugin.read", "courses.course.read"}})
	require.Equal(t, 200, status, "%v", role)
	_, members := k.api("GET", "/api/v1/tenant/members", admin, nil)
	for _, m := range members["items"].([]any) {
		if m := m.(map[string]any); m["email"] == "learner@northwind.test" {
			status, body := k.api("PUT", "/api/v1/tenant/members/"+m["user_id"].(string)+"/roles", admin, map[string]any{"roles": []string{"learner", "viewer"}})
			require.Equal(t, 200, status, "%v", body)
		}
	}
	lb := newBrowserless(t, k)
	lcsrf := signIn(t, lb, "learner@northwind.test", "northwind")
	res, html = lb.do("GET", catalogue, nil)
	require.Equal(t, 200, res.StatusCode, html)
	require.Contains(t, html, "Practical Statistics", "the learner reads the catalogue")
	require.NotContains(t, html, ">Publish", "no button the learner may not use")
	require.NotContains(t, html, `<button type="submit">Save</button>`, "no form the learner may not use")
	require.NotContains(t, html, "/actions/")
	// Posted anyway (the first action, whatever it is): the API refuses.
	res, html = lb.do("POST", catalogue+"/actions/0", url.Values{"csrf": {lcsrf}, "id": {id}})
	require.Less(t, res.StatusCode, 500, html)
	res, html = lb.do("POST", catalogue, url.Values{"csrf": {lcsrf}, "title": {"Mine"}})
	require.Less(t, res.StatusCode, 500, html)
	status, list := k.api("GET", "/api/v1/courses", admin, nil)
	require.Equal(t, 200, status)
	require.Len(t, list["items"], 1, "the learner created no course")
}
