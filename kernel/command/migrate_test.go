package command

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMigrate(t *testing.T) {
	requireMissingConfiguration(t, []string{"migrate"}, "DATABASE_URL: is required")

	clearEnv(t)
	t.Setenv("DATABASE_URL", emptyDatabase(t))
	r := run("migrate")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "applied migrations [")

	r = run("migrate")
	require.Equal(t, 0, r.code, r)
	require.Equal(t, "database is up to date\n", r.stdout)
}
