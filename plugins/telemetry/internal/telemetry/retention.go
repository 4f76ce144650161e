package telemetry

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The retention class of telemetry (docs/telemetry.md, "Retention"):
// statements by the day they were stored. An institution's retention drops
// the day partitions stored entirely before its cutoff that hold its
// statements only and none under a hold (drop_tenant_statement_partitions),
// then deletes its other expired statements in batches (the SDK's generic
// SQL). Partitions are shared by every institution on the platform: one
// holding another institution's statements is never dropped for this one.
// Holds: a person, a course, a cohort.
func (p *Plugin) retention() []sdk.RetentionClass {
	return []sdk.RetentionClass{{
		Name: "statements", Description: "Learning statements (xAPI) by the day they were stored; whole day partitions are dropped where only the institution's expired statements are in them.",
		Table: "statements", TimeColumn: "stored_at", Subject: "user_id", ID: "id",
		HoldColumns: map[string]string{"course": "course_id", "cohort": "cohort_id"},
		Actions:     []sdk.RetentionAction{sdk.RetainDelete},
		Apply:       p.applyRetention,
	}}
}

// applyRetention: a dry run counts with the generic SQL (the rows in the
// partitions it would drop are expired and unheld rows of the institution
// too, so the count is the same); an execution drops what partitions it
// can, then deletes the rest.
func (p *Plugin) applyRetention(ctx context.Context, run *sdk.RetentionRun) (sdk.RetentionResult, error) {
	if run.DryRun || run.Held(sdk.HoldTenant, "") {
		return run.Default(ctx)
	}
	held := map[string][]string{sdk.HoldPerson: {}, "course": {}, "cohort": {}}
	for _, h := range run.Holds {
		if u, err := uuid.Parse(h.ID); err == nil { // a hold that is no UUID holds no statement
			held[h.Kind] = append(held[h.Kind], u.String())
		}
	}
	var dropped int64
	err := run.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT partition, statements FROM drop_tenant_statement_partitions($1, $2::uuid[], $3::uuid[], $4::uuid[])`,
			run.Cutoff, held[sdk.HoldPerson], held["course"], held["cohort"])
		if err != nil {
			return err
		}
		var name string
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
			dropped += n
			return nil
		})
		return err
	})
	if err != nil {
		return sdk.RetentionResult{}, fmt.Errorf("dropping expired partitions: %w", err)
	}
	res, err := run.Default(ctx)
	res.Matched += dropped
	res.Affected += dropped
	return res, err
}
