package courses

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The personal data courses holds (docs/courses.md, "Personal data").
// The SDK exports and erases it from these classes; the kernel calls them
// for a person's access or erasure request and when an institution leaves.
//
// The decisions: a learner's record of learning (enrolments, progress,
// quiz attempts, submissions, grades, appeals, certificates) is anonymised,
// not deleted, so a course's statistics still add up: the rows stay under
// a pseudonym, without what the learner wrote or what was written about
// them. An instructor's authored content (courses, versions, cohorts,
// quizzes, rubrics, assignments) is the institution's and stays: the
// columns naming its author become the pseudonym, and their instructor
// assignments are deleted (an admin with courses.course.manage_all assigns
// someone else). An issued certificate stays verifiable: certificate_hashes
// is untouched, and the certificate's record loses its canonical text.
var _ sdk.TenantEraser = (*Plugin)(nil)

// retention is what "kept" means for the learner's record.
const retention = "As long as the course exists; when the learner is erased, kept under a pseudonym without what names them, so the course's statistics still add up."

func (p *Plugin) personalData() []sdk.DataClass {
	authored := func(name, table string, notPersonal ...string) sdk.DataClass {
		return sdk.DataClass{
			Name: name, Table: table, OnErase: sdk.Keep,
			Purpose:     "Course content an instructor authored: it belongs to the institution.",
			Retention:   "As long as the course exists; the author's ID becomes a pseudonym when they are erased.",
			Columns:     []sdk.PersonalColumn{{Name: "created_by", Kind: sdk.UserRef, Description: "Who created it."}},
			NotPersonal: notPersonal,
		}
	}
	versions := authored("course_versions", "course_versions", "content", "note")
	versions.Columns = []sdk.PersonalColumn{{Name: "published_by", Kind: sdk.UserRef, Description: "Who published the version."}}
	return []sdk.DataClass{
		// Learners. Through enrolments first: their rows are found by the
		// enrolment's user_id, which erasure then replaces.
		{
			Name: "lesson_progress", Table: "lesson_progress", Subject: "user_id", OnErase: sdk.Keep,
			Through: &sdk.Through{Column: "enrolment_id", Table: "enrolments", Key: "id"},
			Purpose: "Time spent on each lesson and when it was completed.", Retention: retention,
		},
		{
			Name: "enrolments", Table: "enrolments", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose: "Who learns which course, in which cohort, and how far they got.", Retention: retention,
			Columns: []sdk.PersonalColumn{{Name: "enrolled_by", Kind: sdk.ActorRef, Description: "Who enrolled the learner (themselves, an admin, an order)."}},
		},
		{
			Name: "course_progress", Table: "course_progress", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose: "The progress snapshot of each enrolment.", Retention: retention,
		},
		{
			Name: "quiz_attempts", Table: "quiz_attempts", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose: "Quiz attempts and their scores.", Retention: retention,
			// The IDs of the options chosen: nothing that names anyone once the
			// attempt's learner is a pseudonym, and what a quiz's item
			// statistics are made of.
			NotPersonal: []string{"answers"},
		},
		{
			Name: "submissions", Table: "submissions", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose: "Assignment work and its grade.", Retention: retention,
			Columns: []sdk.PersonalColumn{
				{Name: "body", Kind: sdk.FreeText, Description: "What the learner wrote."},
				{Name: "assets", Kind: sdk.OtherPersonal, Description: "Links to the learner's files."},
				{Name: "feedback", Kind: sdk.FreeText, Description: "The grader's words about the work."},
				{Name: "graded_by", Kind: sdk.UserRef, Description: "Who graded it."},
			},
			// The level chosen per rubric criterion: the grade, which stays.
			NotPersonal: []string{"levels"},
		},
		// Before appeals: it finds the learner's appeals by user_id.
		{
			Name: "appeal_grades", Table: "appeals",
			Purpose: "The grade being appealed, as it was, with its grader's feedback and ID.", Retention: retention,
			Columns: []sdk.PersonalColumn{{Name: "original", Kind: sdk.OtherPersonal, Description: "The grade appealed: its feedback is about the learner, graded_by names the grader."}},
			Export:  p.exportAppealGrades, Erase: p.eraseAppealGrades,
		},
		{
			Name: "appeals", Table: "appeals", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose: "A learner's appeal of a grade, and its resolution.", Retention: retention,
			Columns: []sdk.PersonalColumn{
				{Name: "reason", Kind: sdk.FreeText, Description: "Why the learner appealed."},
				{Name: "resolution", Kind: sdk.FreeText, Description: "The reviewer's answer."},
				{Name: "reviewed_by", Kind: sdk.UserRef, Description: "Who resolved it."},
			},
		},
		{
			Name: "certificates", Table: "certificates", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose:   "Certificates issued for completed courses.",
			Retention: "Kept while the institution is; when the holder is erased the record loses its text and the hash still verifies.",
			Columns:   []sdk.PersonalColumn{{Name: "content", Kind: sdk.OtherPersonal, Description: "The canonical text the hash covers, naming the holder."}},
		},
		// Instructors.
		{
			Name: "course_instructors", Table: "course_instructors", Subject: "user_id", OnErase: sdk.Delete,
			Purpose:   "Who teaches which course.",
			Retention: "While they teach it; deleted when they are erased (an admin assigns another instructor).",
			Columns:   []sdk.PersonalColumn{{Name: "added_by", Kind: sdk.UserRef, Description: "Who assigned them."}},
		},
		authored("courses", "courses", "title", "summary"),
		versions,
		authored("cohorts", "cohorts", "name"),
		authored("quizzes", "quizzes", "title", "questions"),
		authored("rubrics", "rubrics", "title", "criteria"),
		authored("assignments", "assignments", "title", "instructions"),
	}
}

// exportAppealGrades exports the grades a person appealed (without the
// grader's ID) and, as references, the appealed grades they gave.
func (p *Plugin) exportAppealGrades(ctx context.Context, x *sdk.PersonalExport) error {
	return x.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT id, original - 'graded_by', user_id = $1::text::uuid FROM appeals
			WHERE user_id = $1::text::uuid OR original->>'graded_by' = $1::text ORDER BY id`, x.UserID)
		type line struct {
			id       string
			original map[string]any
			theirs   bool
		}
		lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (line, error) {
			var l line
			err := r.Scan(&l.id, &l.original, &l.theirs)
			return l, err
		})
		if err != nil {
			return err
		}
		for _, l := range lines {
			if l.theirs {
				err = x.Row(map[string]any{"id": l.id, "original": l.original})
			} else {
				err = x.Reference(map[string]any{"id": l.id, "original": map[string]any{"graded_by": x.UserID}})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// eraseAppealGrades takes the learner's feedback out of the grades they
// appealed (the grade itself stays), and replaces a grader's ID with the
// pseudonym. Appeals are few per person: one transaction.
func (p *Plugin) eraseAppealGrades(ctx context.Context, e *sdk.PersonalErasure) error {
	const (
		theirs = `user_id = $1::text::uuid AND original ? 'feedback' AND original->>'feedback' <> '` + sdk.ErasedText + `'`
		graded = `original->>'graded_by' = $1::text`
	)
	return e.Tx(ctx, func(tx pgx.Tx) error {
		if e.DryRun {
			var anonymised, references int64
			err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE `+theirs+`), count(*) FILTER (WHERE `+graded+`) FROM appeals`, e.UserID).
				Scan(&anonymised, &references)
			e.Anonymised(anonymised)
			e.References(references)
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE appeals SET original = jsonb_set(original, '{feedback}', to_jsonb($2::text)) WHERE `+theirs, e.UserID, sdk.ErasedText)
		if err != nil {
			return err
		}
		e.Anonymised(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `UPDATE appeals SET original = jsonb_set(original, '{graded_by}', to_jsonb($2::text)) WHERE `+graded, e.UserID, e.Pseudonym)
		e.References(tag.RowsAffected())
		return err
	})
}

// EraseTenant deletes the hashes of the institution's certificates, which
// certificate_hashes (outside row-level security, with no tenant_id) cannot
// say are its: an institution that leaves takes its certificates' public
// verification with it. The SDK then deletes the rows of every table.
func (p *Plugin) EraseTenant(ctx context.Context, e *sdk.TenantErasure) error {
	for {
		var n int64
		err := e.Tx(ctx, func(tx pgx.Tx) error {
			if e.DryRun {
				return tx.QueryRow(ctx, `SELECT count(*) FROM certificate_hashes WHERE id IN (SELECT id FROM certificates)`).Scan(&n)
			}
			tag, err := tx.Exec(ctx, `DELETE FROM certificate_hashes WHERE id IN (
				SELECT c.id FROM certificates c WHERE EXISTS (SELECT 1 FROM certificate_hashes h WHERE h.id = c.id) LIMIT 5000)`)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return err
		}
		e.Deleted("certificate_hashes", n)
		if e.DryRun || n == 0 {
			return nil
		}
	}
}
