package commerce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// BillingAnomaly is a recorded anomaly, as the API shows it.
type BillingAnomaly struct {
	ID         string    `json:"id" format:"uuid"`
	Kind       string    `json:"kind"`
	ObjectType string    `json:"object_type"`
	ObjectID   string    `json:"object_id"`
	Detail     string    `json:"detail"`
	Repaired   bool      `json:"repaired"`
	RunID      *string   `json:"run_id,omitempty" format:"uuid"`
	CreatedAt  time.Time `json:"created_at"`
}

// anomalyInput is an anomaly to record.
type anomalyInput struct {
	Kind, ObjectType, ObjectID, Detail string
	Repaired                           bool
	RunID                              string
}

// anomaly records an anomaly once per kind and object, and publishes
// commerce.billing.anomaly.v1 when it is new. It reports whether it was.
func (p *Plugin) anomaly(ctx context.Context, tx pgx.Tx, s sdk.Scope, a anomalyInput) error {
	_, err := p.newAnomaly(ctx, tx, s, a)
	return err
}

func (p *Plugin) newAnomaly(ctx context.Context, tx pgx.Tx, s sdk.Scope, a anomalyInput) (bool, error) {
	a.Detail = truncate(a.Detail, 1000)
	var id string
	err := tx.QueryRow(ctx, `
		INSERT INTO billing_anomalies (kind, object_type, object_id, detail, repaired, run_id) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, kind, object_id) DO NOTHING RETURNING id`,
		a.Kind, a.ObjectType, a.ObjectID, a.Detail, a.Repaired, nullIfEmpty(a.RunID)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording anomaly %s of %s %s: %w", a.Kind, a.ObjectType, a.ObjectID, err)
	}
	return true, s.Publish(ctx, tx, EventAnomaly, Anomaly{AnomalyID: id, Kind: a.Kind, ObjectType: a.ObjectType, ObjectID: a.ObjectID,
		Detail: a.Detail, Repaired: a.Repaired, RunID: a.RunID})
}

func (p *Plugin) listAnomalies(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	args := []any{}
	where := "true"
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where, args = "(created_at, id) < ($1, $2::uuid)", []any{at, id}
	}
	var items []BillingAnomaly
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, kind, object_type, object_id, detail, repaired, run_id, created_at FROM billing_anomalies
			WHERE `+where+fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, page.Limit+1), args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (BillingAnomaly, error) {
			var a BillingAnomaly
			err := r.Scan(&a.ID, &a.Kind, &a.ObjectType, &a.ObjectID, &a.Detail, &a.Repaired, &a.RunID, &a.CreatedAt)
			a.CreatedAt = a.CreatedAt.UTC()
			return a, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(a BillingAnomaly) []string { return sdk.TimeKey(a.CreatedAt, a.ID) }))
}
