package command

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTenantCreate(t *testing.T) {
	requireMissingConfiguration(t, []string{"tenant-create", "-slug", "uni", "-name", "Uni"}, "DATABASE_URL", "EDULURE_SECRET_KEY")
	r := run("tenant-create")
	require.Equal(t, 2, r.code, r)
	require.Contains(t, r.stderr, "-slug")
	require.Contains(t, r.stderr, "-name")

	adminDatabase(t)
	r = run("tenant-create", "-slug", "uni", "-name", "Uni")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "created institution uni (")

	r = run("tenant-create", "-slug", "uni", "-name", "Another Uni")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "edulure tenant-create: ")
}
