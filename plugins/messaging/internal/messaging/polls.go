package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Polls: a post may carry one poll, single or multiple choice, open until
// closes_at. A vote replaces the person's earlier one; results are shown
// to all members.

// NewPoll is the poll of a new post.
type NewPoll struct {
	Question string     `json:"question" minLength:"1" maxLength:"300"`
	Options  []string   `json:"options" minItems:"2" maxItems:"10" minLength:"1" maxLength:"200"`
	Multiple bool       `json:"multiple,omitempty" doc:"Several options may be chosen."`
	ClosesAt *time.Time `json:"closes_at,omitempty" doc:"When voting ends; none: open while the post exists."`
}

// Poll is a poll with its results.
type Poll struct {
	Question string       `json:"question"`
	Options  []PollOption `json:"options"`
	Multiple bool         `json:"multiple"`
	ClosesAt *time.Time   `json:"closes_at,omitempty"`
	Closed   bool         `json:"closed"`
	Voters   int          `json:"voters"`
}

// PollOption is an option with its votes.
type PollOption struct {
	ID    string `json:"id"`
	Text  string `json:"text"`
	Votes int    `json:"votes"`
	Mine  bool   `json:"mine"`
}

// Vote chooses options.
type Vote struct {
	Options []string `json:"options" minItems:"1" maxItems:"10" pattern:"^[a-z0-9]{1,8}$" doc:"The IDs of the options chosen (one, unless the poll is multiple choice)."`
}

func (p *Plugin) pollRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/posts/{post_id}/votes", Permission: PermPost, Summary: "Vote in a post's poll (again: replaces one's vote)",
			Request: Vote{}, Response: Poll{}, Handler: p.vote},
	}
}

type storedOption struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// checkPoll checks what the schema cannot: blank text, options given twice,
// a closing time in the past.
func checkPoll(in NewPoll, now time.Time) (*NewPoll, error) {
	var bad []sdk.FieldError
	in.Question = strings.TrimSpace(in.Question)
	if in.Question == "" {
		bad = append(bad, sdk.FieldError{Field: "poll.question", Message: "must not be blank"})
	}
	seen := map[string]bool{}
	for i, o := range in.Options {
		o = strings.TrimSpace(o)
		in.Options[i] = o
		switch {
		case o == "":
			bad = append(bad, sdk.FieldError{Field: fmt.Sprintf("poll.options.%d", i), Message: "must not be blank"})
		case seen[strings.ToLower(o)]:
			bad = append(bad, sdk.FieldError{Field: fmt.Sprintf("poll.options.%d", i), Message: "is given twice"})
		}
		seen[strings.ToLower(o)] = true
	}
	if in.ClosesAt != nil && !in.ClosesAt.After(now) {
		bad = append(bad, sdk.FieldError{Field: "poll.closes_at", Message: "must be in the future"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	return &in, nil
}

func insertPoll(ctx context.Context, tx pgx.Tx, tenant, postID string, in NewPoll) error {
	opts := make([]storedOption, len(in.Options))
	for i, o := range in.Options {
		opts[i] = storedOption{ID: string(rune('a' + i)), Text: o}
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO polls (tenant_id, post_id, question, options, multiple, closes_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		tenant, postID, in.Question, b, in.Multiple, in.ClosesAt)
	return err
}

// loadPolls reads the polls of posts with their results.
func loadPolls(ctx context.Context, tx pgx.Tx, postIDs []string, me string, now time.Time) (map[string]*Poll, error) {
	out := map[string]*Poll{}
	rows, err := tx.Query(ctx, `SELECT post_id::text, question, options, multiple, closes_at FROM polls WHERE post_id = ANY($1::uuid[])`, postIDs)
	if err != nil {
		return nil, err
	}
	var id, q string
	var raw []byte
	var multiple bool
	var closes *time.Time
	if _, err := pgx.ForEachRow(rows, []any{&id, &q, &raw, &multiple, &closes}, func() error {
		var opts []storedOption
		if err := json.Unmarshal(raw, &opts); err != nil {
			return err
		}
		poll := &Poll{Question: q, Multiple: multiple, ClosesAt: closes, Closed: closes != nil && !closes.After(now)}
		for _, o := range opts {
			poll.Options = append(poll.Options, PollOption{ID: o.ID, Text: o.Text})
		}
		out[id] = poll
		return nil
	}); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	rows, err = tx.Query(ctx, `SELECT post_id::text, option_id, count(*), bool_or(user_id = $2) FROM poll_votes
		WHERE post_id = ANY($1::uuid[]) GROUP BY post_id, option_id`, postIDs, me)
	if err != nil {
		return nil, err
	}
	var opt string
	var n int
	var mine bool
	if _, err := pgx.ForEachRow(rows, []any{&id, &opt, &n, &mine}, func() error {
		for i := range out[id].Options {
			if out[id].Options[i].ID == opt {
				out[id].Options[i].Votes, out[id].Options[i].Mine = n, mine
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT post_id::text, count(DISTINCT user_id) FROM poll_votes WHERE post_id = ANY($1::uuid[]) GROUP BY post_id`, postIDs)
	if err != nil {
		return nil, err
	}
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id].Voters = n; return nil })
	return out, err
}

func (p *Plugin) vote(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("post_id")
	if err != nil {
		return nil, err
	}
	var in Vote
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var out *Poll
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pa, err := loadPost(ctx, tx, req, id, false)
		if err != nil {
			return err
		}
		if !pa.space.member {
			return sdk.Errorf(sdk.ErrForbidden, "only members of the space vote").WithCode("not_a_member")
		}
		polls, err := loadPolls(ctx, tx, []string{id}, req.Principal.UserID, p.now())
		if err != nil {
			return err
		}
		poll := polls[id]
		if poll == nil {
			return sdk.Errorf(sdk.ErrNotFound, "the post has no poll").WithCode("no_poll")
		}
		if poll.Closed {
			return sdk.Errorf(sdk.ErrConflict, "the poll closed at %s", poll.ClosesAt.Format(time.RFC3339)).WithCode("poll_closed")
		}
		if !poll.Multiple && len(in.Options) > 1 {
			return invalid("single_choice", "options", "this poll takes one option")
		}
		known := map[string]bool{}
		for _, o := range poll.Options {
			known[o.ID] = true
		}
		seen := map[string]bool{}
		for i, o := range in.Options {
			if !known[o] {
				return invalid("unknown_option", fmt.Sprintf("options.%d", i), "is not an option of this poll")
			}
			if seen[o] {
				return invalid("duplicate", fmt.Sprintf("options.%d", i), "is given twice")
			}
			seen[o] = true
		}
		if _, err := tx.Exec(ctx, `DELETE FROM poll_votes WHERE post_id = $1 AND user_id = $2`, id, req.Principal.UserID); err != nil {
			return err
		}
		for _, o := range in.Options {
			if _, err := tx.Exec(ctx, `INSERT INTO poll_votes (tenant_id, post_id, option_id, user_id, voted_at) VALUES ($1, $2, $3, $4, $5)`,
				req.Tenant(), id, o, req.Principal.UserID, p.now()); err != nil {
				return err
			}
		}
		polls, err = loadPolls(ctx, tx, []string{id}, req.Principal.UserID, p.now())
		out = polls[id]
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
