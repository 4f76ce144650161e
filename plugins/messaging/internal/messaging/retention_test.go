package messaging_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// seedThreads writes n posts of author in a new space of tenant at when,
// each with a comment, a revision, a mention of the post and its comment,
// and one attachment row, straight into the tables (as years of use
// would have).
func seedThreads(t *testing.T, h *plugintest.Harness, tenant, author string, when time.Time, n int) (space string) {
	t.Helper()
	space = plugintest.NewID()
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		ctx := context.Background()
		if _, err := tx.Exec(ctx, `INSERT INTO spaces (tenant_id, id, kind, course_id, title, created_at) VALUES ($1, $2, 'course', gen_random_uuid(), 'Space', $3)`, tenant, space, when); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			WITH p AS (
				INSERT INTO posts (tenant_id, id, space_id, author_id, kind, body, body_text, created_at)
				SELECT $1, gen_random_uuid(), $2, $3, 'post', 'hello ' || g, 'hello ' || g, $4 FROM generate_series(1, $5) g
				RETURNING id
			), c AS (
				INSERT INTO comments (tenant_id, id, post_id, author_id, body, body_text, created_at)
				SELECT $1, gen_random_uuid(), p.id, $3, 'reply', 'reply', $4 FROM p RETURNING id, post_id
			), r AS (
				INSERT INTO revisions (tenant_id, id, target_type, target_id, revision, body, edited_by, edited_at)
				SELECT $1, gen_random_uuid(), 'post', p.id, 1, 'first', $3, $4 FROM p
			), m AS (
				INSERT INTO mentions (tenant_id, target_type, target_id, user_id)
				SELECT $1, 'post', p.id, gen_random_uuid() FROM p
				UNION ALL SELECT $1, 'comment', c.id, gen_random_uuid() FROM c
			)
			INSERT INTO attachments (tenant_id, id, space_id, post_id, uploader_id, object_key, filename, content_type, created_at)
			SELECT $1, gen_random_uuid(), $2, p.id, $3, 'attachments/' || $3 || '/' || p.id, 'a.txt', 'text/plain', $4 FROM p`,
			tenant, space, author, when, n)
		return err
	}))
	return space
}

func count(t *testing.T, h *plugintest.Harness, tenant, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, h.DB().QueryRow(context.Background(), `SELECT count(*) FROM plugin_messaging.`+pgx.Identifier{table}.Sanitize()+` WHERE tenant_id = $1`, tenant).Scan(&n))
	return n
}

func TestRetentionOfPosts(t *testing.T) {
	e := setup(t)
	h := e.h
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	alice, bob := plugintest.NewID(), plugintest.NewID()
	now := time.Now().UTC()
	old, recent, cutoff := now.AddDate(-3, 0, 0), now.AddDate(0, -2, 0), now.AddDate(-1, 0, 0)
	seedThreads(t, h, a, alice, old, 40)
	heldSpace := seedThreads(t, h, a, alice, old, 3)
	seedThreads(t, h, a, bob, old, 4) // bob is on hold
	seedThreads(t, h, a, alice, recent, 5)
	seedThreads(t, h, b, alice, old, 6)

	req := sdk.RetentionRequest{TenantID: a, Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete, DryRun: true, SampleLimit: 3,
		Holds: []sdk.RetentionHold{{Kind: sdk.HoldPerson, ID: bob}, {Kind: "space", ID: heldSpace}}}
	dry, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, int64(40), dry.Matched)
	require.Len(t, dry.SampleIDs, 3)
	require.Equal(t, int64(52), count(t, h, a, "posts"), "a dry run changes nothing")

	req.DryRun = false
	run, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, dry.Matched, run.Matched)
	require.Equal(t, dry.Matched, run.Affected)
	require.Equal(t, int64(12), count(t, h, a, "posts"))
	require.Equal(t, int64(12), count(t, h, a, "comments"), "comments go with their post")
	require.Equal(t, int64(12), count(t, h, a, "revisions"), "revisions go with their post")
	require.Equal(t, int64(24), count(t, h, a, "mentions"), "mentions of the post and its comments go")
	require.Equal(t, int64(12), count(t, h, a, "attachments"))
	for _, table := range []string{"posts", "comments", "revisions", "attachments"} {
		require.Equal(t, int64(6), count(t, h, b, table), "another institution's %s are untouched", table)
	}

	// Notifications, with their ledger.
	require.NoError(t, h.InTenant(a, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO notifications (tenant_id, id, recipient_id, category, kind, title, body, dedupe_key, created_at)
			SELECT $1, gen_random_uuid(), $2, 'general', 'test', 't', 'b', 'k' || g, $3 FROM generate_series(1, 7) g`, a, alice, old)
		return err
	}))
	nreq := sdk.RetentionRequest{TenantID: a, Class: "notifications", Cutoff: cutoff, Action: sdk.RetainDelete, DryRun: true}
	dry, err = h.ApplyRetention(nreq)
	require.NoError(t, err)
	nreq.DryRun = false
	run, err = h.ApplyRetention(nreq)
	require.NoError(t, err)
	require.Equal(t, int64(7), dry.Matched)
	require.Equal(t, dry.Matched, run.Affected)
}
