package messaging

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/plugins/messaging/internal/richtext"
)

// Posts in a space: rich text (sanitised), attachments, a poll, mentions;
// announcements (moderators) notify every member of the space. Edits keep
// the text they replace (revisions). A hidden post is seen by its author
// and the space's moderators only; a deleted one by no one.

// Post is a post as the API shows it.
type Post struct {
	ID           string           `json:"id" format:"uuid"`
	SpaceID      string           `json:"space_id" format:"uuid"`
	AuthorID     string           `json:"author_id" format:"uuid"`
	AuthorName   string           `json:"author_name"`
	Kind         string           `json:"kind" enum:"post,announcement"`
	Body         string           `json:"body" doc:"Sanitised HTML."`
	BodyText     string           `json:"body_text" doc:"The body as plain text."`
	Revision     int              `json:"revision" doc:"1, and one more per edit (If-Match of PATCH)."`
	EditedAt     *time.Time       `json:"edited_at,omitempty"`
	PinnedAt     *time.Time       `json:"pinned_at,omitempty"`
	Locked       bool             `json:"locked" doc:"No new comments (moderators excepted)."`
	Hidden       bool             `json:"hidden" doc:"Hidden by a moderator: only its author and the moderators see it."`
	HiddenReason string           `json:"hidden_reason,omitempty"`
	CommentCount int              `json:"comment_count"`
	Reactions    []ReactionCount  `json:"reactions"`
	Poll         *Poll            `json:"poll,omitempty"`
	Attachments  []AttachmentInfo `json:"attachments"`
	Mentions     []string         `json:"mentions" format:"uuid"`
	OpenReports  int              `json:"open_reports,omitempty" doc:"Open reports (moderators only)."`
	CreatedAt    time.Time        `json:"created_at"`

	rank int // position in a ranked snapshot
}

// CreatePost is a new post.
type CreatePost struct {
	Body        string   `json:"body" minLength:"1" maxLength:"20000" doc:"HTML (p, br, strong, b, em, i, u, s, blockquote, code, pre, ul, ol, li, h3, h4 and http(s)/mailto links; anything else is removed) or, with format text, plain text."`
	Format      string   `json:"format,omitempty" enum:"html,text" doc:"html (the default) or text."`
	Kind        string   `json:"kind,omitempty" enum:"post,announcement" doc:"announcement: the space's moderators only; every member is notified."`
	Pinned      bool     `json:"pinned,omitempty" doc:"Pin it at once (moderators)."`
	Attachments []string `json:"attachments,omitempty" format:"uuid" maxItems:"10" doc:"Uploaded attachments of the caller's (POST /spaces/{space_id}/attachments)."`
	Mentions    []string `json:"mentions,omitempty" format:"uuid" maxItems:"50" doc:"Members of the space to notify."`
	Poll        *NewPoll `json:"poll,omitempty"`
}

// EditPost replaces a post's text.
type EditPost struct {
	Body     string   `json:"body" minLength:"1" maxLength:"20000"`
	Format   string   `json:"format,omitempty" enum:"html,text"`
	Mentions []string `json:"mentions,omitempty" format:"uuid" maxItems:"50" doc:"Members to notify; those the post mentioned before are not notified again."`
}

// Revision is the text a post or comment had before an edit.
type Revision struct {
	Revision int       `json:"revision"`
	Body     string    `json:"body"`
	EditedBy string    `json:"edited_by" format:"uuid"`
	EditedAt time.Time `json:"edited_at" doc:"When it was replaced."`
}

// FeedQuery orders a space's feed.
type FeedQuery struct {
	Sort string `query:"sort" enum:"newest,ranked" doc:"newest (the default): newest first; ranked: recency and engagement velocity, reported and hidden posts left out."`
}

func (p *Plugin) postRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/spaces/{space_id}/posts", Permission: PermSpaceRead, Summary: "A space's feed, newest first or ranked; pages stay stable while posts arrive",
			Query: FeedQuery{}, Paginated: true, Response: sdk.Page[Post]{}, Handler: p.feed},
		{Method: "POST", Path: "/api/v1/spaces/{space_id}/posts", Permission: PermPost, Summary: "Post in a space (announcements: its moderators)",
			Request: CreatePost{}, Response: Post{}, Status: http.StatusCreated, Handler: p.createPost},
		{Method: "GET", Path: "/api/v1/posts/{post_id}", Permission: PermSpaceRead, Summary: "A post",
			Response: Post{}, Handler: p.getPost},
		{Method: "PATCH", Path: "/api/v1/posts/{post_id}", Permission: PermPost, Summary: "Edit one's post (If-Match: its revision); the text it replaces is kept",
			Request: EditPost{}, Response: Post{}, Handler: p.editPost},
		{Method: "DELETE", Path: "/api/v1/posts/{post_id}", Permission: PermPost, Summary: "Delete one's post (moderators: any in their spaces)",
			Status: http.StatusNoContent, Handler: p.deletePost},
		{Method: "GET", Path: "/api/v1/posts/{post_id}/revisions", Permission: PermSpaceRead, Summary: "A post's earlier texts, newest first (its author and moderators)",
			Response: []Revision{}, Handler: p.postRevisions},
	}
}

// postSelect is the query of posts with the author's name; $1 is the
// caller's user ID.
func postSelect(where string) string {
	return `SELECT p.id::text, p.space_id::text, p.author_id::text, coalesce(pe.display_name, ''), p.kind, p.body, p.body_text,
			p.revision, p.edited_at, p.pinned_at, p.locked_at IS NOT NULL, p.hidden_at IS NOT NULL, coalesce(p.hidden_reason, ''),
			p.comment_count, p.open_reports, p.created_at
		FROM posts p LEFT JOIN people pe ON pe.user_id = p.author_id
		WHERE $1::uuid IS NOT NULL AND ` + where
}

func collectPosts(rows pgx.Rows) ([]Post, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Post, error) {
		var p Post
		err := r.Scan(&p.ID, &p.SpaceID, &p.AuthorID, &p.AuthorName, &p.Kind, &p.Body, &p.BodyText, &p.Revision, &p.EditedAt,
			&p.PinnedAt, &p.Locked, &p.Hidden, &p.HiddenReason, &p.CommentCount, &p.OpenReports, &p.CreatedAt)
		return p, err
	})
}

// fillPosts adds reactions, polls, attachments and mentions to posts, and
// leaves out what only moderators see.
func (p *Plugin) fillPosts(ctx context.Context, tx pgx.Tx, req *sdk.Request, posts []Post) error {
	if len(posts) == 0 {
		return nil
	}
	ids := make([]string, len(posts))
	byID := map[string]*Post{}
	for i := range posts {
		ids[i] = posts[i].ID
		byID[posts[i].ID] = &posts[i]
		posts[i].Reactions, posts[i].Attachments, posts[i].Mentions = []ReactionCount{}, []AttachmentInfo{}, []string{}
	}
	reactions, err := reactionCounts(ctx, tx, ids, req.Principal.UserID)
	if err != nil {
		return err
	}
	for id, rs := range reactions {
		byID[id].Reactions = rs
	}
	polls, err := loadPolls(ctx, tx, ids, req.Principal.UserID, p.now())
	if err != nil {
		return err
	}
	for id, poll := range polls {
		byID[id].Poll = poll
	}
	rows, err := tx.Query(ctx, `SELECT post_id::text, id::text, filename, content_type, coalesce(size_bytes, 0) FROM attachments
		WHERE post_id = ANY($1::uuid[]) ORDER BY created_at, id`, ids)
	if err != nil {
		return err
	}
	var postID string
	var a AttachmentInfo
	if _, err := pgx.ForEachRow(rows, []any{&postID, &a.ID, &a.Filename, &a.ContentType, &a.SizeBytes}, func() error {
		byID[postID].Attachments = append(byID[postID].Attachments, a)
		return nil
	}); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT target_id::text, user_id::text FROM mentions WHERE target_id = ANY($1::uuid[]) ORDER BY user_id`, ids)
	if err != nil {
		return err
	}
	var user string
	if _, err := pgx.ForEachRow(rows, []any{&postID, &user}, func() error {
		byID[postID].Mentions = append(byID[postID].Mentions, user)
		return nil
	}); err != nil {
		return err
	}
	for i := range posts {
		if !req.Principal.Can(PermSpaceManage) && !p.moderates(ctx, tx, req, posts[i].SpaceID) {
			posts[i].OpenReports = 0
			if posts[i].AuthorID != req.Principal.UserID {
				posts[i].HiddenReason = ""
			}
		}
	}
	return nil
}

// moderates reports whether the caller moderates a space (cached per
// request would be nicer; a page holds posts of one space).
func (p *Plugin) moderates(ctx context.Context, tx pgx.Tx, req *sdk.Request, spaceID string) bool {
	if req.Principal.Can(PermSpaceManage) {
		return true
	}
	if !req.Principal.Can(PermModerate) {
		return false
	}
	var ok bool
	_ = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM space_members WHERE space_id = $1 AND user_id = $2 AND moderator)`, spaceID, req.Principal.UserID).Scan(&ok)
	return ok
}

// body sanitises a post's or comment's text: the stored HTML and its
// plain text, or a 422 when nothing is left to show.
func body(field, raw, format string) (html, text string, err error) {
	if format == "text" {
		html = richtext.FromText(raw)
	} else {
		html = richtext.Sanitize(raw)
	}
	text = richtext.Text(html)
	if strings.TrimSpace(text) == "" {
		return "", "", blank(field)
	}
	return html, text, nil
}

// postAccess is a post with the caller's access to its space.
type postAccess struct {
	Post
	space spaceAccess
}

// loadPost reads a post the caller can see (a member of its space; a
// hidden post only its author and moderators), locking it FOR UPDATE when
// lock is set.
func loadPost(ctx context.Context, tx pgx.Tx, req *sdk.Request, postID string, lock bool) (postAccess, error) {
	var pa postAccess
	q := postSelect(`p.id = $2 AND p.deleted_at IS NULL`)
	if lock {
		q += ` FOR UPDATE OF p`
	}
	rows, err := tx.Query(ctx, q, req.Principal.UserID, postID)
	if err != nil {
		return pa, err
	}
	posts, err := collectPosts(rows)
	if err != nil {
		return pa, err
	}
	if len(posts) == 0 {
		return pa, sdk.Errorf(sdk.ErrNotFound, "no post %s", postID)
	}
	pa.Post = posts[0]
	pa.space, err = loadSpace(ctx, tx, req, pa.SpaceID)
	if errors.Is(err, sdk.ErrNotFound) {
		return pa, sdk.Errorf(sdk.ErrNotFound, "no post %s", postID)
	}
	if err != nil {
		return pa, err
	}
	if pa.Hidden && !pa.space.moderator && pa.AuthorID != req.Principal.UserID {
		return pa, sdk.Errorf(sdk.ErrNotFound, "no post %s", postID)
	}
	return pa, nil
}

func (p *Plugin) createPost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	spaceID, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	var in CreatePost
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
	attachments, err := uniqueIDs("attachments", in.Attachments)
	if err != nil {
		return nil, err
	}
	var poll *NewPoll
	if in.Poll != nil {
		if poll, err = checkPoll(*in.Poll, p.now()); err != nil {
			return nil, err
		}
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	// The uploads must be in storage: asked before the transaction, as
	// every call to the kernel should be.
	stored := map[string]sdk.Object{}
	for i, id := range attachments {
		obj, err := sdk.Storage(req).Stat(ctx, attachmentKey(req.Principal.UserID, id))
		if errors.Is(err, sdk.ErrNotFound) {
			return nil, invalid("attachment_not_uploaded", fmt.Sprintf("attachments.%d", i), "is not an uploaded attachment of yours")
		}
		if err != nil {
			return nil, err
		}
		if cfg.AttachmentMaxBytes > 0 && obj.Size > int64(cfg.AttachmentMaxBytes) {
			return nil, invalid("attachment_too_large", fmt.Sprintf("attachments.%d", i), "is %d bytes; the institution allows %d", obj.Size, cfg.AttachmentMaxBytes)
		}
		stored[id] = obj
	}
	kind := in.Kind
	if kind == "" {
		kind = "post"
	}
	id := newID()
	now := p.now()
	var out Post
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		sp, err := loadSpace(ctx, tx, req, spaceID)
		if err != nil {
			return err
		}
		if !sp.member {
			return sdk.Errorf(sdk.ErrForbidden, "only members of the space post in it").WithCode("not_a_member")
		}
		if (kind == "announcement" || in.Pinned) && !(sp.moderator && req.Principal.Can(PermAnnounce)) {
			return sdk.Errorf(sdk.ErrForbidden, "only the space's moderators post announcements and pin posts").WithCode("not_a_moderator")
		}
		if err := p.checkBurst(ctx, tx, req, spaceID, burstPosts, cfg.PostBurst, cfg.BurstWindowSeconds); err != nil {
			return err
		}
		var pinned *time.Time
		if in.Pinned {
			pinned = &now
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO posts (tenant_id, id, space_id, author_id, kind, body, body_text, pinned_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			req.Tenant(), id, spaceID, req.Principal.UserID, kind, html, text, pinned, now); err != nil {
			return err
		}
		for i, aid := range attachments {
			obj := stored[aid]
			tag, err := tx.Exec(ctx, `UPDATE attachments SET post_id = $2, size_bytes = $3, sha256 = $4
				WHERE id = $1 AND uploader_id = $5 AND space_id = $6 AND post_id IS NULL`,
				aid, id, obj.Size, obj.SHA256, req.Principal.UserID, spaceID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return invalid("attachment_unavailable", fmt.Sprintf("attachments.%d", i), "is not an unattached upload of yours in this space")
			}
		}
		if poll != nil {
			if err := insertPoll(ctx, tx, req.Tenant(), id, *poll); err != nil {
				return err
			}
		}
		n := notifier{p: p, scope: req, tx: tx, cfg: cfg}
		if err := p.mention(ctx, &n, req, sp.Space, "post", id, id, mentions, nil, text); err != nil {
			return err
		}
		if kind == "announcement" {
			if err := req.Publish(ctx, tx, EventAnnouncementPublished, AnnouncementPublished{PostID: id, SpaceID: spaceID, AuthorID: req.Principal.UserID}); err != nil {
				return err
			}
		}
		if err := req.Publish(ctx, tx, EventPostCreated, PostCreated{PostID: id, SpaceID: spaceID, SpaceKind: sp.Kind, CourseID: sp.CourseID, CohortID: sp.CohortID,
			AuthorID: req.Principal.UserID, Kind: kind, CreatedAt: now}); err != nil {
			return err
		}
		if err := n.flush(ctx); err != nil {
			return err
		}
		pa, err := loadPost(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		out = pa.Post
		posts := []Post{out}
		if err := p.fillPosts(ctx, tx, req, posts); err != nil {
			return err
		}
		out = posts[0]
		if in.Pinned {
			return p.audit(ctx, req, "messaging.post.pinned", "post", id, map[string]any{"space_id": spaceID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

// mention records and notifies the members a post or comment mentions;
// already are those it mentioned before (an edit). Someone who is not a
// member of the space is a 422 naming them.
func (p *Plugin) mention(ctx context.Context, n *notifier, req *sdk.Request, sp Space, targetType, targetID, postID string, mentions, already []string, text string) error {
	if len(mentions) == 0 {
		return nil
	}
	author := displayName(ctx, n.tx, req.Principal.UserID)
	for i, uid := range mentions {
		ok, err := isSpaceMember(ctx, n.tx, sp, uid)
		if err != nil {
			return err
		}
		if !ok {
			return invalid("not_a_member", fmt.Sprintf("mentions.%d", i), "is not a member of this space")
		}
		if _, err := n.tx.Exec(ctx, `INSERT INTO mentions (tenant_id, target_type, target_id, user_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			req.Tenant(), targetType, targetID, uid); err != nil {
			return err
		}
		if uid == req.Principal.UserID || contains(already, uid) {
			continue
		}
		n.add(note{
			Recipient: uid, Category: CatMentions, Kind: "messaging.mention",
			Title: fmt.Sprintf("%s mentioned you in %s", author, sp.Title), Body: truncate(text, 280),
			Link: postLink(sp.ID, postID), Actor: req.Principal.UserID, PostID: postID,
			Dedupe: "mention:" + targetID + ":" + uid,
		})
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// postLink is the app's path of a post (notify.go makes it absolute).
func postLink(spaceID, postID string) string { return "/spaces/" + spaceID + "/posts/" + postID }

func (p *Plugin) getPost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	var out Post
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		posts := []Post{pa.Post}
		if err := p.fillPosts(ctx, tx, req, posts); err != nil {
			return err
		}
		out = posts[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// ifMatch reads If-Match as a revision number; 0 when absent.
func ifMatch(req *sdk.Request) (int, error) {
	v := strings.Trim(strings.TrimSpace(req.Header.Get("If-Match")), `"`)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, invalid("invalid", "If-Match", "must be a revision number")
	}
	return n, nil
}

func (p *Plugin) editPost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	var in EditPost
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
	want, err := ifMatch(req)
	if err != nil {
		return nil, err
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	var out Post
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, id, true)
		if err != nil {
			return err
		}
		if pa.AuthorID != req.Principal.UserID {
			return sdk.Errorf(sdk.ErrForbidden, "only its author edits a post").WithCode("not_the_author")
		}
		if want != 0 && want != pa.Revision {
			return sdk.Errorf(sdk.ErrConflict, "the post is at revision %d, not %d", pa.Revision, want).WithCode("stale_revision")
		}
		now := p.now()
		if _, err := tx.Exec(ctx, `INSERT INTO revisions (tenant_id, id, target_type, target_id, revision, body, edited_by, edited_at)
			VALUES ($1, $2, 'post', $3, $4, $5, $6, $7)`, req.Tenant(), newID(), id, pa.Revision, pa.Body, req.Principal.UserID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE posts SET body = $2, body_text = $3, revision = revision + 1, edited_at = $4 WHERE id = $1`,
			id, html, text, now); err != nil {
			return err
		}
		n := notifier{p: p, scope: req, tx: tx, cfg: cfg}
		if err := p.mention(ctx, &n, req, pa.space.Space, "post", id, id, mentions, pa.Mentions(ctx, tx), text); err != nil {
			return err
		}
		if err := n.flush(ctx); err != nil {
			return err
		}
		pa, err = loadPost(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		posts := []Post{pa.Post}
		if err := p.fillPosts(ctx, tx, req, posts); err != nil {
			return err
		}
		out = posts[0]
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

// Mentions lists whom the post mentions now.
func (pa postAccess) Mentions(ctx context.Context, tx pgx.Tx) []string {
	rows, err := tx.Query(ctx, `SELECT user_id::text FROM mentions WHERE target_id = $1`, pa.ID)
	if err != nil {
		return nil
	}
	ids, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids
}

func (p *Plugin) deletePost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, id, true)
		if err != nil {
			return err
		}
		own := pa.AuthorID == req.Principal.UserID
		if !own && !pa.space.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "only its author or the space's moderators delete a post").WithCode("not_the_author")
		}
		if _, err := tx.Exec(ctx, `UPDATE posts SET deleted_at = $2, pinned_at = NULL WHERE id = $1`, id, p.now()); err != nil {
			return err
		}
		// Nothing more goes out about it.
		if err := suppressFor(ctx, tx, p.now(), `n.post_id = $1`, "content_removed", "the post was deleted before it was sent", id); err != nil {
			return err
		}
		if !own {
			return p.audit(ctx, req, "messaging.post.deleted", "post", id, map[string]any{"space_id": pa.SpaceID, "author_id": pa.AuthorID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

func (p *Plugin) postRevisions(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	var out []Revision
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		if pa.AuthorID != req.Principal.UserID && !pa.space.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "a post's earlier texts are for its author and the space's moderators").WithCode("not_the_author")
		}
		out, err = revisions(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func revisions(ctx context.Context, tx pgx.Tx, targetID string) ([]Revision, error) {
	rows, err := tx.Query(ctx, `SELECT revision, body, edited_by::text, edited_at FROM revisions WHERE target_id = $1 ORDER BY revision DESC`, targetID)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Revision, error) {
		var v Revision
		err := r.Scan(&v.Revision, &v.Body, &v.EditedBy, &v.EditedAt)
		return v, err
	})
	if out == nil {
		out = []Revision{}
	}
	return out, err
}
