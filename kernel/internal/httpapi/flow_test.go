package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSignupLoginMe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "ada@example.edu", "password": password, "display_name": "Ada"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, "ada@example.edu", r.str("user", "email"))

	r = b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "ada@example.edu", "password": password})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	tok := r.str("access_token")
	require.NotEmpty(t, r.str("refresh_token"))
	require.NotEmpty(t, r.Header.Get("X-Request-ID"))

	r = b.do("GET", "/api/v1/me", tok, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "ada@example.edu", r.str("user", "email"))
	require.Equal(t, "user", r.str("kind"))
}
