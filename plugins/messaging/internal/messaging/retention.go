package messaging

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The retention classes of messaging (docs/messaging.md, "Retention"): what
// an institution's retention policy may expire, asked by the kernel on a
// governance plugin's behalf.
//
//   - posts: posts (and announcements) written before the cutoff, with
//     their thread: comments, reactions, polls and votes, reports (by
//     foreign key), and the revisions, mentions and attachments (rows and
//     files) of the post and its comments (Cascade). Holds: a person (the
//     author), a space. Delete, or archive: the posts' rows are first
//     written to the institution's storage (sdk.RetentionArchiveKey).
//   - notifications: notifications made before the cutoff, with their
//     ledger and delivery history (by foreign key). Holds: a person (the
//     recipient).
func (p *Plugin) retention() []sdk.RetentionClass {
	return []sdk.RetentionClass{
		{
			Name: "posts", Description: "Posts and announcements by when they were written, with their comments, reactions, polls, reports, revisions, mentions and attachments.",
			Table: "posts", TimeColumn: "created_at", Subject: "author_id", ID: "id",
			HoldColumns: map[string]string{"space": "space_id"},
			// archive: each batch's posts (the rows themselves) go to the
			// institution's storage, retention/posts/<date>/<batch>.jsonl.gz,
			// before they are deleted; what hangs off them goes as with delete.
			Actions: []sdk.RetentionAction{sdk.RetainDelete, sdk.RetainArchive},
			Cascade: p.expirePosts,
		},
		{
			Name: "notifications", Description: "Notifications by when they were made, with their delivery ledger and history.",
			Table: "notifications", TimeColumn: "created_at", Subject: "recipient_id", ID: "id",
			Actions: []sdk.RetentionAction{sdk.RetainDelete},
		},
	}
}

// expirePosts clears, before a batch of posts is deleted, what hangs off
// them without a foreign key that deletes it: the revisions and mentions
// of the posts and their comments, and their attachments with the files.
func (p *Plugin) expirePosts(ctx context.Context, run *sdk.RetentionRun, tx pgx.Tx, ids []string) error {
	if _, err := tx.Exec(ctx, `
		WITH targets AS (
			SELECT unnest($1::uuid[]) AS id
			UNION ALL SELECT c.id FROM comments c WHERE c.post_id = ANY ($1::uuid[])
		), r AS (
			DELETE FROM revisions WHERE target_id IN (SELECT id FROM targets)
		)
		DELETE FROM mentions WHERE target_id IN (SELECT id FROM targets)`, ids); err != nil {
		return fmt.Errorf("deleting revisions and mentions: %w", err)
	}
	rows, err := tx.Query(ctx, `DELETE FROM attachments WHERE post_id = ANY ($1::uuid[]) RETURNING object_key`, ids)
	if err != nil {
		return fmt.Errorf("deleting attachments: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("deleting attachments: %w", err)
	}
	bucket := run.Storage()
	for _, k := range keys {
		if err := bucket.Delete(ctx, k); err != nil && !errors.Is(err, sdk.ErrNotFound) {
			return fmt.Errorf("deleting attachment %s: %w", k, err)
		}
	}
	return nil
}
