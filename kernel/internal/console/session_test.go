package console

import (
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
	} {
		require.Equal(t, want, nextPage(in), in)
	}
}
