package messaging

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Rate limits against bursts, per person and space: at most post_burst
// posts, and comment_burst comments and reactions, within
// burst_window_seconds. Counted from the rows themselves under a
// per-person-and-space advisory lock, so two requests at once cannot both
// take the last place. Moderators are not limited.

type burstKind string

const (
	burstPosts    burstKind = "posts"
	burstComments burstKind = "comments"
)

func (p *Plugin) checkBurst(ctx context.Context, tx pgx.Tx, req *sdk.Request, spaceID string, kind burstKind, limit, windowSeconds int) error {
	if limit <= 0 || p.moderates(ctx, tx, req, spaceID) {
		return nil
	}
	user := req.Principal.UserID
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('plugin_messaging.burst.' || $1 || $2 || $3, 0))`, user, spaceID, string(kind)); err != nil {
		return err
	}
	since := p.now().Add(-time.Duration(windowSeconds) * time.Second)
	var n int
	var err error
	if kind == burstPosts {
		err = tx.QueryRow(ctx, `SELECT count(*) FROM posts WHERE author_id = $1 AND space_id = $2 AND created_at > $3`, user, spaceID, since).Scan(&n)
	} else {
		err = tx.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM comments c JOIN posts po ON po.id = c.post_id
			        WHERE c.author_id = $1 AND po.space_id = $2 AND c.created_at > $3)
			     + (SELECT count(*) FROM reactions r JOIN posts po ON po.id = r.post_id
			        WHERE r.user_id = $1 AND po.space_id = $2 AND r.created_at > $3)`, user, spaceID, since).Scan(&n)
	}
	if err != nil {
		return err
	}
	if n >= limit {
		e := sdk.Errorf(sdk.ErrTooManyRequests, "slow down: at most %d %s in a space within %d seconds", limit, kind, windowSeconds).WithCode("burst_limit")
		e.RetryAfterSeconds = windowSeconds
		return e
	}
	return nil
}
