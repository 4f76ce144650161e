package courses

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Assignment is work learners submit and instructors grade with a rubric.
type Assignment struct {
	ID           string    `json:"id" format:"uuid"`
	CourseID     string    `json:"course_id" format:"uuid"`
	LessonID     string    `json:"lesson_id,omitempty" format:"uuid"`
	RubricID     string    `json:"rubric_id" format:"uuid"`
	Title        string    `json:"title"`
	Instructions string    `json:"instructions"`
	DueAt        time.Time `json:"due_at"`
	// LatePolicy none refuses a submission after DueAt; penalty accepts it
	// for LateCutoffDays, taking LatePenaltyPercent of the grade per
	// started day late.
	LatePolicy         string    `json:"late_policy" enum:"none,penalty"`
	LatePenaltyPercent int       `json:"late_penalty_percent"`
	LateCutoffDays     int       `json:"late_cutoff_days"`
	PassMark           *int      `json:"pass_mark" doc:"null: the course's, then the institution's default_pass_mark."`
	Required           bool      `json:"required"`
	CreatedBy          string    `json:"created_by" format:"uuid"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	Rubric             *Rubric   `json:"rubric,omitempty"`
}

// CreateAssignment is the body of POST /api/v1/courses/{course_id}/assignments.
type CreateAssignment struct {
	Title              string    `json:"title" minLength:"1" maxLength:"200"`
	Instructions       string    `json:"instructions,omitempty" maxLength:"50000"`
	DueAt              time.Time `json:"due_at"`
	RubricID           string    `json:"rubric_id" format:"uuid" doc:"A rubric of the same course."`
	LatePolicy         string    `json:"late_policy,omitempty" enum:"none,penalty" default:"none"`
	LatePenaltyPercent int       `json:"late_penalty_percent,omitempty" minimum:"0" maximum:"100" doc:"Taken off the grade per started day late (late_policy penalty)."`
	LateCutoffDays     int       `json:"late_cutoff_days,omitempty" minimum:"0" maximum:"365" doc:"Days after the due date that late work is still taken (late_policy penalty)."`
	PassMark           *int      `json:"pass_mark,omitempty" minimum:"0" maximum:"100"`
	Required           *bool     `json:"required,omitempty" default:"true"`
	LessonID           *string   `json:"lesson_id,omitempty" format:"uuid"`
}

// The late policies of an assignment.
const (
	latePolicyNone    = "none"
	latePolicyPenalty = "penalty"
)

func (p *Plugin) assignmentRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/assignments", Permission: PermCourseAuthor,
			Summary: "Add an assignment to a course's draft (learners get it at the next publish)", Status: http.StatusCreated,
			Request: CreateAssignment{}, Response: Assignment{},
			Handler: p.createAssignment,
		},
		{
			Method: "GET", Path: "/api/v1/assignments/{assignment_id}", Permission: PermCourseRead,
			Summary:  "An assignment and its rubric (learners: once a published version lists it)",
			Response: Assignment{},
			Handler:  p.getAssignment,
		},
	}
}

// check checks what the schema of CreateAssignment cannot say: a title
// that is not blank, and penalty settings only with the penalty policy.
func (in CreateAssignment) check() (Assignment, error) {
	var bad []sdk.FieldError
	a := Assignment{
		Title: trimmed(&bad, "title", in.Title, true), Instructions: trimmed(&bad, "instructions", in.Instructions, false),
		DueAt: in.DueAt.UTC().Truncate(time.Microsecond), RubricID: strings.ToLower(in.RubricID),
		LatePolicy: in.LatePolicy, LatePenaltyPercent: in.LatePenaltyPercent, LateCutoffDays: in.LateCutoffDays,
		PassMark: in.PassMark, Required: in.Required == nil || *in.Required,
	}
	if a.LatePolicy == "" {
		a.LatePolicy = latePolicyNone
	}
	if a.LatePolicy == latePolicyNone {
		if a.LatePenaltyPercent != 0 {
			bad = append(bad, sdk.FieldError{Field: "late_penalty_percent", Message: "applies only with late_policy penalty"})
		}
		if a.LateCutoffDays != 0 {
			bad = append(bad, sdk.FieldError{Field: "late_cutoff_days", Message: "applies only with late_policy penalty"})
		}
	}
	if in.LessonID != nil {
		a.LessonID = strings.ToLower(*in.LessonID)
	}
	if len(bad) > 0 {
		return Assignment{}, sdk.Invalid(bad...)
	}
	return a, nil
}

// createAssignment handles POST /api/v1/courses/{course_id}/assignments.
func (p *Plugin) createAssignment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in CreateAssignment
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	a, err := in.check()
	if err != nil {
		return nil, err
	}
	a.CourseID, a.CreatedBy = courseID, req.Principal.ID()
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := authorCourse(ctx, tx, req, courseID); err != nil {
			return err
		}
		if err := checkCourseLesson(ctx, tx, courseID, a.LessonID); err != nil {
			return err
		}
		r, err := loadRubric(ctx, tx, a.RubricID)
		if errors.Is(err, sdk.ErrNotFound) || (err == nil && r.CourseID != courseID) {
			return sdk.Invalid(sdk.FieldError{Field: "rubric_id", Message: "is not a rubric of this course"})
		}
		if err != nil {
			return err
		}
		a.Rubric = r
		err = tx.QueryRow(ctx, `
			INSERT INTO assignments (course_id, lesson_id, rubric_id, title, instructions, due_at, late_policy,
			                         late_penalty_percent, late_cutoff_days, pass_mark, required, created_by)
			VALUES ($1, NULLIF($2, '')::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			RETURNING id, created_at, updated_at`,
			courseID, a.LessonID, a.RubricID, a.Title, a.Instructions, a.DueAt, a.LatePolicy,
			a.LatePenaltyPercent, a.LateCutoffDays, a.PassMark, a.Required, a.CreatedBy,
		).Scan(&a.ID, &a.CreatedAt, &a.UpdatedAt)
		if err != nil {
			return fmt.Errorf("inserting assignment: %w", err)
		}
		_, err = touchDraft(ctx, tx, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, a)
}

// getAssignment handles GET /api/v1/assignments/{assignment_id}: whoever
// may change or grade the course sees any of its assignments; others one
// that the latest published version lists.
func (p *Plugin) getAssignment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	assignmentID, err := req.UUIDParam("assignment_id")
	if err != nil {
		return nil, err
	}
	var a *Assignment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if a, err = loadAssignment(ctx, tx, assignmentID, false); err != nil {
			return err
		}
		staff, err := courseStaff(ctx, tx, a.CourseID, req.Principal)
		if err != nil {
			return err
		}
		if !staff {
			if _, _, err := publishedAssignment(ctx, tx, assignmentID); err != nil {
				return err
			}
		}
		a.Rubric, err = loadRubric(ctx, tx, a.RubricID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, a)
}

// loadAssignment reads an assignment of the transaction's institution,
// locking it when lock is set.
func loadAssignment(ctx context.Context, tx pgx.Tx, assignmentID string, lock bool) (*Assignment, error) {
	sql := `SELECT id, course_id, coalesce(lesson_id::text, ''), rubric_id, title, instructions, due_at, late_policy,
	               late_penalty_percent, late_cutoff_days, pass_mark, required, created_by, created_at, updated_at
	        FROM assignments WHERE id = $1`
	if lock {
		sql += " FOR UPDATE"
	}
	var a Assignment
	err := tx.QueryRow(ctx, sql, assignmentID).Scan(&a.ID, &a.CourseID, &a.LessonID, &a.RubricID, &a.Title, &a.Instructions,
		&a.DueAt, &a.LatePolicy, &a.LatePenaltyPercent, &a.LateCutoffDays, &a.PassMark, &a.Required, &a.CreatedBy, &a.CreatedAt, &a.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no assignment %s", assignmentID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading assignment %s: %w", assignmentID, err)
	}
	a.DueAt = a.DueAt.UTC()
	return &a, nil
}

// publishedAssignment loads an assignment that the latest published
// version of its course lists, and its course: what learners may submit to.
func publishedAssignment(ctx context.Context, tx pgx.Tx, assignmentID string) (*Assignment, *course, error) {
	a, err := loadAssignment(ctx, tx, assignmentID, false)
	if err != nil {
		return nil, nil, err
	}
	c, err := loadCourse(ctx, tx, a.CourseID, false)
	if err != nil {
		return nil, nil, err
	}
	if c.Status != "published" {
		return nil, nil, sdk.Errorf(sdk.ErrNotFound, "no assignment %s", assignmentID)
	}
	content, err := publishedContent(ctx, tx, c.ID)
	if err != nil {
		return nil, nil, err
	}
	if !refListed(content.Assignments, assignmentID) {
		return nil, nil, sdk.Errorf(sdk.ErrNotFound, "no assignment %s", assignmentID)
	}
	return a, c, nil
}

// The helpers below are shared by quizzes.go, assignments.go,
// submissions.go and appeals.go.

// lockLearnerEnrolment finds the learner's live enrolment in a course and
// locks it for the rest of the transaction: quiz attempts, submissions and
// grades of one enrolment happen one at a time, so limits and progress
// are counted right. No enrolment is a 404 not_enrolled, a waitlisted one
// a 409 enrolment_waitlisted.
func lockLearnerEnrolment(ctx context.Context, tx pgx.Tx, courseID, userID string) (string, error) {
	var id, status string
	err := tx.QueryRow(ctx, `
		SELECT id, status FROM enrolments WHERE course_id = $1 AND user_id = $2 AND status <> 'withdrawn'
		FOR UPDATE`, courseID, userID).Scan(&id, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", sdk.Errorf(sdk.ErrNotFound, "you are not enrolled in course %s", courseID).WithCode("not_enrolled")
	}
	if err != nil {
		return "", fmt.Errorf("reading the enrolment: %w", err)
	}
	if status == "waitlisted" {
		return "", sdk.Errorf(sdk.ErrConflict, "your enrolment in course %s is on the waitlist: you can take part once you have a seat", courseID).WithCode("enrolment_waitlisted")
	}
	return id, nil
}

// lockEnrolment locks an enrolment row before its progress is refreshed.
func lockEnrolment(ctx context.Context, tx pgx.Tx, enrolmentID string) error {
	_, err := tx.Exec(ctx, `SELECT 1 FROM enrolments WHERE id = $1 FOR UPDATE`, enrolmentID)
	if err != nil {
		return fmt.Errorf("locking enrolment %s: %w", enrolmentID, err)
	}
	return nil
}

// effectivePassMark is the pass mark in force: the assessment's own, else
// the course's, else the institution's default_pass_mark.
func effectivePassMark(own *int, c *course, cfg Config) int {
	switch {
	case own != nil:
		return *own
	case c.PassMark != nil:
		return *c.PassMark
	}
	return cfg.DefaultPassMark
}

// checkCourseLesson checks that lessonID ("" for none) is a lesson of the
// course's draft.
func checkCourseLesson(ctx context.Context, tx pgx.Tx, courseID, lessonID string) error {
	if lessonID == "" {
		return nil
	}
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM lessons WHERE id = $1 AND course_id = $2)`, lessonID, courseID).Scan(&ok)
	if err != nil {
		return fmt.Errorf("looking for lesson %s: %w", lessonID, err)
	}
	if !ok {
		return sdk.Invalid(sdk.FieldError{Field: "lesson_id", Message: "is not a lesson of this course"})
	}
	return nil
}

// refListed reports whether a version's quizzes or assignments include id.
func refListed(refs []AssessmentRef, id string) bool {
	for _, r := range refs {
		if r.ID == id {
			return true
		}
	}
	return false
}
