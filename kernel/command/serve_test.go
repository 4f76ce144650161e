package command

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServe(t *testing.T) {
	requireMissingConfiguration(t, []string{"serve"}, "DATABASE_URL: is required", "EDULURE_SECRET_KEY: is required")

	t.Run("a short secret key", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("DATABASE_URL", "postgres://localhost/edulure")
		t.Setenv("EDULURE_SECRET_KEY", "abcd")
		r := run("serve")
		require.Equal(t, 1, r.code, r)
		require.Contains(t, r.stderr, "EDULURE_SECRET_KEY: must be exactly 32 bytes")
		require.NotContains(t, r.stderr, "DATABASE_URL")
	})

	// It serves the API on EDULURE_ADDR until its context ends, then drains.
	adminDatabase(t)
	addr := freeAddr(t)
	t.Setenv("EDULURE_ADDR", addr)
	t.Setenv("EDULURE_PLUGINS_FILE", "none")
	stop := serving(t, serve, addr)
	res, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	_, err = stop()
	require.NoError(t, err)
	_, err = http.Get("http://" + addr + "/healthz")
	require.Error(t, err, "stopped serving")
}
