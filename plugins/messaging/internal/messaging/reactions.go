package messaging

import (
	"context"
	"net/http"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Reactions: one per person per emoji on a post or a comment. PUT adds
// (again: nothing changes), DELETE removes.

// ReactionCount is how many reacted with an emoji, and whether the caller did.
type ReactionCount struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	Mine  bool   `json:"mine"`
}

// Reactions is a target's reactions after a change.
type Reactions struct {
	TargetID  string          `json:"target_id" format:"uuid"`
	Reactions []ReactionCount `json:"reactions"`
}

func (p *Plugin) reactionRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "PUT", Path: "/api/v1/posts/{post_id}/reactions/{emoji}", Permission: PermPost, Summary: "React to a post with an emoji (once per person and emoji)",
			Response: Reactions{}, Handler: p.reactToPost},
		{Method: "DELETE", Path: "/api/v1/posts/{post_id}/reactions/{emoji}", Permission: PermPost, Summary: "Take back one's reaction to a post",
			Response: Reactions{}, Handler: p.unreactToPost},
		{Method: "PUT", Path: "/api/v1/comments/{comment_id}/reactions/{emoji}", Permission: PermPost, Summary: "React to a comment with an emoji (once per person and emoji)",
			Response: Reactions{}, Handler: p.reactToComment},
		{Method: "DELETE", Path: "/api/v1/comments/{comment_id}/reactions/{emoji}", Permission: PermPost, Summary: "Take back one's reaction to a comment",
			Response: Reactions{}, Handler: p.unreactToComment},
	}
}

// validEmoji accepts one emoji as people type it: pictographs with their
// modifiers, variation selectors, joiners, keycaps and flags, at most 8
// code points.
func validEmoji(s string) bool {
	if s == "" || len(s) > 32 || !utf8.ValidString(s) {
		return false
	}
	n, pictures := 0, 0
	for _, r := range s {
		n++
		switch {
		case r == 0x200D, r == 0xFE0F, r == 0xFE0E, r == 0x20E3, r >= 0x1F3FB && r <= 0x1F3FF, r >= 0xE0020 && r <= 0xE007F:
			// joiner, variation selectors, keycap, skin tones, tag characters
		case r >= 0x1F1E6 && r <= 0x1F1FF: // regional indicators (flags)
			pictures++
		case unicode.Is(unicode.So, r) || (r >= 0x1F000 && r <= 0x1FAFF) || (r >= 0x2600 && r <= 0x27BF) || r == 0x00A9 || r == 0x00AE || r == 0x2122 || r == 0x203C || r == 0x2049:
			pictures++
		case r == '#' || r == '*' || (r >= '0' && r <= '9'): // keycap bases
		default:
			return false
		}
	}
	return n <= 8 && (pictures >= 1 || (n >= 2 && containsKeycap(s)))
}

func containsKeycap(s string) bool {
	for _, r := range s {
		if r == 0x20E3 {
			return true
		}
	}
	return false
}

// reactionCounts reads the reactions of targets, with the caller's.
func reactionCounts(ctx context.Context, tx pgx.Tx, ids []string, me string) (map[string][]ReactionCount, error) {
	out := map[string][]ReactionCount{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT target_id::text, emoji, count(*), bool_or(user_id = $2) FROM reactions
		WHERE target_id = ANY($1::uuid[]) GROUP BY target_id, emoji`, ids, me)
	if err != nil {
		return nil, err
	}
	var id string
	var rc ReactionCount
	if _, err := pgx.ForEachRow(rows, []any{&id, &rc.Emoji, &rc.Count, &rc.Mine}, func() error {
		out[id] = append(out[id], rc)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool {
			if rs[i].Count != rs[j].Count {
				return rs[i].Count > rs[j].Count
			}
			return rs[i].Emoji < rs[j].Emoji
		})
	}
	return out, nil
}

func (p *Plugin) react(ctx context.Context, req *sdk.Request, targetType, param string, on bool) (*sdk.Response, error) {
	id, err := req.UUIDParam(param)
	if err != nil {
		return nil, err
	}
	emoji := req.Param("emoji")
	if !validEmoji(emoji) {
		return nil, invalid("invalid_emoji", "emoji", "must be one emoji")
	}
	cfg, err := p.config(ctx, req)
	if err != nil {
		return nil, err
	}
	var out Reactions
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var postID, spaceID string
		var sp spaceAccess
		if targetType == "post" {
			pa, err := loadPost(ctx, tx, req, id, false)
			if err != nil {
				return err
			}
			postID, spaceID, sp = pa.ID, pa.SpaceID, pa.space
		} else {
			c, err := loadComment(ctx, tx, req, id, false)
			if err != nil {
				return err
			}
			postID, spaceID, sp = c.PostID, c.post.SpaceID, c.post.space
		}
		member := sp.member
		if !member {
			return sdk.Errorf(sdk.ErrForbidden, "only members of the space react").WithCode("not_a_member")
		}
		table := map[string]string{"post": "posts", "comment": "comments"}[targetType]
		if on {
			if err := p.checkBurst(ctx, tx, req, spaceID, burstComments, cfg.CommentBurst, cfg.BurstWindowSeconds); err != nil {
				return err
			}
			at := p.now()
			tag, err := tx.Exec(ctx, `INSERT INTO reactions (tenant_id, target_type, target_id, post_id, user_id, emoji, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, req.Tenant(), targetType, id, postID, req.Principal.UserID, emoji, at)
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
				if _, err := tx.Exec(ctx, `UPDATE `+table+` SET reaction_count = reaction_count + 1 WHERE id = $1`, id); err != nil {
					return err
				}
				if err := req.Publish(ctx, tx, EventReactionAdded, ReactionAdded{TargetType: targetType, TargetID: id, PostID: postID, SpaceID: spaceID,
					CourseID: sp.CourseID, CohortID: sp.CohortID, UserID: req.Principal.UserID, Emoji: emoji, CreatedAt: at}); err != nil {
					return err
				}
			}
		} else {
			tag, err := tx.Exec(ctx, `DELETE FROM reactions WHERE target_id = $1 AND user_id = $2 AND emoji = $3`, id, req.Principal.UserID, emoji)
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
				if _, err := tx.Exec(ctx, `UPDATE `+table+` SET reaction_count = greatest(0, reaction_count - 1) WHERE id = $1`, id); err != nil {
					return err
				}
			}
		}
		rs, err := reactionCounts(ctx, tx, []string{id}, req.Principal.UserID)
		out = Reactions{TargetID: id, Reactions: rs[id]}
		if out.Reactions == nil {
			out.Reactions = []ReactionCount{}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) reactToPost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return p.react(ctx, req, "post", "post_id", true)
}

func (p *Plugin) unreactToPost(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return p.react(ctx, req, "post", "post_id", false)
}

func (p *Plugin) reactToComment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return p.react(ctx, req, "comment", "comment_id", true)
}

func (p *Plugin) unreactToComment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return p.react(ctx, req, "comment", "comment_id", false)
}
