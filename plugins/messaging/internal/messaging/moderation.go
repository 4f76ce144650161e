package messaging

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk"
)

// Moderation: members report posts and comments; a space's moderators
// (and admins) pin, lock, hide and restore, and see and dismiss reports.
// Every moderation action is written to the kernel's audit log in the
// transaction that makes it (audit, spaces.go). A hidden post or comment
// is seen by its author and the moderators only, leaves the ranked feed,
// and nothing more goes out about it; an open report keeps a post out of
// the ranked feed until it is resolved.

// ReportContent reports a post or comment.
type ReportContent struct {
	Reason string `json:"reason" minLength:"1" maxLength:"500" doc:"What is wrong with it."`
}

// Report is a report as moderators see it.
type Report struct {
	ID         string     `json:"id" format:"uuid"`
	SpaceID    string     `json:"space_id" format:"uuid"`
	PostID     string     `json:"post_id" format:"uuid"`
	TargetType string     `json:"target_type" enum:"post,comment"`
	TargetID   string     `json:"target_id" format:"uuid"`
	ReporterID string     `json:"reporter_id" format:"uuid"`
	Reason     string     `json:"reason"`
	Status     string     `json:"status" enum:"open,actioned,dismissed"`
	CreatedAt  time.Time  `json:"created_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// Moderate is a moderation action.
type Moderate struct {
	Action string `json:"action" enum:"hide,restore,lock,unlock,pin,unpin" doc:"Comments: hide and restore only."`
	Reason string `json:"reason,omitempty" maxLength:"500" doc:"Why (hide): shown to the author."`
}

// ReportQuery filters reports.
type ReportQuery struct {
	Status string `query:"status" enum:"open,actioned,dismissed" doc:"open (the default), actioned or dismissed."`
}

func (p *Plugin) moderationRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/posts/{post_id}/reports", Permission: PermPost, Summary: "Report a post to the space's moderators (once per person)",
			Request: ReportContent{}, Response: Report{}, Status: http.StatusCreated, Handler: p.reportPost},
		{Method: "POST", Path: "/api/v1/comments/{comment_id}/reports", Permission: PermPost, Summary: "Report a comment to the space's moderators (once per person)",
			Request: ReportContent{}, Response: Report{}, Status: http.StatusCreated, Handler: p.reportComment},
		{Method: "GET", Path: "/api/v1/spaces/{space_id}/reports", Permission: PermModerate, Summary: "The reports of a space one moderates, oldest first",
			Query: ReportQuery{}, Paginated: true, Response: sdk.Page[Report]{}, Handler: p.listReports},
		{Method: "POST", Path: "/api/v1/reports/{report_id}/dismiss", Permission: PermModerate, Summary: "Dismiss a report (the content stays); audited",
			Response: Report{}, Handler: p.dismissReport},
		{Method: "POST", Path: "/api/v1/posts/{post_id}/moderation", Permission: PermModerate, Summary: "Hide, restore, lock, unlock, pin or unpin a post (the space's moderators); audited",
			Request: Moderate{}, Response: Post{}, Handler: p.moderatePost},
		{Method: "POST", Path: "/api/v1/comments/{comment_id}/moderation", Permission: PermModerate, Summary: "Hide or restore a comment (the space's moderators); audited",
			Request: Moderate{}, Response: Comment{}, Handler: p.moderateComment},
	}
}

const reportColumns = `r.id::text, r.space_id::text, r.post_id::text, r.target_type, r.target_id::text, r.reporter_id::text, r.reason, r.status, r.created_at, r.resolved_at`

func collectReports(rows pgx.Rows) ([]Report, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Report, error) {
		var r Report
		err := row.Scan(&r.ID, &r.SpaceID, &r.PostID, &r.TargetType, &r.TargetID, &r.ReporterID, &r.Reason, &r.Status, &r.CreatedAt, &r.ResolvedAt)
		return r, err
	})
}

func (p *Plugin) reportPost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return p.report(ctx, req, "post", "post_id")
}

func (p *Plugin) reportComment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return p.report(ctx, req, "comment", "comment_id")
}

func (p *Plugin) report(ctx context.Context, req *sdk.Request, targetType, param string) (*sdk.Response, error) {
	id, err := req.UUIDParam(param)
	if err != nil {
		return nil, err
	}
	var in ReportContent
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		return nil, blank("reason")
	}
	var out []Report
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var space, post, author string
		if targetType == "post" {
			pa, err := loadPost(ctx, tx, req, id, true)
			if err != nil {
				return err
			}
			space, post, author = pa.SpaceID, pa.ID, pa.AuthorID
		} else {
			ca, err := loadComment(ctx, tx, req, id, true)
			if err != nil {
				return err
			}
			space, post, author = ca.post.SpaceID, ca.PostID, ca.AuthorID
		}
		if author == req.Principal.UserID {
			return sdk.Errorf(sdk.ErrConflict, "one does not report one's own %s", targetType).WithCode("own_content")
		}
		rid := newID()
		if _, err := tx.Exec(ctx, `INSERT INTO reports (tenant_id, id, space_id, post_id, target_type, target_id, reporter_id, reason, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, req.Tenant(), rid, space, post, targetType, id, req.Principal.UserID, reason, p.now()); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" {
				return sdk.Errorf(sdk.ErrConflict, "you already reported this %s", targetType).WithCode("already_reported")
			}
			return err
		}
		table := "posts"
		if targetType == "comment" {
			table = "comments"
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET open_reports = open_reports + 1 WHERE id = $1`, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+reportColumns+` FROM reports r WHERE r.id = $1`, rid)
		if err != nil {
			return err
		}
		out, err = collectReports(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out[0])
}

func (p *Plugin) listReports(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	spaceID, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ReportQuery](req)
	if err != nil {
		return nil, err
	}
	status := q.Status
	if status == "" {
		status = "open"
	}
	pg, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, id, after, err := pg.AfterTime()
	if err != nil {
		return nil, err
	}
	var out []Report
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		sp, err := loadSpace(ctx, tx, req, spaceID)
		if err != nil {
			return err
		}
		if !sp.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "only the space's moderators see its reports").WithCode("not_a_moderator")
		}
		rows, err := tx.Query(ctx, `SELECT `+reportColumns+` FROM reports r WHERE r.space_id = $1 AND r.status = $2
			AND (NOT $3 OR (r.created_at, r.id) > ($4, $5::uuid)) ORDER BY r.created_at, r.id LIMIT $6`,
			spaceID, status, after, at, nilUUID(id), pg.Limit+1)
		if err != nil {
			return err
		}
		out, err = collectReports(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(out, pg.Limit, func(r Report) []string { return sdk.TimeKey(r.CreatedAt, r.ID) }))
}

// resolveReports closes the open reports of a target.
func resolveReports(ctx context.Context, tx pgx.Tx, targetID, status, by string, now time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE reports SET status = $2, resolved_at = $3, resolved_by = $4 WHERE target_id = $1 AND status = 'open'`,
		targetID, status, now, by)
	return tag.RowsAffected(), err
}

func (p *Plugin) dismissReport(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("report_id")
	if err != nil {
		return nil, err
	}
	var out []Report
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+reportColumns+` FROM reports r WHERE r.id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		rs, err := collectReports(rows)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return sdk.Errorf(sdk.ErrNotFound, "no report %s", id)
		}
		sp, err := loadSpace(ctx, tx, req, rs[0].SpaceID)
		if errors.Is(err, sdk.ErrNotFound) || (err == nil && !sp.moderator) {
			return sdk.Errorf(sdk.ErrNotFound, "no report %s", id)
		}
		if err != nil {
			return err
		}
		if rs[0].Status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "the report is already %s", rs[0].Status).WithCode("already_resolved")
		}
		if _, err := tx.Exec(ctx, `UPDATE reports SET status = 'dismissed', resolved_at = $2, resolved_by = $3 WHERE id = $1`, id, p.now(), req.Principal.UserID); err != nil {
			return err
		}
		table := "posts"
		if rs[0].TargetType == "comment" {
			table = "comments"
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET open_reports = greatest(0, open_reports - 1) WHERE id = $1`, rs[0].TargetID); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+reportColumns+` FROM reports r WHERE r.id = $1`, id)
		if err != nil {
			return err
		}
		if out, err = collectReports(rows); err != nil {
			return err
		}
		return p.audit(ctx, req, "messaging.report.dismissed", rs[0].TargetType, rs[0].TargetID, map[string]any{"report_id": id, "space_id": rs[0].SpaceID})
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out[0])
}

func (p *Plugin) moderatePost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	var in Moderate
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var out Post
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, id, true)
		if err != nil {
			return err
		}
		if !pa.space.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "only the space's moderators moderate its posts").WithCode("not_a_moderator")
		}
		now := p.now()
		var q string
		args := []any{id}
		switch in.Action {
		case "hide":
			q = `UPDATE posts SET hidden_at = $2, hidden_by = $3, hidden_reason = $4, pinned_at = NULL, open_reports = 0 WHERE id = $1`
			args = append(args, now, req.Principal.UserID, nullable(strings.TrimSpace(in.Reason)))
		case "restore":
			q = `UPDATE posts SET hidden_at = NULL, hidden_by = NULL, hidden_reason = NULL, open_reports = 0 WHERE id = $1`
		case "lock":
			q = `UPDATE posts SET locked_at = coalesce(locked_at, $2) WHERE id = $1`
			args = append(args, now)
		case "unlock":
			q = `UPDATE posts SET locked_at = NULL WHERE id = $1`
		case "pin":
			if pa.Hidden {
				return sdk.Errorf(sdk.ErrConflict, "a hidden post cannot be pinned").WithCode("post_hidden")
			}
			q = `UPDATE posts SET pinned_at = coalesce(pinned_at, $2) WHERE id = $1`
			args = append(args, now)
		case "unpin":
			q = `UPDATE posts SET pinned_at = NULL WHERE id = $1`
		default:
			return invalid("invalid", "action", "must be hide, restore, lock, unlock, pin or unpin")
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
		switch in.Action {
		case "hide":
			if _, err := resolveReports(ctx, tx, id, "actioned", req.Principal.UserID, now); err != nil {
				return err
			}
			if err := suppressFor(ctx, tx, now, `n.post_id = $1`, "content_hidden", "a moderator hid the post before it was sent", id); err != nil {
				return err
			}
		case "restore":
			if _, err := resolveReports(ctx, tx, id, "dismissed", req.Principal.UserID, now); err != nil {
				return err
			}
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
		return p.audit(ctx, req, "messaging.post."+in.Action, "post", id, map[string]any{"space_id": pa.SpaceID, "author_id": pa.AuthorID, "reason": in.Reason})
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) moderateComment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("comment_id")
	if err != nil {
		return nil, err
	}
	var in Moderate
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.Action != "hide" && in.Action != "restore" {
		return nil, invalid("invalid", "action", "a comment is hidden or restored")
	}
	var out Comment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		ca, err := loadComment(ctx, tx, req, id, true)
		if err != nil {
			return err
		}
		if !ca.post.space.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "only the space's moderators moderate its comments").WithCode("not_a_moderator")
		}
		now := p.now()
		if in.Action == "hide" {
			_, err = tx.Exec(ctx, `UPDATE comments SET hidden_at = $2, hidden_by = $3, hidden_reason = $4, open_reports = 0 WHERE id = $1`,
				id, now, req.Principal.UserID, nullable(strings.TrimSpace(in.Reason)))
			if err == nil {
				_, err = resolveReports(ctx, tx, id, "actioned", req.Principal.UserID, now)
			}
		} else {
			_, err = tx.Exec(ctx, `UPDATE comments SET hidden_at = NULL, hidden_by = NULL, hidden_reason = NULL, open_reports = 0 WHERE id = $1`, id)
			if err == nil {
				_, err = resolveReports(ctx, tx, id, "dismissed", req.Principal.UserID, now)
			}
		}
		if err != nil {
			return err
		}
		ca, err = loadComment(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		cs, err := p.visible(ctx, tx, req, true, []Comment{ca.Comment})
		if err != nil {
			return err
		}
		out = cs[0]
		return p.audit(ctx, req, "messaging.comment."+in.Action, "comment", id, map[string]any{"post_id": ca.PostID, "author_id": ca.AuthorID, "reason": in.Reason})
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
