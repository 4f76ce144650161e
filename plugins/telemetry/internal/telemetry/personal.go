package telemetry

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The personal data telemetry holds (docs/telemetry.md, "Personal data").
//
// A person's statements are deleted when they are erased, with the index
// of their IDs; the hours they fall in are queued for their rollups to be
// recomputed (rollups hold counts, never a person). Their exports are
// rewritten without them: every hour export_subjects lists them in is
// exported again from what is left, replacing its objects, and its
// manifest gains a tombstone (when, why, how many statements left, the
// parts as they were) that names no one. Consent decisions stay under the
// erasure's pseudonym, so the institution can still show on what basis it
// held data; they name no one once the person is gone.

func (p *Plugin) personalData() []sdk.DataClass {
	return []sdk.DataClass{
		{
			Name: "statements", Table: "statements", Subject: "user_id", OnErase: sdk.Delete,
			Purpose:   "Learning statements (xAPI) the person's clients, the institution's sources and the platform sent, under their consent.",
			Retention: "Until the operator's retention drops the day they were stored (retention_days), or the person is erased; their exports are then rewritten without them.",
			Columns: []sdk.PersonalColumn{
				{Name: "raw", Kind: sdk.OtherPersonal, Description: "The statement as received: the person's account, what they did and answered."},
			},
			NotPersonal: []string{"verb", "object_id", "object_type", "purpose", "source"},
			Erase:       p.eraseStatements,
		},
		{
			Name: "export_subjects", Table: "export_subjects", Subject: "user_id", OnErase: sdk.Delete,
			Purpose:   "Which exported hours hold the person's statements, so that an erasure rewrites them.",
			Retention: "As long as the export; deleted when the person is erased.",
		},
		{
			Name: "consent_decisions", Table: "consent_decisions", Subject: "user_id", OnErase: sdk.Keep,
			Purpose:     "The person's consent decisions: the basis on which their statements were held.",
			Retention:   "Kept with the institution; under a pseudonym once the person is erased.",
			Columns:     []sdk.PersonalColumn{{Name: "recorded_by", Kind: sdk.ActorRef, Description: "Who recorded the decision (the person, or an admin)."}},
			NotPersonal: []string{"purpose"},
		},
		{
			Name: "consent_policies", Table: "consent_policies",
			Purpose:     "The institution's consent policies; their author is named.",
			Retention:   "Kept with the institution; the author becomes a pseudonym when erased.",
			Columns:     []sdk.PersonalColumn{{Name: "created_by", Kind: sdk.ActorRef, Description: "Who published the version."}},
			NotPersonal: []string{"summary"},
		},
	}
}

// eraseBatch is the most statements one transaction of an erasure deletes.
const eraseBatch = 1000

// eraseStatements deletes the person's statements, in batches, then
// rewrites the exports they were in.
func (p *Plugin) eraseStatements(ctx context.Context, e *sdk.PersonalErasure) error {
	var hours []time.Time
	err := e.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT hour FROM export_subjects WHERE user_id = $1 ORDER BY hour`, e.UserID)
		var err error
		hours, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil || !e.DryRun {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM statements WHERE user_id = $1`, e.UserID).Scan(&n); err != nil {
			return err
		}
		e.Deleted(n)
		e.Objects(int64(len(hours)))
		return nil
	})
	if err != nil || e.DryRun {
		return err
	}
	for {
		var n int64
		err := e.Tx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `
				WITH gone AS (
					DELETE FROM statements WHERE (tenant_id, stored_at, id) IN (
						SELECT tenant_id, stored_at, id FROM statements WHERE user_id = $1 LIMIT $3)
					RETURNING id, occurred_at
				), ids AS (
					DELETE FROM statement_ids WHERE tenant_id = $2 AND id IN (SELECT id FROM gone)
				), queued AS (
					INSERT INTO rollup_queue (tenant_id, hour) SELECT DISTINCT $2::uuid, date_trunc('hour', occurred_at, 'UTC') FROM gone
				)
				SELECT count(*) FROM gone`, e.UserID, e.TenantID, eraseBatch).Scan(&n)
		})
		if err != nil {
			return err
		}
		e.Deleted(n)
		if n < eraseBatch {
			break
		}
	}
	x := &exporter{p: p, tenant: e.TenantID, tx: e.Tx, bucket: e.Storage()}
	for _, h := range hours {
		if _, err := x.exportHour(ctx, h, &rewrite{reason: "erasure"}); err != nil {
			return err
		}
		e.Objects(1)
	}
	// exportHour left the person out of each hour's subjects; anything
	// left (an hour whose export is gone) goes too.
	return e.Tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM export_subjects WHERE user_id = $1`, e.UserID)
		e.Deleted(tag.RowsAffected())
		return err
	})
}
