package pgcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/pgcluster"
)

// A development cluster survives a restart: the second Open reuses the data
// directory and its password instead of running initdb again (make run twice).
func TestOpenTwiceReusesCluster(t *testing.T) {
	// Not t.TempDir: its parent is private, and the server may run as the
	// postgres user, which must reach the data directory.
	dir, err := os.MkdirTemp("", "edulure-pgcluster-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	ctx := context.Background()
	path := filepath.Join(dir, "pg")
	for round := range 2 {
		c, err := pgcluster.Open(ctx, path, pgcluster.Options{Throwaway: true})
		require.NoError(t, err, "round %d", round)
		require.NoError(t, c.Start(ctx), "round %d", round)
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		require.NoError(t, err)
		if round == 0 {
			_, err = conn.Exec(ctx, "CREATE TABLE kept (id int)")
		} else {
			_, err = conn.Exec(ctx, "SELECT * FROM kept")
		}
		require.NoError(t, err, "round %d: data survives the restart", round)
		conn.Close(ctx)
		require.NoError(t, c.Stop())
	}
	c, err := pgcluster.Open(ctx, path, pgcluster.Options{})
	require.NoError(t, err)
	require.NoError(t, c.Remove())
}

// A checkout in root's home (mode 0700): the postgres user, as which the
// server runs for root, cannot enter it, so the cluster lives where it can,
// and the directory asked for leads there, across restarts (make run as
// root in a container or a cloud shell).
func TestOpenInPrivateDirectory(t *testing.T) {
	home, err := os.MkdirTemp("", "edulure-private-home-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(home) })
	require.NoError(t, os.Chmod(home, 0o700))
	ctx := context.Background()
	path := filepath.Join(home, "edulure", ".data", "pg")
	var c *pgcluster.Cluster
	for round := range 2 {
		c, err = pgcluster.Open(ctx, path, pgcluster.Options{Throwaway: true})
		require.NoError(t, err, "round %d", round)
		require.NoError(t, c.Start(ctx), "round %d", round)
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		require.NoError(t, err, "round %d", round)
		if round == 0 {
			_, err = conn.Exec(ctx, "CREATE TABLE kept (id int)")
		} else {
			_, err = conn.Exec(ctx, "SELECT * FROM kept")
		}
		require.NoError(t, err, "round %d: data survives the restart", round)
		conn.Close(ctx)
		require.NoError(t, c.Stop())
	}
	_, err = os.Stat(path + ".password")
	require.NoError(t, err, "the password stays beside the directory asked for")
	require.NoError(t, c.Remove())
	_, err = os.Stat(c.Dir)
	require.ErrorIs(t, err, os.ErrNotExist, "Remove deletes the cluster where it lives")
	_, err = os.Lstat(path)
	require.ErrorIs(t, err, os.ErrNotExist)
}
