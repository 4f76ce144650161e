package gamification

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Entry is one line of the leaderboard.
type Entry struct {
	UserID string `json:"user_id"`
	Points int64  `json:"points"`
	Rank   int64  `json:"rank"` // users with equal points share a rank
}

// Leaderboard is what GET /api/v1/leaderboard answers.
type Leaderboard struct {
	Items []Entry `json:"items"`
	Label string  `json:"label"` // what the institution calls points
}

// Standing is what GET /api/v1/leaderboard/users/{user_id} answers.
type Standing struct {
	Entry
	Label string `json:"label"`
}

const defaultLimit, maxLimit = 10, 100

// leaderboard handles GET /api/v1/leaderboard?limit=.
func (p *Plugin) leaderboard(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	limit := defaultLimit
	if req.Query.Has("limit") {
		n, err := strconv.Atoi(req.Query.Get("limit"))
		if err != nil || n < 1 || n > maxLimit {
			return nil, sdk.Invalid(sdk.FieldError{Field: "limit", Message: "must be an integer between 1 and 100"})
		}
		limit = n
	}
	cfg, err := p.config(req)
	if err != nil {
		return nil, err
	}
	out := Leaderboard{Label: cfg.Label}
	err = req.Tx(ctx, func(tx pgx.Tx) (err error) {
		out.Items, err = topEntries(ctx, tx, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// topEntries is the top of the leaderboard of tx's institution, highest
// first.
func topEntries(ctx context.Context, tx pgx.Tx, limit int) ([]Entry, error) {
	// No WHERE tenant_id: row-level security shows this institution's rows
	// only.
	rows, _ := tx.Query(ctx, `
		SELECT user_id::text, points, rank() OVER (ORDER BY points DESC)
		FROM totals
		ORDER BY points DESC, user_id
		LIMIT $1`, limit)
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Entry])
	if items == nil {
		items = []Entry{}
	}
	return items, err
}

// standing handles GET /api/v1/leaderboard/users/{user_id}.
func (p *Plugin) standing(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	userID := strings.ToLower(req.Param("user_id"))
	if !uuidPattern.MatchString(userID) {
		return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "must be a UUID"})
	}
	cfg, err := p.config(req)
	if err != nil {
		return nil, err
	}
	out := Standing{Entry: Entry{UserID: userID}, Label: cfg.Label}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT t.points, 1 + (SELECT count(*) FROM totals o WHERE o.points > t.points)
			FROM totals t
			WHERE t.user_id = $1`, userID).Scan(&out.Points, &out.Rank)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "user %s has no %s yet", userID, cfg.Label)
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
