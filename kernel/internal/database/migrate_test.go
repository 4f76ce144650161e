package database_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/migrations"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"0001_a.up.sql": {Data: []byte("CREATE TABLE demo.a (id int)")},
		"0002_b.up.sql": {Data: []byte("INSERT INTO demo.a VALUES (1)")},
	}
	var wg sync.WaitGroup
	applied := make([][]int, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = database.Migrate(ctx, pool, "demo", fsys)
		}()
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		require.NoError(t, errs[i])
		total += len(applied[i])
	}
	require.Equal(t, 2, total, "each migration applied exactly once across concurrent runs")
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM demo.a").Scan(&n))
	require.Equal(t, 1, n)
}

func TestMigrateRefusesEditedMigration(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	_, err := database.Migrate(ctx, pool, "demo", fstest.MapFS{"0001_a.up.sql": {Data: []byte("CREATE TABLE demo.a (id int)")}})
	require.NoError(t, err)
	_, err = database.Migrate(ctx, pool, "demo", fstest.MapFS{"0001_a.up.sql": {Data: []byte("CREATE TABLE demo.a (id bigint)")}})
	require.ErrorIs(t, err, database.ErrMigrationEdited)
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	t.Parallel()
	_, err := database.LoadMigrations(fstest.MapFS{"1_a.sql": {Data: []byte("SELECT 1")}})
	require.ErrorContains(t, err, "0001_name.up.sql")
	_, err = database.LoadMigrations(fstest.MapFS{
		"0001_a.up.sql": {Data: []byte("SELECT 1")}, "0001_b.up.sql": {Data: []byte("SELECT 1")},
	})
	require.ErrorContains(t, err, "share version 1")
}

func TestKernelMigrationsApplied(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	// The template already holds them: a second run applies nothing.
	applied, err := database.Migrate(context.Background(), pool, "kernel", migrations.FS)
	require.NoError(t, err)
	require.Empty(t, applied)
}
