package telemetry

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Freshness answers GET /api/v1/telemetry/freshness: how far behind the
// institution's telemetry is. Prometheus has the same from the metrics
// (telemetry_newest_statement_timestamp_seconds,
// telemetry_ingest_delay_seconds, telemetry_export_newest_hour_end_seconds).
type Freshness struct {
	Now                time.Time  `json:"now"`
	NewestStored       *time.Time `json:"newest_stored,omitempty" doc:"When the newest statement arrived."`
	LagSeconds         *float64   `json:"lag_seconds,omitempty" doc:"now − newest_stored."`
	StatementsLastHour int64      `json:"statements_last_hour"`
	DelayP50Seconds    *float64   `json:"delay_p50_seconds,omitempty" doc:"Median of (received − occurred) over the last hour's statements."`
	DelayP95Seconds    *float64   `json:"delay_p95_seconds,omitempty" doc:"95th percentile of (received − occurred) over the last hour's statements."`
	LastExportedHour   *time.Time `json:"last_exported_hour,omitempty"`
	ExportLagSeconds   *float64   `json:"export_lag_seconds,omitempty" doc:"now − the end of the last exported hour."`
	RollupQueue        int64      `json:"rollup_queue" doc:"Hours waiting for the rollup job."`
}

func (p *Plugin) freshnessRoutes() []sdk.Route {
	return []sdk.Route{{Method: "GET", Path: "/api/v1/telemetry/freshness", Permission: PermAggregateRead,
		Summary: "Ingestion lag, the delay of statements, export lag and the rollups' backlog", Response: Freshness{}, Handler: p.freshness}}
}

func (p *Plugin) freshness(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var f Freshness
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		var now time.Time
		var p50, p95 *float64
		err := tx.QueryRow(ctx, `
			SELECT now(),
				(SELECT max(stored_at) FROM statements WHERE tenant_id = $1),
				count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.95) WITHIN GROUP (ORDER BY d),
				(SELECT max(hour) FROM exports WHERE tenant_id = $1),
				(SELECT count(*) FROM rollup_queue WHERE tenant_id = $1)
			FROM (SELECT extract(epoch FROM stored_at - occurred_at)::float8 AS d FROM statements
			      WHERE tenant_id = $1 AND stored_at >= now() - interval '1 hour') s`, req.Tenant()).
			Scan(&now, &f.NewestStored, &f.StatementsLastHour, &p50, &p95, &f.LastExportedHour, &f.RollupQueue)
		f.Now, f.DelayP50Seconds, f.DelayP95Seconds = now.UTC(), p50, p95
		return err
	})
	if err != nil {
		return nil, err
	}
	if f.NewestStored != nil {
		t := f.NewestStored.UTC()
		lag := f.Now.Sub(t).Seconds()
		f.NewestStored, f.LagSeconds = &t, &lag
	}
	if f.LastExportedHour != nil {
		t := f.LastExportedHour.UTC()
		lag := f.Now.Sub(t.Add(time.Hour)).Seconds()
		f.LastExportedHour, f.ExportLagSeconds = &t, &lag
	}
	return sdk.JSON(http.StatusOK, f)
}
