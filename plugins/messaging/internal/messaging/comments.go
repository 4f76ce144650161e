package messaging

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Comments on a post, threaded: a comment answers the post or another
// comment (parent_id), up to 8 levels deep. A locked post takes no new
// comment but from its space's moderators. A comment notifies the post's
// author, a reply the author of the comment it answers (category
// replies), and its mentions (mentions) — each person once.

// Comment is a comment as the API shows it.
type Comment struct {
	ID           string          `json:"id" format:"uuid"`
	PostID       string          `json:"post_id" format:"uuid"`
	ParentID     string          `json:"parent_id,omitempty" format:"uuid"`
	Depth        int             `json:"depth"`
	AuthorID     string          `json:"author_id" format:"uuid"`
	AuthorName   string          `json:"author_name"`
	Body         string          `json:"body"`
	BodyText     string          `json:"body_text"`
	Revision     int             `json:"revision"`
	EditedAt     *time.Time      `json:"edited_at,omitempty"`
	Hidden       bool            `json:"hidden"`
	HiddenReason string          `json:"hidden_reason,omitempty"`
	Deleted      bool            `json:"deleted" doc:"Deleted: its text is gone, its place in the thread stays."`
	Reactions    []ReactionCount `json:"reactions"`
	CreatedAt    time.Time       `json:"created_at"`
}

// CreateComment is a new comment.
type CreateComment struct {
	Body     string   `json:"body" minLength:"1" maxLength:"10000"`
	Format   string   `json:"format,omitempty" enum:"html,text"`
	ParentID string   `json:"parent_id,omitempty" format:"uuid" doc:"The comment this one answers; empty: the post."`
	Mentions []string `json:"mentions,omitempty" format:"uuid" maxItems:"50"`
}

// EditComment replaces a comment's text.
type EditComment struct {
	Body   string `json:"body" minLength:"1" maxLength:"10000"`
	Format string `json:"format,omitempty" enum:"html,text"`
}

// MaxDepth is how deep replies nest.
const MaxDepth = 8

func (p *Plugin) commentRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/posts/{post_id}/comments", Permission: PermSpaceRead, Summary: "A post's comments in thread order (oldest first; parent_id and depth make the tree)",
			Paginated: true, Response: sdk.Page[Comment]{}, Handler: p.listComments},
		{Method: "POST", Path: "/api/v1/posts/{post_id}/comments", Permission: PermPost, Summary: "Comment on a post, or reply to a comment",
			Request: CreateComment{}, Response: Comment{}, Status: http.StatusCreated, Handler: p.createComment},
		{Method: "PATCH", Path: "/api/v1/comments/{comment_id}", Permission: PermPost, Summary: "Edit one's comment (If-Match: its revision); the text it replaces is kept",
			Request: EditComment{}, Response: Comment{}, Handler: p.editComment},
		{Method: "DELETE", Path: "/api/v1/comments/{comment_id}", Permission: PermPost, Summary: "Delete one's comment (moderators: any in their spaces); replies stay",
			Status: http.StatusNoContent, Handler: p.deleteComment},
		{Method: "GET", Path: "/api/v1/comments/{comment_id}/revisions", Permission: PermSpaceRead, Summary: "A comment's earlier texts, newest first (its author and moderators)",
			Response: []Revision{}, Handler: p.commentRevisions},
	}
}

const commentColumns = `c.id::text, c.post_id::text, coalesce(c.parent_id::text, ''), c.depth, c.author_id::text, coalesce(pe.display_name, ''),
	c.body, c.body_text, c.revision, c.edited_at, c.hidden_at IS NOT NULL, coalesce(c.hidden_reason, ''), c.deleted_at IS NOT NULL, c.created_at`

func collectComments(rows pgx.Rows) ([]Comment, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Comment, error) {
		var c Comment
		err := r.Scan(&c.ID, &c.PostID, &c.ParentID, &c.Depth, &c.AuthorID, &c.AuthorName, &c.Body, &c.BodyText, &c.Revision,
			&c.EditedAt, &c.Hidden, &c.HiddenReason, &c.Deleted, &c.CreatedAt)
		return c, err
	})
}

// commentAccess is a comment with its post and the caller's access.
type commentAccess struct {
	Comment
	post postAccess
}

func loadComment(ctx context.Context, tx pgx.Tx, req *sdk.Request, id string, lock bool) (commentAccess, error) {
	var ca commentAccess
	q := `SELECT ` + commentColumns + ` FROM comments c LEFT JOIN people pe ON pe.user_id = c.author_id WHERE c.id = $1`
	if lock {
		q += ` FOR UPDATE OF c`
	}
	rows, err := tx.Query(ctx, q, id)
	if err != nil {
		return ca, err
	}
	cs, err := collectComments(rows)
	if err != nil {
		return ca, err
	}
	if len(cs) == 0 {
		return ca, sdk.Errorf(sdk.ErrNotFound, "no comment %s", id)
	}
	ca.Comment = cs[0]
	if ca.post, err = loadPost(ctx, tx, req, ca.PostID, false); err != nil {
		if errors.Is(err, sdk.ErrNotFound) {
			return ca, sdk.Errorf(sdk.ErrNotFound, "no comment %s", id)
		}
		return ca, err
	}
	if (ca.Hidden && !ca.post.space.moderator && ca.AuthorID != req.Principal.UserID) || ca.Deleted {
		return ca, sdk.Errorf(sdk.ErrNotFound, "no comment %s", id)
	}
	return ca, nil
}

// visible prepares comments for the caller: a hidden one keeps its place
// for its author and moderators only; a deleted one keeps its place
// without its text.
func (p *Plugin) visible(ctx context.Context, tx pgx.Tx, req *sdk.Request, moderator bool, cs []Comment) ([]Comment, error) {
	out := cs[:0]
	for _, c := range cs {
		if c.Hidden && !moderator && c.AuthorID != req.Principal.UserID {
			continue
		}
		if c.Deleted {
			c.Body, c.BodyText, c.AuthorName = "", "", ""
		}
		if !moderator && c.AuthorID != req.Principal.UserID {
			c.HiddenReason = ""
		}
		c.Reactions = []ReactionCount{}
		out = append(out, c)
	}
	ids := make([]string, len(out))
	for i := range out {
		ids[i] = out[i].ID
	}
	rs, err := reactionCounts(ctx, tx, ids, req.Principal.UserID)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if r := rs[out[i].ID]; r != nil {
			out[i].Reactions = r
		}
	}
	return out, nil
}

func (p *Plugin) listComments(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	pg, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, cid, after, err := pg.AfterTime()
	if err != nil {
		return nil, err
	}
	var items []Comment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+commentColumns+` FROM comments c LEFT JOIN people pe ON pe.user_id = c.author_id
			WHERE c.post_id = $1 AND (NOT $2 OR (c.created_at, c.id) > ($3, $4::uuid))
			  AND (c.hidden_at IS NULL OR $5 OR c.author_id = $6)
			ORDER BY c.created_at, c.id LIMIT $7`,
			id, after, at, nilUUID(cid), pa.space.moderator, req.Principal.UserID, pg.Limit+1)
		if err != nil {
			return err
		}
		cs, err := collectComments(rows)
		if err != nil {
			return err
		}
		items, err = p.visible(ctx, tx, req, pa.space.moderator, cs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, pg.Limit, func(c Comment) []string { return sdk.TimeKey(c.CreatedAt, c.ID) }))
}

func (p *Plugin) createComment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	postID, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	var in CreateComment
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	html, text, err := body("body", in.Body, in.Format)
	if err != nil {
		return nil, err
	}
	mentions, err := uniqueIDs("mentions", in.Mentions)
	if err != nil {
		return nil, err
	}
	cfg, err := p.config(ctx, req)
	if err != nil {
		return nil, err
	}
	id := newID()
	var out Comment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, postID, true)
		if err != nil {
			return err
		}
		if !pa.space.member {
			return sdk.Errorf(sdk.ErrForbidden, "only members of the space comment").WithCode("not_a_member")
		}
		if pa.Locked && !pa.space.moderator {
			return sdk.Errorf(sdk.ErrConflict, "the thread is locked").WithCode("thread_locked")
		}
		if pa.Hidden {
			return sdk.Errorf(sdk.ErrConflict, "the post is hidden by a moderator").WithCode("post_hidden")
		}
		depth := 0
		var parent *commentAccess
		if in.ParentID != "" {
			pid, _ := sdk.NormalizeUUID(in.ParentID)
			c, err := loadComment(ctx, tx, req, pid, false)
			if err != nil || c.PostID != postID {
				return invalid("unknown_parent", "parent_id", "is not a comment of this post")
			}
			if c.Depth+1 > MaxDepth {
				return invalid("too_deep", "parent_id", "replies nest at most %d levels deep", MaxDepth)
			}
			depth, parent = c.Depth+1, &c
		}
		if err := p.checkBurst(ctx, tx, req, pa.SpaceID, burstComments, cfg.CommentBurst, cfg.BurstWindowSeconds); err != nil {
			return err
		}
		var parentID any
		if parent != nil {
			parentID = parent.ID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO comments (tenant_id, id, post_id, parent_id, depth, author_id, body, body_text, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, req.Tenant(), id, postID, parentID, depth, req.Principal.UserID, html, text, p.now()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE posts SET comment_count = comment_count + 1 WHERE id = $1`, postID); err != nil {
			return err
		}
		n := notifier{p: p, scope: req, tx: tx, cfg: cfg}
		if err := p.mention(ctx, &n, req, pa.space.Space, "comment", id, postID, mentions, nil, text); err != nil {
			return err
		}
		author := displayName(ctx, tx, req.Principal.UserID)
		notified := map[string]bool{req.Principal.UserID: true}
		for _, m := range mentions {
			notified[m] = true
		}
		reply := func(to, title string) {
			if notified[to] {
				return
			}
			notified[to] = true
			n.add(note{Recipient: to, Category: CatReplies, Kind: "messaging.reply", Title: title, Body: truncate(text, 500),
				Link: postLink(pa.SpaceID, postID) + "#comment-" + id, Actor: req.Principal.UserID, PostID: postID,
				Dedupe: "reply:" + id + ":" + to, Data: map[string]any{"post_id": postID, "comment_id": id, "space_id": pa.SpaceID}})
		}
		if parent != nil {
			reply(parent.AuthorID, author+" replied to your comment")
		}
		reply(pa.AuthorID, fmt.Sprintf("%s commented on your post in %s", author, pa.space.Title))
		if err := n.flush(ctx); err != nil {
			return err
		}
		c, err := loadComment(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		cs, err := p.visible(ctx, tx, req, pa.space.moderator, []Comment{c.Comment})
		if err != nil {
			return err
		}
		out = cs[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

func (p *Plugin) editComment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("comment_id")
	if err != nil {
		return nil, err
	}
	var in EditComment
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	html, text, err := body("body", in.Body, in.Format)
	if err != nil {
		return nil, err
	}
	want, err := ifMatch(req)
	if err != nil {
		return nil, err
	}
	var out Comment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := loadComment(ctx, tx, req, id, true)
		if err != nil {
			return err
		}
		if c.AuthorID != req.Principal.UserID {
			return sdk.Errorf(sdk.ErrForbidden, "only its author edits a comment").WithCode("not_the_author")
		}
		if want != 0 && want != c.Revision {
			return sdk.Errorf(sdk.ErrConflict, "the comment is at revision %d, not %d", c.Revision, want).WithCode("stale_revision")
		}
		now := p.now()
		if _, err := tx.Exec(ctx, `INSERT INTO revisions (tenant_id, id, target_type, target_id, revision, body, edited_by, edited_at)
			VALUES ($1, $2, 'comment', $3, $4, $5, $6, $7)`, req.Tenant(), newID(), id, c.Revision, c.Body, req.Principal.UserID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE comments SET body = $2, body_text = $3, revision = revision + 1, edited_at = $4 WHERE id = $1`, id, html, text, now); err != nil {
			return err
		}
		c, err = loadComment(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		cs, err := p.visible(ctx, tx, req, c.post.space.moderator, []Comment{c.Comment})
		if err != nil {
			return err
		}
		out = cs[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	res, err := sdk.JSON(http.StatusOK, out)
	if err == nil {
		res.Header = http.Header{"Etag": []string{strconv.Quote(strconv.Itoa(out.Revision))}}
	}
	return res, err
}

func (p *Plugin) deleteComment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("comment_id")
	if err != nil {
		return nil, err
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := loadComment(ctx, tx, req, id, true)
		if err != nil {
			return err
		}
		own := c.AuthorID == req.Principal.UserID
		if !own && !c.post.space.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "only its author or the space's moderators delete a comment").WithCode("not_the_author")
		}
		if _, err := tx.Exec(ctx, `UPDATE comments SET deleted_at = $2 WHERE id = $1`, id, p.now()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE posts SET comment_count = greatest(0, comment_count - 1) WHERE id = $1`, c.PostID); err != nil {
			return err
		}
		if !own {
			return p.audit(ctx, req, "messaging.comment.deleted", "comment", id, map[string]any{"post_id": c.PostID, "author_id": c.AuthorID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

func (p *Plugin) commentRevisions(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("comment_id")
	if err != nil {
		return nil, err
	}
	var out []Revision
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := loadComment(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		if c.AuthorID != req.Principal.UserID && !c.post.space.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "a comment's earlier texts are for its author and the space's moderators").WithCode("not_the_author")
		}
		out, err = revisions(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
