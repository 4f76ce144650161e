package messaging

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// A space's feed. newest (the default): newest first, by (created_at,
// id), so a page's cursor is a fixed point that posts arriving later
// cannot move. ranked: recency and engagement velocity (comments and
// reactions of the last 24 hours over the post's age), leaving out posts
// that are hidden or have open reports; its order is fixed when the
// first page is asked for (feed_snapshots, kept an hour), so the pages
// after it neither repeat nor skip a post while scores move.

// rankedWindow is how far back a ranked feed looks, and rankedMax how
// many posts it ranks.
const (
	rankedWindowDays = 30
	rankedMax        = 500
)

func (p *Plugin) feed(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	spaceID, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[FeedQuery](req)
	if err != nil {
		return nil, err
	}
	pg, err := req.Page()
	if err != nil {
		return nil, err
	}
	if q.Sort == "ranked" {
		return p.rankedFeed(ctx, req, spaceID, pg)
	}
	at, id, after, err := pg.AfterTime()
	if err != nil {
		return nil, err
	}
	var posts []Post
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		sp, err := loadSpace(ctx, tx, req, spaceID)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, postSelect(`p.space_id = $2 AND p.deleted_at IS NULL
			AND (p.hidden_at IS NULL OR $3 OR p.author_id = $1)
			AND (NOT $4 OR (p.created_at, p.id) < ($5, $6::uuid))
			ORDER BY p.created_at DESC, p.id DESC LIMIT $7`),
			req.Principal.UserID, spaceID, sp.moderator, after, at, nilUUID(id), pg.Limit+1)
		if err != nil {
			return err
		}
		if posts, err = collectPosts(rows); err != nil {
			return err
		}
		return p.fillPosts(ctx, tx, req, posts)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(posts, pg.Limit, func(x Post) []string { return sdk.TimeKey(x.CreatedAt, x.ID) }))
}

func (p *Plugin) rankedFeed(ctx context.Context, req *sdk.Request, spaceID string, pg sdk.PageRequest) (*sdk.Response, error) {
	badCursor := invalid("invalid", "cursor", "is not a cursor of this feed")
	snapshot, offset := "", 0
	if pg.After != nil {
		if len(pg.After) != 3 || pg.After[0] != "ranked" || !sdk.IsUUID(pg.After[1]) {
			return nil, badCursor
		}
		n, err := strconv.Atoi(pg.After[2])
		if err != nil || n < 1 || n > rankedMax {
			return nil, badCursor
		}
		snapshot, offset = pg.After[1], n
	}
	now := p.now()
	var posts []Post
	var next string
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := loadSpace(ctx, tx, req, spaceID); err != nil {
			return err
		}
		var ids []string
		if snapshot == "" {
			snapshot = newID()
			rows, err := tx.Query(ctx, `
				SELECT p.id::text FROM posts p
				WHERE p.space_id = $1 AND p.deleted_at IS NULL AND p.hidden_at IS NULL AND p.open_reports = 0 AND p.created_at > $2
				ORDER BY (1 + (SELECT count(*) FROM comments c WHERE c.post_id = p.id AND c.created_at > $3 AND c.deleted_at IS NULL)
				            + (SELECT count(*) FROM reactions r WHERE r.post_id = p.id AND r.created_at > $3))
				         / power(extract(epoch FROM ($4 - p.created_at)) / 3600 + 2, 1.5) DESC, p.created_at DESC, p.id DESC
				LIMIT $5`, spaceID, now.AddDate(0, 0, -rankedWindowDays), now.Add(-24*time.Hour), now, rankedMax)
			if err != nil {
				return err
			}
			if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			if ids == nil {
				ids = []string{}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO feed_snapshots (tenant_id, id, user_id, space_id, post_ids, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				req.Tenant(), snapshot, req.Principal.UserID, spaceID, ids, now); err != nil {
				return err
			}
		} else {
			err := tx.QueryRow(ctx, `SELECT post_ids::text[] FROM feed_snapshots WHERE id = $1 AND user_id = $2 AND space_id = $3`,
				snapshot, req.Principal.UserID, spaceID).Scan(&ids)
			if err == pgx.ErrNoRows {
				return sdk.Errorf(sdk.ErrGone, "this ranked feed's cursor has expired: ask for the first page again").WithCode("cursor_expired")
			}
			if err != nil {
				return err
			}
		}
		if offset >= len(ids) {
			posts = []Post{}
			return nil
		}
		page := ids[offset:min(len(ids), offset+pg.Limit)]
		if offset+pg.Limit < len(ids) {
			b, _ := json.Marshal([]string{"ranked", snapshot, strconv.Itoa(offset + pg.Limit)})
			next = base64.RawURLEncoding.EncodeToString(b)
		}
		// Posts hidden, reported or deleted since the snapshot stay out.
		rows, err := tx.Query(ctx, postSelect(`p.id = ANY($2::uuid[]) AND p.deleted_at IS NULL AND p.hidden_at IS NULL AND p.open_reports = 0`),
			req.Principal.UserID, page)
		if err != nil {
			return err
		}
		found, err := collectPosts(rows)
		if err != nil {
			return err
		}
		byID := map[string]Post{}
		for _, x := range found {
			byID[x.ID] = x
		}
		for _, id := range page {
			if x, ok := byID[id]; ok {
				posts = append(posts, x)
			}
		}
		return p.fillPosts(ctx, tx, req, posts)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.Page[Post]{Items: posts, NextCursor: next})
}
