package sdk_test

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// A plugin describes its personal data once; the SDK exports and erases
// it. Submissions are a learner's and stay, anonymised, for the course's
// statistics; the grader is another person, named by reference.
func ExampleDataClass() {
	_ = sdk.Manifest{
		Name: "homework", Version: "0.1.0",
		PersonalData: []sdk.DataClass{
			{
				Name: "submissions", Table: "submissions", Subject: "user_id", OnErase: sdk.Anonymise,
				Purpose:   "The work a learner hands in, and its grade.",
				Retention: "As long as the course exists; anonymised when the learner is erased.",
				Columns: []sdk.PersonalColumn{
					{Name: "body", Kind: sdk.FreeText},
					{Name: "feedback", Kind: sdk.FreeText, Description: "The grader's words about the work."},
					{Name: "graded_by", Kind: sdk.UserRef},
				},
				NotPersonal: []string{"levels"}, // the grade, which stays
			},
			{
				Name: "drafts", Table: "drafts", Subject: "user_id", OnErase: sdk.Delete,
				Columns: []sdk.PersonalColumn{{Name: "text", Kind: sdk.FreeText}},
				Objects: "drafts/{user_id}/", // their uploads: the kernel's store
			},
		},
	}
}

// A class whose data the SDK cannot find by a column: the plugin exports
// and erases it itself, reporting what it changed.
func ExampleEraseFunc() {
	var erase sdk.EraseFunc = func(ctx context.Context, e *sdk.PersonalErasure) error {
		return e.Tx(ctx, func(tx pgx.Tx) error {
			q := `UPDATE rosters SET members = (members - $1::text) || to_jsonb($2::text) WHERE members ? $1`
			if e.DryRun {
				var n int64
				err := tx.QueryRow(ctx, `SELECT count(*) FROM rosters WHERE members ? $1`, e.UserID).Scan(&n)
				e.Anonymised(n)
				return err
			}
			tag, err := tx.Exec(ctx, q, e.UserID, e.Pseudonym)
			e.Anonymised(tag.RowsAffected())
			return err
		})
	}
	_ = sdk.DataClass{
		Name: "rosters", Table: "rosters",
		Columns: []sdk.PersonalColumn{{Name: "members", Kind: sdk.OtherPersonal, Description: "User IDs, in a JSON array."}},
		Export:  func(context.Context, *sdk.PersonalExport) error { return nil }, Erase: erase,
	}
}
