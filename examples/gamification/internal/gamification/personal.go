package gamification

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// personalData describes what the plugin holds about people. The SDK
// exports and erases awards and totals from the description alone; the
// snapshots hold members' IDs inside a JSON document, which the plugin
// exports and erases itself.
//
// Points are not a record anyone needs once a member is erased: their
// awards and total are deleted, so the leaderboard drops them. Past
// snapshots keep their shape: the member's entry stays, under the
// erasure's pseudonym. Awards they gave others stay, with awarded_by
// the pseudonym.
func (p *Plugin) personalData() []sdk.DataClass {
	return []sdk.DataClass{
		{
			Name: "awards", Table: "awards", Subject: "user_id", OnErase: sdk.Delete,
			Purpose:   "Points awarded to a member, and why.",
			Retention: "Until the member is erased (or the institution leaves).",
			Columns: []sdk.PersonalColumn{
				{Name: "reason", Kind: sdk.FreeText, Description: "Why the points were given, in the awarder's words."},
				{Name: "awarded_by", Kind: sdk.UserRef, Description: "The user (or API key, or event) that gave them."},
			},
		},
		{
			Name: "totals", Table: "totals", Subject: "user_id", OnErase: sdk.Delete,
			Purpose: "A member's running total: their place on the leaderboard.", Retention: "Until the member is erased.",
		},
		{
			Name: "snapshots", Table: "snapshots",
			Purpose:   "Nightly copies of the top of the leaderboard.",
			Retention: "90 days; an erased member's entries stay under a pseudonym, so past rankings keep their shape.",
			Columns:   []sdk.PersonalColumn{{Name: "entries", Kind: sdk.OtherPersonal, Description: "The user ID, points and rank of each member at the top."}},
			Export:    exportSnapshots, Erase: eraseSnapshots,
		},
	}
}

// exportSnapshots exports the person's entries of every snapshot: when it
// was taken, their points and rank; not the others at the top.
func exportSnapshots(ctx context.Context, x *sdk.PersonalExport) error {
	return x.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT s.taken_at, e->'points', e->'rank'
			FROM snapshots s, jsonb_array_elements(s.entries) e
			WHERE e->>'user_id' = $1 ORDER BY s.taken_at`, x.UserID)
		type entry struct {
			TakenAt time.Time       `json:"taken_at"`
			Points  json.RawMessage `json:"points"`
			Rank    json.RawMessage `json:"rank"`
		}
		entries, err := pgx.CollectRows(rows, pgx.RowToStructByPos[entry])
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := x.Row(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// mentions selects the snapshots with an entry of the person ($1).
const mentions = `entries @> jsonb_build_array(jsonb_build_object('user_id', $1::text))`

// eraseSnapshots puts the erasure's pseudonym in place of the person's ID
// in every snapshot that lists them. A person is in at most one snapshot a
// night for 90 days: one transaction.
func eraseSnapshots(ctx context.Context, e *sdk.PersonalErasure) error {
	return e.Tx(ctx, func(tx pgx.Tx) error {
		if e.DryRun {
			var n int64
			err := tx.QueryRow(ctx, `SELECT count(*) FROM snapshots WHERE `+mentions, e.UserID).Scan(&n)
			e.Anonymised(n)
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE snapshots SET entries = (
				SELECT jsonb_agg(CASE WHEN x.e->>'user_id' = $1::text THEN jsonb_set(x.e, '{user_id}', to_jsonb($2::text)) ELSE x.e END ORDER BY x.n)
				FROM jsonb_array_elements(entries) WITH ORDINALITY AS x(e, n))
			WHERE `+mentions, e.UserID, e.Pseudonym)
		e.Anonymised(tag.RowsAffected())
		return err
	})
}
