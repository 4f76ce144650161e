package command

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	for _, args := range [][]string{{"keys"}, {"keys", "retire"}, {"keys", "burn"}} {
		r := run(args...)
		require.Equal(t, 2, r.code, r)
		require.Contains(t, r.stderr, "usage: edulure keys list | rotate | retire <kid>")
	}
	requireMissingConfiguration(t, []string{"keys", "list"}, "DATABASE_URL", "EDULURE_SECRET_KEY")

	// The first use creates a key, rotate adds a second.
	adminDatabase(t)
	r := run("keys", "rotate")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "new signing key ")

	r = run("keys", "list")
	require.Equal(t, 0, r.code, r)
	keys := parseKeys(t, r.stdout)
	require.Len(t, keys, 2, r)
	require.Equal(t, "verifying", keys[0].state)
	require.Equal(t, "signing", keys[1].state)
	oldKID, activeKID := keys[0].kid, keys[1].kid

	r = run("keys", "retire", activeKID)
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "active signing key")

	r = run("keys", "retire", oldKID)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "retired "+oldKID)

	r = run("keys", "list")
	require.Equal(t, 0, r.code, r)
	keys = parseKeys(t, r.stdout)
	require.Len(t, keys, 2, r)
	require.Equal(t, key{oldKID, "retired"}, keys[0])
	require.Equal(t, key{activeKID, "signing"}, keys[1])

	t.Run("a different secret key cannot open the signing keys", func(t *testing.T) {
		t.Setenv("EDULURE_SECRET_KEY", strings.Repeat("0f", 32))
		r := run("keys", "list")
		require.Equal(t, 1, r.code, r)
		require.Contains(t, r.stderr, "wrong EDULURE_SECRET_KEY")
	})
}

type key struct{ kid, state string }

func parseKeys(t *testing.T, out string) []key {
	t.Helper()
	var keys []key
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 3, "line %q", line)
		require.Equal(t, "created", f[2], "line %q", line)
		keys = append(keys, key{f[0], f[1]})
	}
	return keys
}
