package gamification

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Entry is one line of the leaderboard.
type Entry struct {
	UserID string `json:"user_id" format:"uuid"`
	Points int64  `json:"points"`
	Rank   int64  `json:"rank" minimum:"1" doc:"Members with equal points share a rank."`
}

// Leaderboard is what GET /api/v1/leaderboard answers.
type Leaderboard struct {
	Items []Entry `json:"items"`
	Label string  `json:"label" doc:"What the institution calls points."`
}

// Standing is what GET /api/v1/leaderboard/users/{user_id} answers.
type Standing struct {
	Entry
	Label string `json:"label" doc:"What the institution calls points."`
}

// LeaderboardQuery is the query of GET /api/v1/leaderboard.
type LeaderboardQuery struct {
	Limit int `query:"limit" minimum:"1" maximum:"100" doc:"How many members to list, from the top (10 when absent)."`
}

const defaultLimit = 10

// leaderboard handles GET /api/v1/leaderboard?limit=.
func (p *Plugin) leaderboard(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[LeaderboardQuery](req)
	if err != nil {
		return nil, err
	}
	if q.Limit == 0 {
		q.Limit = defaultLimit
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	out := Leaderboard{Label: cfg.Label}
	err = req.Tx(ctx, func(tx pgx.Tx) (err error) {
		out.Items, err = topEntries(ctx, tx, q.Limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// topEntries is the top of the leaderboard of tx's institution, highest
// first (an empty list, never nil).
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
	userID, ok := sdk.NormalizeUUID(req.Param("user_id"))
	if !ok {
		return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "must be a UUID"})
	}
	cfg, err := sdk.Config[Config](ctx, req)
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
