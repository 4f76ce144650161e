package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/migrations"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// emptyDatabase is a pool on a new database without migrations.
func emptyDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, os.Getenv(dbtest.EnvURL))
	require.NoError(t, err)
	name := "audit_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u, err := url.Parse(os.Getenv(dbtest.EnvURL))
	require.NoError(t, err)
	u.Path = "/" + name
	pool, err := database.Connect(ctx, u.String(), 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

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

// appendV1 writes an entry the way the kernel did before migration 0014.
func appendV1(t *testing.T, pool *pgxpool.Pool, e Entry) {
	t.Helper()
	ctx := context.Background()
	chain := chainOf(e.TenantID)
	prev := make([]byte, sha256.Size)
	var seq int64
	err := pool.QueryRow(ctx, `SELECT seq, hash FROM kernel.audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, chain).Scan(&seq, &prev)
	if err != nil {
		require.ErrorIs(t, err, pgx.ErrNoRows)
	}
	e.Seq = seq + 1
	e.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	data, err := canonicalJSON(e.Data)
	require.NoError(t, err)
	var tenant any
	if e.TenantID != "" {
		tenant = e.TenantID
	}
	_, err = pool.Exec(ctx, `INSERT INTO kernel.audit_log
		(chain, seq, tenant_id, actor_type, actor_id, action, target, data, ip, request_id, created_at, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		chain, e.Seq, tenant, e.ActorType, e.ActorID, e.Action, e.Target, data, e.IP, e.RequestID, e.CreatedAt, prev, entryHashV1(prev, chain, e, data))
	require.NoError(t, err)
}

func appendV2(t *testing.T, pool *pgxpool.Pool, e Entry) {
	t.Helper()
	require.NoError(t, database.InTx(context.Background(), pool, func(tx pgx.Tx) error { return Append(context.Background(), tx, e) }))
}

func verify(t *testing.T, pool *pgxpool.Pool, tenant string) Result {
	t.Helper()
	res, err := Verify(context.Background(), pool, tenant)
	require.NoError(t, err)
	return res
}

// tamper changes the audit log behind the append-only trigger's back.
func tamper(t *testing.T, pool *pgxpool.Pool, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `ALTER TABLE kernel.audit_log DISABLE TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	tag, err := tx.Exec(ctx, stmt, args...)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), stmt)
	_, err = tx.Exec(ctx, `ALTER TABLE kernel.audit_log ENABLE TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}

// TestErasureKeepsTheChainVerifiable walks a chain through the upgrade:
// entries written the old way verify after migration 0014 moves their
// values out; new entries commit to their values; erasing a person
// removes every value that mentions them, old or new, and the chain still
// verifies; tampering with what stays is still found.
func TestErasureKeepsTheChainVerifiable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyDatabase(t)
	_, err := database.Migrate(ctx, pool, "kernel", migrationsUpTo(t, 13))
	require.NoError(t, err)

	tenant := uuid.NewString()
	ada, admin := uuid.NewString(), uuid.NewString()
	const email, name = "ada.quintessence@uni.test", "Ada Quintessence"
	appendV1(t, pool, Entry{TenantID: tenant, ActorType: "user", ActorID: admin, Action: "tenancy.invitation.created", Target: uuid.NewString(),
		Data: map[string]any{"email": email, "roles": []string{"learner"}}, IP: "192.0.2.1", RequestID: "r1"})
	appendV1(t, pool, Entry{TenantID: tenant, ActorType: "user", ActorID: ada, Action: "tenancy.member.joined", Target: ada,
		Data: map[string]any{"user_id": ada}, IP: "198.51.100.7", RequestID: "r2"})
	appendV1(t, pool, Entry{TenantID: tenant, ActorType: "user", ActorID: admin, Action: "tenancy.role.updated", Target: "tutor",
		Data: map[string]any{"permissions": []string{"x.y.z"}}, IP: "192.0.2.1", RequestID: "r3"})

	_, err = database.Migrate(ctx, pool, "kernel", migrations.FS)
	require.NoError(t, err)
	res := verify(t, pool, tenant)
	require.True(t, res.Valid, "%+v", res)
	require.EqualValues(t, 3, res.Entries)

	appendV2(t, pool, Entry{TenantID: tenant, ActorType: "user", ActorID: admin, Action: "tenancy.member.roles_changed", Target: ada,
		Data: map[string]any{"roles": []string{"learner", "tutor"}}, IP: "192.0.2.1", RequestID: "r4"})
	appendV2(t, pool, Entry{TenantID: tenant, ActorType: "plugin", ActorID: "plugin:courses", Action: "courses.certificate.issued", Target: "certificate:1",
		Data: map[string]any{"holder": name, "plugin": "courses"}, RequestID: "r5"})
	appendV2(t, pool, Entry{TenantID: tenant, ActorType: "user", ActorID: admin, Action: "tenancy.settings.updated", Target: tenant, IP: "192.0.2.1"})
	appendV2(t, pool, Entry{TenantID: tenant, ActorType: "user", ActorID: admin, Action: "x.motto.updated", Data: map[string]any{"motto": "Ada Quintessenceville rules"}})
	res = verify(t, pool, tenant)
	require.True(t, res.Valid, "%+v", res)
	require.EqualValues(t, 7, res.Entries)
	require.Zero(t, res.Erased)

	var n int64
	require.NoError(t, database.InTx(ctx, pool, func(tx pgx.Tx) error {
		n, err = Redact(ctx, tx, tenant, []Person{{UserID: ada, Email: email, Name: name}}, "erasure:1")
		return err
	}))
	require.EqualValues(t, 4, n, "the invitation, the joining, the role change and the certificate mention her")
	res = verify(t, pool, tenant)
	require.True(t, res.Valid, "%+v", res)
	require.EqualValues(t, 8, res.Entries, "the erasure is recorded in the chain")
	require.EqualValues(t, 4, res.Erased)

	var text string
	require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(concat_ws(' ', actor_id, target, data::text, ip), ' ') FROM kernel.audit_personal`).Scan(&text))
	for _, trace := range []string{ada, email, "198.51.100.7"} {
		require.NotContains(t, text, trace)
	}
	require.NotRegexp(t, `\b`+name+`\b`, text)
	require.Contains(t, text, "Ada Quintessenceville", "a name is looked for as words")
	require.Contains(t, text, admin, "others' values stay")
	require.Contains(t, text, "192.0.2.1", "the admin's address stays")

	entries, err := List(ctx, pool, tenant, 0, 100)
	require.NoError(t, err)
	byAction := map[string]Entry{}
	for _, e := range entries {
		byAction[e.Action] = e
	}
	require.Equal(t, []string{"actor_id", "target", "data", "ip"}, byAction["tenancy.member.joined"].Erased)
	require.Equal(t, []string{"target"}, byAction["tenancy.member.roles_changed"].Erased)
	require.Equal(t, admin, byAction["tenancy.member.roles_changed"].ActorID)
	require.Equal(t, []any{"learner", "tutor"}, byAction["tenancy.member.roles_changed"].Data["roles"])
	require.Equal(t, []string{"data"}, byAction["courses.certificate.issued"].Erased)
	require.Empty(t, byAction["tenancy.settings.updated"].Erased)
	require.Empty(t, byAction["x.motto.updated"].Erased, "a name is looked for as words, not inside one")

	// Idempotent: nothing more to erase, nothing appended.
	require.NoError(t, database.InTx(ctx, pool, func(tx pgx.Tx) error {
		n, err = Redact(ctx, tx, tenant, []Person{{UserID: ada, Email: email, Name: name}}, "erasure:2")
		return err
	}))
	require.Zero(t, n)
	require.EqualValues(t, 8, verify(t, pool, tenant).Entries)

	// What stays is still protected: an erased old entry's action, ...
	tamper(t, pool, `UPDATE kernel.audit_log SET action = 'tenancy.member.left' WHERE chain = $1 AND seq = 2`, tenant)
	res = verify(t, pool, tenant)
	require.False(t, res.Valid)
	require.EqualValues(t, 4, res.BrokenAt, "the anchor in the first format-2 entry")
	tamper(t, pool, `UPDATE kernel.audit_log SET action = 'tenancy.member.joined' WHERE chain = $1 AND seq = 2`, tenant)
	require.True(t, verify(t, pool, tenant).Valid)
	// ... a new entry's remaining value, ...
	_, err = pool.Exec(ctx, `UPDATE kernel.audit_personal SET data = '{"roles": ["admin"]}' WHERE entry_id = (SELECT id FROM kernel.audit_log WHERE chain = $1 AND seq = 4)`, tenant)
	require.NoError(t, err)
	res = verify(t, pool, tenant)
	require.False(t, res.Valid)
	require.EqualValues(t, 4, res.BrokenAt)
	require.Equal(t, "personal value data does not match its commitment", res.Reason)
	_, err = pool.Exec(ctx, `UPDATE kernel.audit_personal SET data = '{"roles": ["learner", "tutor"]}' WHERE entry_id = (SELECT id FROM kernel.audit_log WHERE chain = $1 AND seq = 4)`, tenant)
	require.NoError(t, err)
	require.True(t, verify(t, pool, tenant).Valid)
	// ... and an old entry whose values are there.
	_, err = pool.Exec(ctx, `UPDATE kernel.audit_personal SET ip = '203.0.113.9' WHERE entry_id = (SELECT id FROM kernel.audit_log WHERE chain = $1 AND seq = 3)`, tenant)
	require.NoError(t, err)
	res = verify(t, pool, tenant)
	require.False(t, res.Valid)
	require.EqualValues(t, 3, res.BrokenAt)
}

// TestEraseChain: an institution that leaves loses every personal value of
// its chain; the chain still verifies.
func TestEraseChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := dbtest.NewPool(t)
	tenant := uuid.NewString()
	for i := range 5 {
		appendV2(t, pool, Entry{TenantID: tenant, ActorType: "user", ActorID: uuid.NewString(), Action: "x.y.z", Target: fmt.Sprint(i),
			Data: map[string]any{"email": fmt.Sprintf("p%d@x.test", i)}, IP: "192.0.2.1"})
	}
	other := uuid.NewString()
	appendV2(t, pool, Entry{TenantID: other, ActorType: "user", ActorID: uuid.NewString(), Action: "x.y.z", Data: map[string]any{"email": "stays@x.test"}})
	var n int64
	require.NoError(t, database.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		n, err = EraseChain(ctx, tx, tenant, "offboarding:1")
		return err
	}))
	require.EqualValues(t, 5, n)
	res := verify(t, pool, tenant)
	require.True(t, res.Valid, "%+v", res)
	require.EqualValues(t, 5, res.Erased)
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM kernel.audit_personal WHERE chain = $1 AND data::text LIKE '%@x.test%'`, tenant).Scan(&left))
	require.Zero(t, left)
	require.True(t, verify(t, pool, other).Valid)
	entries, err := List(ctx, pool, other, 0, 10)
	require.NoError(t, err)
	require.Equal(t, "stays@x.test", entries[0].Data["email"])
}
