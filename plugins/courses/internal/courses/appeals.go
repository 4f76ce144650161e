package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Appeal is a learner's appeal of a grade. A reviewer who did not give the
// grade resolves it: upheld regrades the submission, rejected keeps the
// original grade.
type Appeal struct {
	ID           string     `json:"id" format:"uuid"`
	SubmissionID string     `json:"submission_id" format:"uuid"`
	CourseID     string     `json:"course_id" format:"uuid"`
	UserID       string     `json:"user_id" format:"uuid"`
	Reason       string     `json:"reason"`
	Status       string     `json:"status" enum:"open,upheld,rejected"`
	Original     Grade      `json:"original"`
	Resolution   string     `json:"resolution,omitempty"`
	ReviewedBy   string     `json:"reviewed_by,omitempty" format:"uuid"`
	CreatedAt    time.Time  `json:"created_at"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
	// Submission is the submission after a resolution, in the answer to
	// POST .../resolve.
	Submission *Submission `json:"submission,omitempty"`
}

// AppealGrade is the body of POST /api/v1/submissions/{submission_id}/appeals.
type AppealGrade struct {
	Reason string `json:"reason" minLength:"1" maxLength:"5000"`
}

// ListAppealsQuery filters GET /api/v1/appeals.
type ListAppealsQuery struct {
	Status   string `query:"status" enum:"open,upheld,rejected" default:"open"`
	CourseID string `query:"course_id" format:"uuid"`
}

// ResolveAppeal is the body of POST /api/v1/appeals/{appeal_id}/resolve.
type ResolveAppeal struct {
	Outcome    string            `json:"outcome" enum:"upheld,rejected"`
	Resolution string            `json:"resolution" minLength:"1" maxLength:"5000"`
	Levels     map[string]string `json:"levels,omitempty" doc:"Required when upheld: the new grade, one level per criterion."`
	Feedback   *string           `json:"feedback,omitempty" maxLength:"20000" doc:"When upheld: replaces the grade's feedback."`
}

func (p *Plugin) appealRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/submissions/{submission_id}/appeals", Permission: PermEnrolSelf,
			Summary: "Appeal the grade of one's own submission", Status: http.StatusCreated,
			Request: AppealGrade{}, Response: Appeal{},
			Handler: p.appeal,
		},
		{
			Method: "GET", Path: "/api/v1/appeals", Permission: PermAppealReview,
			Summary: "Appeals of the courses one grades (all with manage_all), oldest first; open ones unless status says otherwise",
			Query:   ListAppealsQuery{}, Paginated: true, Response: sdk.Page[Appeal]{},
			Handler: p.listAppeals,
		},
		{
			Method: "GET", Path: "/api/v1/appeals/{appeal_id}", Permission: PermCourseRead,
			Summary:  "An appeal: for the learner who made it, or a reviewer of its course",
			Response: Appeal{},
			Handler:  p.getAppeal,
		},
		{
			Method: "POST", Path: "/api/v1/appeals/{appeal_id}/resolve", Permission: PermAppealReview,
			Summary: "Resolve an appeal (a reviewer other than the grader): upheld regrades, rejected keeps the grade",
			Request: ResolveAppeal{}, Response: Appeal{},
			Handler: p.resolveAppeal,
		},
	}
}

// appeal handles POST /api/v1/submissions/{submission_id}/appeals: the
// learner asks for a review of a grade; the submission is appealed until
// a reviewer resolves it.
func (p *Plugin) appeal(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	submissionID, err := req.UUIDParam("submission_id")
	if err != nil {
		return nil, err
	}
	userID, err := learnerUserID(req.Principal, "appeal grades")
	if err != nil {
		return nil, err
	}
	var in AppealGrade
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	ap := Appeal{SubmissionID: submissionID, UserID: userID, Status: "open", Reason: trimmed(&bad, "reason", in.Reason, true)}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		s, err := loadSubmission(ctx, tx, submissionID, false)
		if err != nil {
			return err
		}
		if s.UserID != userID {
			return sdk.Errorf(sdk.ErrNotFound, "no submission %s", submissionID)
		}
		if err := lockEnrolment(ctx, tx, s.EnrolmentID); err != nil {
			return err
		}
		if s, err = loadSubmission(ctx, tx, submissionID, true); err != nil {
			return err
		}
		switch s.Status {
		case statusSubmitted:
			return sdk.Errorf(sdk.ErrConflict, "submission %s is not graded yet: there is nothing to appeal", submissionID).WithCode("not_graded")
		case statusAppealed:
			return sdk.Errorf(sdk.ErrConflict, "submission %s already has an open appeal", submissionID).WithCode("appeal_open")
		}
		ap.CourseID, ap.Original = s.CourseID, *s.Grade
		original, err := json.Marshal(ap.Original)
		if err != nil {
			return fmt.Errorf("encoding the grade: %w", err)
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO appeals (submission_id, course_id, user_id, reason, original) VALUES ($1, $2, $3, $4, $5)
			RETURNING id, created_at`, submissionID, ap.CourseID, userID, ap.Reason, original).Scan(&ap.ID, &ap.CreatedAt)
		if err != nil {
			return fmt.Errorf("inserting appeal: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE submissions SET status = 'appealed' WHERE id = $1`, submissionID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, ap)
}

// listAppeals handles GET /api/v1/appeals: the review backlog.
func (p *Plugin) listAppeals(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	pr := req.Principal
	q, err := sdk.Query[ListAppealsQuery](req)
	if err != nil {
		return nil, err
	}
	status, courseID := q.Status, strings.ToLower(q.CourseID)
	if status == "" {
		status = "open"
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, afterID, after, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	all := pr.Can(PermManageAll)
	if !all && (!pr.Can(PermGrade) || !pr.IsUser()) {
		return nil, sdk.Errorf(sdk.ErrForbidden, "appeals are reviewed by the graders of their course (%s)", PermGrade).WithCode("not_a_grader")
	}
	var out sdk.Page[Appeal]
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if courseID != "" && !all {
			if _, err := loadCourse(ctx, tx, courseID, false); err != nil {
				return err
			}
			ok, err := canGrade(ctx, tx, courseID, pr)
			if err != nil {
				return err
			}
			if !ok {
				return sdk.Errorf(sdk.ErrForbidden, "you do not grade course %s", courseID).WithCode("not_a_grader")
			}
		}
		var teacher *string
		if !all {
			teacher = &pr.UserID
		}
		rows, err := tx.Query(ctx, `
			SELECT `+appealColumns+` FROM appeals
			WHERE status = $1
			  AND ($2::uuid IS NULL OR course_id = $2)
			  AND ($3::uuid IS NULL OR course_id IN (SELECT course_id FROM course_instructors WHERE user_id = $3))
			  AND (NOT $4::bool OR (created_at, id) > ($5::timestamptz, $6::uuid))
			ORDER BY created_at, id LIMIT $7`,
			status, orNull(courseID), teacher, after, at, orNull(afterID), page.Limit+1)
		if err != nil {
			return fmt.Errorf("listing appeals: %w", err)
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Appeal, error) {
			a, err := scanAppeal(r)
			if err != nil {
				return Appeal{}, err
			}
			return *a, nil
		})
		if err != nil {
			return fmt.Errorf("listing appeals: %w", err)
		}
		out = sdk.NewPage(items, page.Limit, func(a Appeal) []string { return sdk.TimeKey(a.CreatedAt, a.ID) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// getAppeal handles GET /api/v1/appeals/{appeal_id}.
func (p *Plugin) getAppeal(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	appealID, err := req.UUIDParam("appeal_id")
	if err != nil {
		return nil, err
	}
	var ap *Appeal
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if ap, err = loadAppeal(ctx, tx, appealID, false); err != nil {
			return err
		}
		if req.Principal.IsUser() && ap.UserID == req.Principal.UserID {
			return nil
		}
		ok := req.Principal.Can(PermAppealReview)
		if ok {
			if ok, err = canGrade(ctx, tx, ap.CourseID, req.Principal); err != nil {
				return err
			}
		}
		if !ok {
			return sdk.Errorf(sdk.ErrNotFound, "no appeal %s", appealID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, ap)
}

// resolveAppeal handles POST /api/v1/appeals/{appeal_id}/resolve. Appeals
// go to a reviewer who did not give the grade. Upheld: the submission is
// regraded with the levels given (by the same rules as a grade) and
// courses.submission.graded.v1 is published with regrade set. Rejected:
// the submission is graded again with its original grade.
func (p *Plugin) resolveAppeal(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	appealID, err := req.UUIDParam("appeal_id")
	if err != nil {
		return nil, err
	}
	var in ResolveAppeal
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	resolution := trimmed(&bad, "resolution", in.Resolution, true)
	var feedback *string
	if in.Feedback != nil {
		f := strings.TrimSpace(*in.Feedback)
		feedback = &f
	}
	switch in.Outcome {
	case "upheld":
		if in.Levels == nil {
			bad = append(bad, sdk.FieldError{Field: "levels", Message: "is required when the outcome is upheld: the new grade"})
		}
	case "rejected":
		if in.Levels != nil {
			bad = append(bad, sdk.FieldError{Field: "levels", Message: "applies only when the outcome is upheld"})
		}
		if in.Feedback != nil {
			bad = append(bad, sdk.FieldError{Field: "feedback", Message: "applies only when the outcome is upheld (explain a rejection in resolution)"})
		}
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	reviewer := req.Principal.ID()
	var ap *Appeal
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if ap, err = loadAppeal(ctx, tx, appealID, false); err != nil {
			return err
		}
		// Locks: the enrolment, the submission, then the appeal.
		s, err := lockGradable(ctx, tx, req.Principal, ap.SubmissionID)
		if err != nil {
			return err
		}
		if ap, err = loadAppeal(ctx, tx, appealID, true); err != nil {
			return err
		}
		if ap.Status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "appeal %s was already %s", appealID, ap.Status).WithCode("appeal_resolved")
		}
		if ap.Original.GradedBy == reviewer || (s.Grade != nil && s.Grade.GradedBy == reviewer) {
			return sdk.Errorf(sdk.ErrForbidden, "you gave the grade under appeal: another reviewer must resolve appeal %s", appealID).WithCode("reviewer_is_grader")
		}
		if in.Outcome == "upheld" {
			g, c, err := rubricGrade(ctx, tx, cfg, s, in.Levels)
			if err != nil {
				return err
			}
			g.GradedBy = reviewer
			if s.Grade != nil {
				g.Feedback = s.Grade.Feedback
			}
			if feedback != nil {
				g.Feedback = *feedback
			}
			if err := saveGrade(ctx, tx, req, s, c, g, true); err != nil {
				return err
			}
		} else {
			if _, err := tx.Exec(ctx, `UPDATE submissions SET status = 'graded' WHERE id = $1`, s.ID); err != nil {
				return fmt.Errorf("closing the appeal on the submission: %w", err)
			}
			s.Status = statusGraded
		}
		at := now()
		_, err = tx.Exec(ctx, `UPDATE appeals SET status = $2, resolution = $3, reviewed_by = $4, resolved_at = $5 WHERE id = $1`,
			appealID, in.Outcome, resolution, reviewer, at)
		if err != nil {
			return fmt.Errorf("resolving the appeal: %w", err)
		}
		ap.Status, ap.Resolution, ap.ReviewedBy, ap.ResolvedAt, ap.Submission = in.Outcome, resolution, reviewer, &at, s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, ap)
}

const appealColumns = `id, submission_id, course_id, user_id, reason, status, original, coalesce(resolution, ''),
	coalesce(reviewed_by::text, ''), created_at, resolved_at`

func scanAppeal(row pgx.Row) (*Appeal, error) {
	var a Appeal
	err := row.Scan(&a.ID, &a.SubmissionID, &a.CourseID, &a.UserID, &a.Reason, &a.Status, &a.Original, &a.Resolution,
		&a.ReviewedBy, &a.CreatedAt, &a.ResolvedAt)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// loadAppeal reads an appeal of the transaction's institution, locking it
// when lock is set.
func loadAppeal(ctx context.Context, tx pgx.Tx, appealID string, lock bool) (*Appeal, error) {
	sql := `SELECT ` + appealColumns + ` FROM appeals WHERE id = $1`
	if lock {
		sql += " FOR UPDATE"
	}
	a, err := scanAppeal(tx.QueryRow(ctx, sql, appealID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no appeal %s", appealID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading appeal %s: %w", appealID, err)
	}
	return a, nil
}
