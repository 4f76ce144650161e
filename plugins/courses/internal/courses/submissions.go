package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk"
)

// Submission is a learner's work for an assignment and, once graded, its
// grade. Status: submitted (waiting for a grader), graded, appealed (a
// grade appeal is open; the grade stands until it is resolved).
type Submission struct {
	ID           string    `json:"id" format:"uuid"`
	AssignmentID string    `json:"assignment_id" format:"uuid"`
	CourseID     string    `json:"course_id" format:"uuid"`
	EnrolmentID  string    `json:"enrolment_id" format:"uuid"`
	UserID       string    `json:"user_id" format:"uuid"`
	Body         string    `json:"body"`
	Assets       []Asset   `json:"assets"`
	SubmittedAt  time.Time `json:"submitted_at"`
	DaysLate     int       `json:"days_late" minimum:"0" doc:"Started days after the due date."`
	Status       string    `json:"status" enum:"submitted,graded,appealed"`
	// The grade's fields, once graded, sit beside the submission's own
	// (levels, score, percent, passed...).
	*Grade
}

// Grade is a rubric grade: one level per criterion, the points, the late
// penalty and the final percentage. A Submission embeds it as a *Grade,
// nil (and its fields absent) until graded.
type Grade struct {
	Levels         map[string]string `json:"levels" doc:"Criterion ID: level ID."`
	Score          int               `json:"score"`
	MaxScore       int               `json:"max_score"`
	RawPercent     int               `json:"raw_percent" minimum:"0" maximum:"100" doc:"The score as a percentage of max_score."`
	PenaltyPercent int               `json:"penalty_percent" minimum:"0" maximum:"100" doc:"The late penalty, taken off raw_percent."`
	Percent        int               `json:"percent" minimum:"0" maximum:"100"`
	Passed         bool              `json:"passed"`
	Feedback       string            `json:"feedback"`
	GradedBy       string            `json:"graded_by" format:"uuid"`
	GradedAt       time.Time         `json:"graded_at"`
}

// Submission statuses.
const (
	statusSubmitted = "submitted"
	statusGraded    = "graded"
	statusAppealed  = "appealed"
)

// SubmitWork is the body of POST
// /api/v1/assignments/{assignment_id}/submissions: a body, assets or both.
type SubmitWork struct {
	Body   string  `json:"body,omitempty" maxLength:"100000"`
	Assets []Asset `json:"assets,omitempty" maxItems:"50"`
}

// ListSubmissionsQuery filters GET /api/v1/submissions.
type ListSubmissionsQuery struct {
	Scope        string `query:"scope" enum:"own,grading" doc:"own: one's own submissions; grading: the backlog of the courses one grades (the default for graders)."`
	Status       string `query:"status" enum:"submitted,graded,appealed"`
	CourseID     string `query:"course_id" format:"uuid"`
	AssignmentID string `query:"assignment_id" format:"uuid"`
}

// GradeSubmission is the body of POST /api/v1/submissions/{submission_id}/grade.
type GradeSubmission struct {
	Levels   map[string]string `json:"levels" doc:"One level ID for every criterion ID of the rubric."`
	Feedback string            `json:"feedback,omitempty" maxLength:"20000"`
}

func (p *Plugin) submissionRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/assignments/{assignment_id}/submissions", Permission: PermEnrolSelf,
			Summary: "Submit work for an assignment of a course one is enrolled in (once)", Status: http.StatusCreated,
			Request: SubmitWork{}, Response: Submission{},
			Handler: p.submit,
		},
		{
			Method: "GET", Path: "/api/v1/submissions", Permission: PermCourseRead,
			Summary: "Submissions, oldest first: one's own (scope=own), or the grading backlog of the courses one grades (scope=grading, the default for graders)",
			Query:   ListSubmissionsQuery{}, Paginated: true, Response: sdk.Page[Submission]{},
			Handler: p.listSubmissions,
		},
		{
			Method: "GET", Path: "/api/v1/submissions/{submission_id}", Permission: PermCourseRead,
			Summary:  "A submission: its learner's, or for a grader of its course",
			Response: Submission{},
			Handler:  p.getSubmission,
		},
		{
			Method: "POST", Path: "/api/v1/submissions/{submission_id}/grade", Permission: PermGrade,
			Summary: "Grade a submission with its assignment's rubric (once; regrades go through appeals)",
			Request: GradeSubmission{}, Response: Submission{},
			Handler: p.grade,
		},
	}
}

// submit handles POST /api/v1/assignments/{assignment_id}/submissions. A
// submission after the due date is refused under late_policy none, and
// under penalty after late_cutoff_days; it records the started days late
// for the grade's penalty.
func (p *Plugin) submit(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	assignmentID, err := req.UUIDParam("assignment_id")
	if err != nil {
		return nil, err
	}
	userID, err := learnerUserID(req.Principal, "submit work")
	if err != nil {
		return nil, err
	}
	var in SubmitWork
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	s := Submission{AssignmentID: assignmentID, UserID: userID, Status: statusSubmitted, Body: strings.TrimSpace(in.Body), Assets: append([]Asset{}, in.Assets...)}
	checkAssets(&bad, "assets", s.Assets)
	if len(bad) == 0 && s.Body == "" && len(s.Assets) == 0 {
		bad = append(bad, sdk.FieldError{Field: "body", Message: "a submission needs a body or at least one asset"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		a, _, err := publishedAssignment(ctx, tx, assignmentID)
		if err != nil {
			return err
		}
		s.CourseID = a.CourseID
		if s.EnrolmentID, err = lockLearnerEnrolment(ctx, tx, a.CourseID, userID); err != nil {
			return err
		}
		var exists bool
		err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM submissions WHERE assignment_id = $1 AND enrolment_id = $2)`,
			assignmentID, s.EnrolmentID).Scan(&exists)
		if err != nil {
			return fmt.Errorf("looking for an earlier submission: %w", err)
		}
		if exists {
			return sdk.Errorf(sdk.ErrConflict, "you have already submitted work for assignment %s", assignmentID).WithCode("already_submitted")
		}
		s.SubmittedAt = now()
		if s.DaysLate, err = daysLate(a, s.SubmittedAt); err != nil {
			return err
		}
		assets, err := json.Marshal(s.Assets)
		if err != nil {
			return fmt.Errorf("encoding assets: %w", err)
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO submissions (assignment_id, course_id, enrolment_id, user_id, body, assets, submitted_at, days_late)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			assignmentID, s.CourseID, s.EnrolmentID, userID, s.Body, assets, s.SubmittedAt, s.DaysLate).Scan(&s.ID)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			// The enrolment lock makes this unreachable; kept as the
			// constraint's answer.
			return sdk.Errorf(sdk.ErrConflict, "you have already submitted work for assignment %s", assignmentID).WithCode("already_submitted")
		}
		if err != nil {
			return fmt.Errorf("inserting submission: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, s)
}

// daysLate is the number of started days between the assignment's due
// date and at (0 when on time), or a 409 deadline_passed when the late
// policy refuses a submission then.
func daysLate(a *Assignment, at time.Time) (int, error) {
	if !at.After(a.DueAt) {
		return 0, nil
	}
	if a.LatePolicy != latePolicyPenalty {
		return 0, sdk.Errorf(sdk.ErrConflict, "assignment %s was due at %s and takes no late submissions",
			a.ID, a.DueAt.Format(time.RFC3339)).WithCode("deadline_passed")
	}
	const day = 24 * time.Hour
	days := int((at.Sub(a.DueAt) + day - 1) / day)
	if days > a.LateCutoffDays {
		return 0, sdk.Errorf(sdk.ErrConflict, "assignment %s was due at %s and takes late submissions for %d days only",
			a.ID, a.DueAt.Format(time.RFC3339), a.LateCutoffDays).WithCode("deadline_passed")
	}
	return days, nil
}

// listSubmissions handles GET /api/v1/submissions.
func (p *Plugin) listSubmissions(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	pr := req.Principal
	grader := pr.Can(PermGrade) || pr.Can(PermManageAll)
	q, err := sdk.Query[ListSubmissionsQuery](req)
	if err != nil {
		return nil, err
	}
	scope, status, courseID, assignmentID := q.Scope, q.Status, strings.ToLower(q.CourseID), strings.ToLower(q.AssignmentID)
	if scope == "" {
		scope = "own"
		if grader {
			scope = "grading"
		}
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, afterID, after, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	// The rows the caller may see: its own, or those of the courses it
	// grades (every course with manage_all).
	var owner, teacher *string
	all := false
	switch {
	case scope == "own":
		id, err := learnerUserID(pr, "have submissions of their own")
		if err != nil {
			return nil, err
		}
		owner = &id
	case !grader:
		return nil, sdk.Errorf(sdk.ErrForbidden, "the grading backlog is for graders (%s)", PermGrade).WithCode("not_a_grader")
	case pr.Can(PermManageAll):
		all = true
	default:
		if pr.IsUser() { // an API key teaches nothing: NULL below
			teacher = &pr.UserID
		}
	}
	var out sdk.Page[Submission]
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if scope == "grading" && !all && courseID != "" {
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
		rows, err := tx.Query(ctx, `
			SELECT `+submissionColumns+` FROM submissions
			WHERE ($1::text IS NULL OR status = $1)
			  AND ($2::uuid IS NULL OR course_id = $2)
			  AND ($3::uuid IS NULL OR assignment_id = $3)
			  AND ($4::uuid IS NULL OR user_id = $4)
			  AND ($5 OR $4::uuid IS NOT NULL OR course_id IN (SELECT course_id FROM course_instructors WHERE user_id = $6::uuid))
			  AND (NOT $7::bool OR (submitted_at, id) > ($8::timestamptz, $9::uuid))
			ORDER BY submitted_at, id LIMIT $10`,
			orNull(status), orNull(courseID), orNull(assignmentID), owner, all, teacher, after, at, orNull(afterID), page.Limit+1)
		if err != nil {
			return fmt.Errorf("listing submissions: %w", err)
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Submission, error) {
			s, err := scanSubmission(r)
			if err != nil {
				return Submission{}, err
			}
			return *s, nil
		})
		if err != nil {
			return fmt.Errorf("listing submissions: %w", err)
		}
		out = sdk.NewPage(items, page.Limit, func(s Submission) []string { return sdk.TimeKey(s.SubmittedAt, s.ID) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// getSubmission handles GET /api/v1/submissions/{submission_id}.
func (p *Plugin) getSubmission(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	submissionID, err := req.UUIDParam("submission_id")
	if err != nil {
		return nil, err
	}
	var s *Submission
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if s, err = loadSubmission(ctx, tx, submissionID, false); err != nil {
			return err
		}
		if req.Principal.IsUser() && s.UserID == req.Principal.UserID {
			return nil
		}
		ok, err := canGrade(ctx, tx, s.CourseID, req.Principal)
		if err != nil {
			return err
		}
		if !ok {
			return sdk.Errorf(sdk.ErrNotFound, "no submission %s", submissionID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, s)
}

// grade handles POST /api/v1/submissions/{submission_id}/grade: it grades
// with the assignment's rubric, takes off the late penalty, publishes
// courses.submission.graded.v1 and moves the learner's progress, all in
// one transaction.
func (p *Plugin) grade(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	submissionID, err := req.UUIDParam("submission_id")
	if err != nil {
		return nil, err
	}
	var in GradeSubmission
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	var s *Submission
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if s, err = lockGradable(ctx, tx, req.Principal, submissionID); err != nil {
			return err
		}
		if s.Status != statusSubmitted {
			return sdk.Errorf(sdk.ErrConflict, "submission %s is already graded: a regrade goes through an appeal", submissionID).WithCode("already_graded")
		}
		g, c, err := rubricGrade(ctx, tx, cfg, s, in.Levels)
		if err != nil {
			return err
		}
		g.Feedback, g.GradedBy = strings.TrimSpace(in.Feedback), req.Principal.ID()
		return saveGrade(ctx, tx, req, s, c, g, false)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, s)
}

// lockGradable loads a submission for a grader of its course, locking its
// enrolment and then the submission (the order every change to a
// submission takes). A grader who does not teach the course gets a 403
// not_a_grader.
func lockGradable(ctx context.Context, tx pgx.Tx, p sdk.Principal, submissionID string) (*Submission, error) {
	s, err := loadSubmission(ctx, tx, submissionID, false)
	if err != nil {
		return nil, err
	}
	ok, err := canGrade(ctx, tx, s.CourseID, p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, sdk.Errorf(sdk.ErrForbidden, "only the graders of course %s may grade its work", s.CourseID).WithCode("not_a_grader")
	}
	if err := lockEnrolment(ctx, tx, s.EnrolmentID); err != nil {
		return nil, err
	}
	return loadSubmission(ctx, tx, submissionID, true)
}

// rubricGrade grades a submission with the levels chosen: every criterion
// of the assignment's rubric needs exactly one of its own levels. The
// score is the sum of the levels' points, the raw percentage its share of
// the rubric's best, and the late penalty (late_penalty_percent per
// started day late, at most 100) is taken off that.
func rubricGrade(ctx context.Context, tx pgx.Tx, cfg Config, s *Submission, chosen map[string]string) (*Grade, *course, error) {
	a, err := loadAssignment(ctx, tx, s.AssignmentID, false)
	if err != nil {
		return nil, nil, err
	}
	r, err := loadRubric(ctx, tx, a.RubricID)
	if err != nil {
		return nil, nil, err
	}
	c, err := loadCourse(ctx, tx, a.CourseID, false)
	if err != nil {
		return nil, nil, err
	}
	g := &Grade{Levels: map[string]string{}, MaxScore: r.MaxScore}
	var bad []sdk.FieldError
	code := ""
	setCode := func(c string) { // the first kind of mistake, in this order of precedence
		rank := []string{"unknown_level", "unknown_criterion", "missing_level"}
		if code == "" || slices.Index(rank, c) < slices.Index(rank, code) {
			code = c
		}
	}
	criteria := map[string]bool{}
	for _, cr := range r.Criteria {
		criteria[cr.ID] = true
		f := "levels." + cr.ID
		levelID, ok := chosen[cr.ID]
		if !ok {
			bad = append(bad, sdk.FieldError{Field: f, Message: fmt.Sprintf("is required: choose one level of criterion %q", cr.Title)})
			setCode("missing_level")
			continue
		}
		i := slices.IndexFunc(cr.Levels, func(l Level) bool { return l.ID == levelID })
		if i < 0 {
			bad = append(bad, sdk.FieldError{Field: f, Message: fmt.Sprintf("%q is not a level of criterion %q", levelID, cr.Title)})
			setCode("unknown_level")
			continue
		}
		g.Levels[cr.ID] = levelID
		g.Score += cr.Levels[i].Points
	}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for k := range chosen {
			if !yield(k) {
				return
			}
		}
	}) {
		if !criteria[id] {
			bad = append(bad, sdk.FieldError{Field: "levels." + id, Message: "is not a criterion of the assignment's rubric"})
			setCode("unknown_criterion")
		}
	}
	if len(bad) > 0 {
		return nil, nil, sdk.Invalid(bad...).WithCode(code)
	}
	g.RawPercent = g.Score * 100 / g.MaxScore
	g.PenaltyPercent = min(100, a.LatePenaltyPercent*s.DaysLate)
	g.Percent = g.RawPercent * (100 - g.PenaltyPercent) / 100
	g.Passed = g.Percent >= effectivePassMark(a.PassMark, c, cfg)
	return g, c, nil
}

// saveGrade writes a grade to a locked submission (status graded),
// publishes courses.submission.graded.v1 and refreshes the learner's
// progress (the caller holds the enrolment's lock).
func saveGrade(ctx context.Context, tx pgx.Tx, sc sdk.Scope, s *Submission, c *course, g *Grade, regrade bool) error {
	g.GradedAt = now()
	levels, err := json.Marshal(g.Levels)
	if err != nil {
		return fmt.Errorf("encoding levels: %w", err)
	}
	_, err = tx.Exec(ctx, `
		UPDATE submissions SET status = 'graded', levels = $2, score = $3, max_score = $4, penalty_percent = $5,
		                       percent = $6, passed = $7, feedback = $8, graded_by = $9, graded_at = $10
		WHERE id = $1`,
		s.ID, levels, g.Score, g.MaxScore, g.PenaltyPercent, g.Percent, g.Passed, g.Feedback, g.GradedBy, g.GradedAt)
	if err != nil {
		return fmt.Errorf("saving the grade: %w", err)
	}
	s.Status, s.Grade = statusGraded, g
	err = sc.Publish(ctx, tx, EventSubmissionGraded, SubmissionGraded{
		SubmissionID: s.ID, AssignmentID: s.AssignmentID, CourseID: s.CourseID, UserID: s.UserID,
		Percent: g.Percent, Passed: g.Passed, Regrade: regrade,
	})
	if err != nil {
		return err
	}
	// Progress is measured against the published version: a course that
	// is no longer published has none to move.
	if c.Status == "published" {
		if _, err := refreshProgress(ctx, tx, sc, s.EnrolmentID); err != nil {
			return err
		}
	}
	return nil
}

const submissionColumns = `id, assignment_id, course_id, enrolment_id, user_id, body, assets, submitted_at, days_late, status,
	levels, score, max_score, penalty_percent, percent, passed, coalesce(feedback, ''), graded_by, graded_at`

// scanSubmission reads a row of submissionColumns.
func scanSubmission(row pgx.Row) (*Submission, error) {
	var s Submission
	var levels map[string]string
	var score, maxScore, penalty, percent *int
	var passed *bool
	var feedback string
	var gradedBy *string
	var gradedAt *time.Time
	err := row.Scan(&s.ID, &s.AssignmentID, &s.CourseID, &s.EnrolmentID, &s.UserID, &s.Body, &s.Assets, &s.SubmittedAt, &s.DaysLate, &s.Status,
		&levels, &score, &maxScore, &penalty, &percent, &passed, &feedback, &gradedBy, &gradedAt)
	if err != nil {
		return nil, err
	}
	if gradedAt != nil && levels != nil && score != nil && maxScore != nil && penalty != nil && percent != nil && passed != nil && gradedBy != nil {
		s.Grade = &Grade{
			Levels: levels, Score: *score, MaxScore: *maxScore, PenaltyPercent: *penalty, Percent: *percent,
			Passed: *passed, Feedback: feedback, GradedBy: *gradedBy, GradedAt: *gradedAt,
		}
		if *maxScore > 0 {
			s.Grade.RawPercent = *score * 100 / *maxScore
		}
	}
	return &s, nil
}

// loadSubmission reads a submission of the transaction's institution,
// locking it when lock is set.
func loadSubmission(ctx context.Context, tx pgx.Tx, submissionID string, lock bool) (*Submission, error) {
	sql := `SELECT ` + submissionColumns + ` FROM submissions WHERE id = $1`
	if lock {
		sql += " FOR UPDATE"
	}
	s, err := scanSubmission(tx.QueryRow(ctx, sql, submissionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no submission %s", submissionID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading submission %s: %w", submissionID, err)
	}
	return s, nil
}
