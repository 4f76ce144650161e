package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Job names.
const (
	JobRollup   = "rollup"
	JobExport   = "warehouse-export"
	JobMaintain = "maintain"
)

func (p *Plugin) jobs() []sdk.Job {
	return []sdk.Job{
		{Name: JobRollup, Description: "Recompute the hourly rollups of the hours new statements (or erasures) touched.",
			Schedule: "*/10 * * * *", PerTenant: true, MaxAttempts: 3, Timeout: 10 * time.Minute, Permission: PermExportRun, Handler: p.rollup},
		{Name: JobExport, Description: "TelemetryWarehouseJob: export every complete hour of statements not exported yet to object storage (JSONL, gzip, manifest).",
			Schedule: "5 * * * *", PerTenant: true, MaxAttempts: 3, Timeout: 15 * time.Minute, Permission: PermExportRun, Handler: p.warehouseExport},
		{Name: JobMaintain, Description: "Make the coming days' statement partitions, drop those past the retention, forget expired statement IDs.",
			Schedule: "20 0 * * *", PerTenant: true, MaxAttempts: 3, Permission: PermExportRun, Handler: p.maintain},
	}
}

// maintain keeps the partitions: the next days' made, those older than the
// operator's retention dropped (for every institution: partitions are
// shared), and this institution's statement IDs of that age forgotten.
func (p *Plugin) maintain(ctx context.Context, run *sdk.JobRun) error {
	if err := p.ensurePartitions(ctx); err != nil {
		return err
	}
	cfg, err := sdk.OperatorConfig[Config](p.env)
	if err != nil {
		return err
	}
	cutoff := time.Now().UTC().Add(-time.Duration(cfg.RetentionDays) * 24 * time.Hour).Truncate(24 * time.Hour)
	var dropped int
	if err := p.env.DB.Pool.QueryRow(ctx, `SELECT drop_statement_partitions($1::date)`, cutoff.Format(time.DateOnly)).Scan(&dropped); err != nil {
		return fmt.Errorf("dropping expired partitions: %w", err)
	}
	var forgotten int64
	for {
		var n int64
		err := run.Tx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM statement_ids WHERE (tenant_id, id) IN (
				SELECT tenant_id, id FROM statement_ids WHERE tenant_id = $1 AND stored_at < $2 LIMIT 5000)`, run.Tenant(), cutoff)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return err
		}
		forgotten += n
		if n < 5000 {
			break
		}
	}
	run.SetOutput(fmt.Sprintf("%d partitions dropped, %d expired statement IDs forgotten", dropped, forgotten))
	return nil
}
