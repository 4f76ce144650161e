package database_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/migrations"
)

// migrationsUpTo is the kernel's migrations numbered at most n.
func migrationsUpTo(t *testing.T, n int) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations.FS, ".")
	require.NoError(t, err)
	for _, e := range entries {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%04d_", &v); err != nil || v > n || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		b, err := fs.ReadFile(migrations.FS, e.Name())
		require.NoError(t, err)
		out[e.Name()] = &fstest.MapFile{Data: b}
	}
	return out
}

// TestEmailVerificationBackfill: upgrading a database, migration 0008
// counts as verified the accounts whose address was proven before it
// existed (operators, console-made accounts, invitation acceptors), and
// no account made by sign-up alone.
func TestEmailVerificationBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, os.Getenv(dbtest.EnvURL))
	require.NoError(t, err)
	name := "upgrade_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u, err := url.Parse(os.Getenv(dbtest.EnvURL))
	require.NoError(t, err)
	u.Path = "/" + name
	pool, err := database.Connect(ctx, u.String(), 2)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	_, err = database.Migrate(ctx, pool, "kernel", migrationsUpTo(t, 7))
	require.NoError(t, err)
	users := map[string]uuid.UUID{}
	for _, who := range []string{"operator", "console", "invited", "signup", "other-invite"} {
		users[who] = uuid.New()
		_, err := pool.Exec(ctx, `INSERT INTO kernel.users (id, email, display_name, password_hash, is_operator) VALUES ($1, $2, $3, 'x', $4)`,
			users[who], who+"@old.test", who, who == "operator")
		require.NoError(t, err)
	}
	tenant := uuid.New()
	_, err = pool.Exec(ctx, `INSERT INTO kernel.tenants (id, slug, name) VALUES ($1, 'old', 'Old')`, tenant)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO kernel.audit_log (chain, seq, actor_type, actor_id, action, target, created_at, prev_hash, hash)
		VALUES ('platform', 1, 'system', 'cli', 'identity.user.created', $1, now(), '\x00', '\x01'),
		       ('platform', 2, 'user', $2, 'identity.user.created', $2, now(), '\x01', '\x02')`, users["console"].String(), users["signup"].String())
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO kernel.invitations (id, tenant_id, email, roles, token_hash, expires_at, accepted_at, accepted_by)
		VALUES ($1, $2, 'INVITED@old.test', '{learner}', '\x01', now(), now(), $3),
		       ($4, $2, 'someone-else@old.test', '{learner}', '\x02', now(), now(), $5)`,
		uuid.New(), tenant, users["invited"], uuid.New(), users["other-invite"])
	require.NoError(t, err)

	applied, err := database.Migrate(ctx, pool, "kernel", migrations.FS)
	require.NoError(t, err)
	require.Contains(t, applied, 8)
	for who, want := range map[string]bool{"operator": true, "console": true, "invited": true, "signup": false, "other-invite": false} {
		var verified bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT email_verified_at IS NOT NULL FROM kernel.users WHERE id = $1`, users[who]).Scan(&verified))
		require.Equal(t, want, verified, who)
	}
}
