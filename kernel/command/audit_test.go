package command

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAuditVerify(t *testing.T) {
	requireMissingConfiguration(t, []string{"audit-verify"}, "DATABASE_URL", "EDULURE_SECRET_KEY")

	adminDatabase(t)
	require.Equal(t, 0, run("tenant-create", "-slug", "uni", "-name", "Uni").code)
	r := run("audit-verify")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "ok ")
	require.NotContains(t, r.stdout, "BROKEN")

	r = run("audit-verify", "-tenant", "uni")
	require.Equal(t, 0, r.code, r)
	require.True(t, strings.HasPrefix(r.stdout, "ok "), r)

	r = run("audit-verify", "-tenant", "nowhere")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "edulure audit-verify: ")
}
