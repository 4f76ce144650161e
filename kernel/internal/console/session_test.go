package console

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/seal"
)

func testConsole(t testing.TB) *Console {
	s, err := seal.New([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	c, err := New(Deps{API: http.NotFoundHandler(), Sealer: s})
	require.NoError(t, err)
	return c
}

// A session survives its cookie; whatever else a browser sends as the
// cookie is no session (a fresh one, signed out), never a panic.
func FuzzSessionCookie(f *testing.F) {
	c := testConsole(f)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://127.0.0.1/console", nil)
	c.save(w, r, &session{CSRF: "c", Access: "a", Refresh: "r", Expires: 1})
	f.Add(w.Result().Cookies()[0].Value)
	f.Add("")
	f.Add("%%%")
	f.Add(strings.Repeat("A", 5000))
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "http://127.0.0.1/console", nil)
		r.Header.Set("Cookie", cookieName+"="+value)
		s := c.load(r)
		require.NotEmpty(t, s.CSRF)
		if s.Access != "" {
			require.Equal(t, "a", s.Access, "only the sealed session opens")
		}
	})
}

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	c := testConsole(t)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://console.example.edu/console", nil)
	in := &session{CSRF: "csrf", Access: "eyJ.access", Refresh: "edr_refresh", Expires: 42, Email: "a@b.c", Tenant: "North"}
	c.save(w, r, in)
	ck := w.Result().Cookies()[0]
	require.True(t, ck.Secure && ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.NotContains(t, ck.Value, "eyJ")
	r2 := httptest.NewRequest("GET", "http://console.example.edu/console", nil)
	r2.AddCookie(ck)
	require.Equal(t, in, c.load(r2))
}

func TestNextPageStaysInTheConsole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/plugins":   "/console/plugins",
		"":                   "/console",
		"https://evil.test/": "/console",
		"//evil.test":        "/console",
		"/console\\@evil":    "/console",
		"/api/v1/me":         "/console",
		"/console.evil.test": "/console",
		"/consolex":          "/console",
		"/console?page=2":    "/console?page=2",
		"/console/jobs\r\nX": "/console",
		"/console/\tx":       "/console",
	} {
		require.Equal(t, want, nextPage(in), in)
	}
}

// A session sealed by another deployment (another EDULURE_SECRET_KEY), or
// sealed under this key for another purpose, is no session.
func TestSessionOfAnotherDeployment(t *testing.T) {
	t.Parallel()
	ours := testConsole(t)
	s, err := seal.New([]byte(strings.Repeat("z", 32)))
	require.NoError(t, err)
	theirs, err := New(Deps{API: http.NotFoundHandler(), Sealer: s})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://127.0.0.1/console", nil)
	theirs.save(w, r, &session{CSRF: "c", Access: "a", Refresh: "r", Expires: 1})
	r2 := httptest.NewRequest("GET", "http://127.0.0.1/console", nil)
	r2.AddCookie(w.Result().Cookies()[0])
	got := ours.load(r2)
	require.False(t, got.signedIn())
	require.NotEqual(t, "c", got.CSRF)

	plain := []byte(`{"c":"c","a":"a"}`)
	own, err := seal.New([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	r3 := httptest.NewRequest("GET", "http://127.0.0.1/console", nil)
	r3.AddCookie(&http.Cookie{Name: cookieName, Value: base64.RawURLEncoding.EncodeToString(own.Seal(plain, []byte("totp-secret")))})
	require.False(t, ours.load(r3).signedIn(), "sealed for another purpose")
	r4 := httptest.NewRequest("GET", "http://127.0.0.1/console", nil)
	r4.AddCookie(&http.Cookie{Name: cookieName, Value: base64.RawURLEncoding.EncodeToString(own.Seal(plain, sessionAAD))})
	require.True(t, ours.load(r4).signedIn(), "the same key and purpose opens")
}
