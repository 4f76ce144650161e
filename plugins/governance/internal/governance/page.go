package governance

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// newestFirst answers one page of a list ordered newest first by the
// columns at and id: query selects the rows and ends in its WHERE clause
// (filters on args, $1 on); the page's bound and limit take the
// placeholders after them. key gives an item's (at, id).
func newestFirst[T any](ctx context.Context, req *sdk.Request, query, at, id string, args []any,
	scan func(pgx.Row) (T, error), key func(T) (time.Time, string)) (*sdk.Response, error) {
	pr, err := req.Page()
	if err != nil {
		return nil, err
	}
	after, last, more, err := pr.AfterTime()
	if err != nil {
		return nil, err
	}
	n := len(args)
	sql := fmt.Sprintf(`%s AND (NOT $%d OR (%s, %s) < ($%d, $%d)) ORDER BY %s DESC, %s DESC LIMIT $%d`,
		query, n+1, at, id, n+2, n+3, at, id, n+4)
	args = append(args, more, after, nullUUID(last), pr.Limit+1)
	var items []T
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, pr.Limit, func(x T) []string { return sdk.TimeKey(key(x)) }))
}

// nullUUID is a cursor's ID, or the nil UUID on the first page.
func nullUUID(id string) string {
	if id == "" {
		return uuid.Nil.String()
	}
	return id
}
