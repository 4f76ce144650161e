package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk"
)

// Submission is a learner's work for an assignment and, once graded, its
// grade. Status: submitted (waiting for a grader), graded, appealed (a
// grade appeal is open; the grade stands until it is resolved).
type Submission struct {
	ID           string    `json:"id"`
	AssignmentID string    `json:"assignment_id"`
	CourseID     string    `json:"course_id"`
	EnrolmentID  string    `json:"enrolment_id"`
	UserID       string    `json:"user_id"`
	Body         string    `json:"body"`
	Assets       []Asset   `json:"assets"`
	SubmittedAt  time.Time `json:"submitted_at"`
	DaysLate     int       `json:"days_late"` // started days after the due date
	Status       string    `json:"status"`
	// The grade's fields, once graded, sit beside the submission's own
	// (levels, score, percent, passed...).
	*Grade
}

// Grade is a rubric grade: one level per criterion, the points, the late
// penalty and the final percentage.
type Grade struct {
	Levels         map[string]string `json:"levels"` // criterion ID: level ID
	Score          int               `json:"score"`
	MaxScore       int               `json:"max_score"`
	RawPercent     int               `json:"raw_percent"`     // score as a percentage of max_score
	PenaltyPercent int               `json:"penalty_percent"` // late penalty, taken off raw_percent
	Percent        int               `json:"percent"`
	Passed         bool              `json:"passed"`
	Feedback       string            `json:"feedback"`
	GradedBy       string            `json:"graded_by"`
	GradedAt       time.Time         `json:"graded_at"`
}

// Appeal is a learner's appeal of a grade. A reviewer who did not give the
// grade resolves it: upheld regrades the submission, rejected keeps the
// original grade.
type Appeal struct {
	ID           string     `json:"id"`
	SubmissionID string     `json:"submission_id"`
	CourseID     string     `json:"course_id"`
	UserID       string     `json:"user_id"`
	Reason       string     `json:"reason"`
	Status       string     `json:"status"` // open, upheld, rejected
	Original     Grade      `json:"original"`
	Resolution   string     `json:"resolution,omitempty"`
	ReviewedBy   string     `json:"reviewed_by,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
	// Submission is the submission after a resolution, in the answer to
	// POST .../resolve.
	Submission *Submission `json:"submission,omitempty"`
}

// Submission statuses.
const (
	statusSubmitted = "submitted"
	statusGraded    = "graded"
	statusAppealed  = "appealed"
)

const (
	maxSubmissionBody = 100000
	maxFeedback       = 20000
	maxAppealText     = 5000
)

func (p *Plugin) submissionRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/assignments/{assignment_id}/submissions", Permission: PermEnrolSelf,
			Summary: "Submit work for an assignment of a course one is enrolled in (once)", Status: http.StatusCreated,
			Request: submissionCreateSchema, Response: submissionSchema,
			Handler: sdk.HandlerFunc(p.submit),
		},
		{
			Method: "GET", Path: "/api/v1/submissions", Permission: PermCourseRead,
			Summary: "Submissions, oldest first: one's own (scope=own), or the grading backlog of the courses one grades (scope=grading, the default for graders)",
			Query:   []string{"scope", "status", "course_id", "assignment_id", "limit", "cursor"}, Response: submissionPageSchema,
			Handler: sdk.HandlerFunc(p.listSubmissions),
		},
		{
			Method: "GET", Path: "/api/v1/submissions/{submission_id}", Permission: PermCourseRead,
			Summary:  "A submission: its learner's, or for a grader of its course",
			Response: submissionSchema,
			Handler:  sdk.HandlerFunc(p.getSubmission),
		},
		{
			Method: "POST", Path: "/api/v1/submissions/{submission_id}/grade", Permission: PermGrade,
			Summary: "Grade a submission with its assignment's rubric (once; regrades go through appeals)",
			Request: gradeRequestSchema, Response: submissionSchema,
			Handler: sdk.HandlerFunc(p.grade),
		},
		{
			Method: "POST", Path: "/api/v1/submissions/{submission_id}/appeals", Permission: PermEnrolSelf,
			Summary: "Appeal the grade of one's own submission", Status: http.StatusCreated,
			Request: appealCreateSchema, Response: appealSchema,
			Handler: sdk.HandlerFunc(p.appeal),
		},
		{
			Method: "GET", Path: "/api/v1/appeals", Permission: PermAppealReview,
			Summary: "Appeals of the courses one grades (all with manage_all), oldest first; open ones unless status says otherwise",
			Query:   []string{"status", "course_id", "limit", "cursor"}, Response: appealPageSchema,
			Handler: sdk.HandlerFunc(p.listAppeals),
		},
		{
			Method: "GET", Path: "/api/v1/appeals/{appeal_id}", Permission: PermCourseRead,
			Summary:  "An appeal: for the learner who made it, or a reviewer of its course",
			Response: appealSchema,
			Handler:  sdk.HandlerFunc(p.getAppeal),
		},
		{
			Method: "POST", Path: "/api/v1/appeals/{appeal_id}/resolve", Permission: PermAppealReview,
			Summary: "Resolve an appeal (a reviewer other than the grader): upheld regrades, rejected keeps the grade",
			Request: resolveRequestSchema, Response: appealSchema,
			Handler: sdk.HandlerFunc(p.resolveAppeal),
		},
	}
}

type submissionInput struct {
	Body   string  `json:"body"`
	Assets []Asset `json:"assets"`
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
	var in submissionInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	s := Submission{AssignmentID: assignmentID, UserID: userID, Status: statusSubmitted}
	s.Body = text(&bad, "body", in.Body, 0, maxSubmissionBody)
	s.Assets = checkAssets(&bad, "assets", in.Assets)
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
	scope := req.Query.Get("scope")
	if scope == "" {
		scope = "own"
		if grader {
			scope = "grading"
		}
	}
	var bad []sdk.FieldError
	switch scope {
	case "own", "grading":
	default:
		bad = append(bad, sdk.FieldError{Field: "scope", Message: "must be own or grading"})
	}
	status := req.Query.Get("status")
	if status != "" && !slices.Contains([]string{statusSubmitted, statusGraded, statusAppealed}, status) {
		bad = append(bad, sdk.FieldError{Field: "status", Message: "must be submitted, graded or appealed"})
	}
	courseID, err := req.QueryUUID("course_id")
	if err != nil {
		return nil, err
	}
	assignmentID, err := req.QueryUUID("assignment_id")
	if err != nil {
		return nil, err
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, afterID, err := assessmentCursor(page.After)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
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
		teacher = &pr.UserID // an API key teaches nothing: its UserID is "", matched below as NULL
		if pr.Kind != "user" {
			teacher = nil
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
			  AND ($7::timestamptz IS NULL OR (submitted_at, id) > ($7, $8::uuid))
			ORDER BY submitted_at, id LIMIT $9`,
			orNull(status), orNull(courseID), orNull(assignmentID), owner, all, teacher, at, afterID, page.Limit+1)
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
		out = sdk.NewPage(items, page.Limit, func(s Submission) []string {
			return []string{s.SubmittedAt.Format(time.RFC3339Nano), s.ID}
		})
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
		if req.Principal.Kind == "user" && s.UserID == req.Principal.UserID {
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

type gradeInput struct {
	Levels   map[string]string `json:"levels"`
	Feedback *string           `json:"feedback"`
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
	var in gradeInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	var feedback string
	if in.Feedback != nil {
		feedback = text(&bad, "feedback", *in.Feedback, 0, maxFeedback)
	}
	if in.Levels == nil {
		bad = append(bad, sdk.FieldError{Field: "levels", Message: "is required: an object of criterion id to level id"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	cfg, err := p.config(req)
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
		g.Feedback, g.GradedBy = feedback, req.Principal.ID()
		return saveGrade(ctx, tx, req.Publish, s, c, g, false)
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
func saveGrade(ctx context.Context, tx pgx.Tx, publish publishFunc, s *Submission, c *course, g *Grade, regrade bool) error {
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
	err = publish(ctx, tx, EventSubmissionGraded, SubmissionGraded{
		SubmissionID: s.ID, AssignmentID: s.AssignmentID, CourseID: s.CourseID, UserID: s.UserID,
		Percent: g.Percent, Passed: g.Passed, Regrade: regrade,
	})
	if err != nil {
		return err
	}
	// Progress is measured against the published version: a course that
	// is no longer published has none to move.
	if c.Status == "published" {
		if _, err := refreshProgress(ctx, tx, publish, s.EnrolmentID); err != nil {
			return err
		}
	}
	return nil
}

type appealInput struct {
	Reason string `json:"reason"`
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
	var in appealInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	ap := Appeal{SubmissionID: submissionID, UserID: userID, Status: "open", Reason: text(&bad, "reason", in.Reason, 1, maxAppealText)}
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
	status := req.Query.Get("status")
	if status == "" {
		status = "open"
	}
	if !slices.Contains([]string{"open", "upheld", "rejected"}, status) {
		return nil, sdk.Invalid(sdk.FieldError{Field: "status", Message: "must be open, upheld or rejected"})
	}
	courseID, err := req.QueryUUID("course_id")
	if err != nil {
		return nil, err
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, afterID, err := assessmentCursor(page.After)
	if err != nil {
		return nil, err
	}
	all := pr.Can(PermManageAll)
	if !all && (!pr.Can(PermGrade) || pr.Kind != "user") {
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
			  AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
			ORDER BY created_at, id LIMIT $6`,
			status, orNull(courseID), teacher, at, afterID, page.Limit+1)
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
		out = sdk.NewPage(items, page.Limit, func(a Appeal) []string {
			return []string{a.CreatedAt.Format(time.RFC3339Nano), a.ID}
		})
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
		if req.Principal.Kind == "user" && ap.UserID == req.Principal.UserID {
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

type resolveInput struct {
	Outcome    string            `json:"outcome"`
	Resolution string            `json:"resolution"`
	Levels     map[string]string `json:"levels"`
	Feedback   *string           `json:"feedback"`
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
	var in resolveInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	resolution := text(&bad, "resolution", in.Resolution, 1, maxAppealText)
	var feedback *string
	if in.Feedback != nil {
		f := text(&bad, "feedback", *in.Feedback, 0, maxFeedback)
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
	default:
		bad = append(bad, sdk.FieldError{Field: "outcome", Message: "must be upheld or rejected"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	cfg, err := p.config(req)
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
			if err := saveGrade(ctx, tx, req.Publish, s, c, g, true); err != nil {
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
	if s.Assets == nil {
		s.Assets = []Asset{}
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

// orNull is nil for "" (an absent filter), else a pointer to s.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// OpenAPI schemas of the submission and appeal routes.
var (
	assetSchema = `{"type": "object", "required": ["url", "type", "size_bytes"], "properties": {
		"url": {"type": "string", "format": "uri", "maxLength": 2000},
		"type": {"type": "string", "maxLength": 100, "description": "MIME type"},
		"size_bytes": {"type": "integer", "minimum": 0},
		"title": {"type": "string", "maxLength": 200}}}`
	gradeProperties = `
		"levels": {"type": "object", "additionalProperties": {"type": "string", "format": "uuid"}, "description": "Criterion ID: level ID"},
		"score": {"type": "integer"},
		"max_score": {"type": "integer"},
		"raw_percent": {"type": "integer", "minimum": 0, "maximum": 100},
		"penalty_percent": {"type": "integer", "minimum": 0, "maximum": 100},
		"percent": {"type": "integer", "minimum": 0, "maximum": 100},
		"passed": {"type": "boolean"},
		"feedback": {"type": "string"},
		"graded_by": {"type": "string", "format": "uuid"},
		"graded_at": {"type": "string", "format": "date-time"}`
	gradeObjectSchema = `{"type": "object", "required": ["levels", "score", "max_score", "raw_percent", "penalty_percent", "percent", "passed", "feedback", "graded_by", "graded_at"], "properties": {` +
		gradeProperties + `}}`
	submissionObjectSchema = `{"type": "object", "required": ["id", "assignment_id", "course_id", "enrolment_id", "user_id", "body", "assets", "submitted_at", "days_late", "status"], "properties": {
		"id": {"type": "string", "format": "uuid"},
		"assignment_id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"enrolment_id": {"type": "string", "format": "uuid"},
		"user_id": {"type": "string", "format": "uuid"},
		"body": {"type": "string"},
		"assets": {"type": "array", "items": ` + assetSchema + `},
		"submitted_at": {"type": "string", "format": "date-time"},
		"days_late": {"type": "integer", "minimum": 0},
		"status": {"enum": ["submitted", "graded", "appealed"]},` + gradeProperties + `}, "description": "The grade's fields are there once the submission is graded"}`
	submissionCreateSchema = json.RawMessage(`{"type": "object", "additionalProperties": false, "description": "A body, assets or both", "properties": {
		"body": {"type": "string", "maxLength": 100000},
		"assets": {"type": "array", "maxItems": 50, "items": ` + assetSchema + `}}}`)
	submissionSchema     = json.RawMessage(submissionObjectSchema)
	submissionPageSchema = json.RawMessage(`{"type": "object", "required": ["items"], "properties": {
		"items": {"type": "array", "items": ` + submissionObjectSchema + `},
		"next_cursor": {"type": "string"}}}`)
	gradeRequestSchema = json.RawMessage(`{"type": "object", "required": ["levels"], "additionalProperties": false, "properties": {
		"levels": {"type": "object", "additionalProperties": {"type": "string", "format": "uuid"}, "description": "One level ID for every criterion ID of the rubric"},
		"feedback": {"type": "string", "maxLength": 20000}}}`)
	appealCreateSchema = json.RawMessage(`{"type": "object", "required": ["reason"], "additionalProperties": false, "properties": {
		"reason": {"type": "string", "minLength": 1, "maxLength": 5000}}}`)
	appealObjectSchema = `{"type": "object", "required": ["id", "submission_id", "course_id", "user_id", "reason", "status", "original", "created_at"], "properties": {
		"id": {"type": "string", "format": "uuid"},
		"submission_id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"user_id": {"type": "string", "format": "uuid"},
		"reason": {"type": "string"},
		"status": {"enum": ["open", "upheld", "rejected"]},
		"original": ` + gradeObjectSchema + `,
		"resolution": {"type": "string"},
		"reviewed_by": {"type": "string", "format": "uuid"},
		"created_at": {"type": "string", "format": "date-time"},
		"resolved_at": {"type": "string", "format": "date-time"},
		"submission": ` + submissionObjectSchema + `}}`
	appealSchema     = json.RawMessage(appealObjectSchema)
	appealPageSchema = json.RawMessage(`{"type": "object", "required": ["items"], "properties": {
		"items": {"type": "array", "items": ` + appealObjectSchema + `},
		"next_cursor": {"type": "string"}}}`)
	resolveRequestSchema = json.RawMessage(`{"type": "object", "required": ["outcome", "resolution"], "additionalProperties": false, "properties": {
		"outcome": {"enum": ["upheld", "rejected"]},
		"resolution": {"type": "string", "minLength": 1, "maxLength": 5000},
		"levels": {"type": "object", "additionalProperties": {"type": "string", "format": "uuid"}, "description": "Required when upheld: the new grade, one level per criterion"},
		"feedback": {"type": "string", "maxLength": 20000, "description": "When upheld: replaces the grade's feedback"}}}`)
)
