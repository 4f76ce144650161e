package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Rubric is a grading scheme: criteria, each with levels worth points. A
// submission's grade picks one level per criterion. Rubrics do not change
// once created, so a grade always means what it meant when it was given.
type Rubric struct {
	ID        string      `json:"id"`
	CourseID  string      `json:"course_id"`
	Title     string      `json:"title"`
	Criteria  []Criterion `json:"criteria"`
	MaxScore  int         `json:"max_score"` // the sum of each criterion's best level
	CreatedBy string      `json:"created_by"`
	CreatedAt time.Time   `json:"created_at"`
}

// Criterion is one thing a rubric grades. The server gives it its ID.
type Criterion struct {
	ID          string  `json:"id"`
	Title       string  `json:"title"`
	Description string  `json:"description,omitempty"`
	Levels      []Level `json:"levels"`
}

// Level is one level of a criterion. The server gives it its ID.
type Level struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Points      int    `json:"points"`
}

// Assignment is work learners submit and instructors grade with a rubric.
type Assignment struct {
	ID           string    `json:"id"`
	CourseID     string    `json:"course_id"`
	LessonID     string    `json:"lesson_id,omitempty"`
	RubricID     string    `json:"rubric_id"`
	Title        string    `json:"title"`
	Instructions string    `json:"instructions"`
	DueAt        time.Time `json:"due_at"`
	// LatePolicy none refuses a submission after DueAt; penalty accepts it
	// for LateCutoffDays, taking LatePenaltyPercent of the grade per
	// started day late.
	LatePolicy         string    `json:"late_policy"`
	LatePenaltyPercent int       `json:"late_penalty_percent"`
	LateCutoffDays     int       `json:"late_cutoff_days"`
	PassMark           *int      `json:"pass_mark"` // nil: the course's, then the institution's
	Required           bool      `json:"required"`
	CreatedBy          string    `json:"created_by"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	Rubric             *Rubric   `json:"rubric,omitempty"`
}

// Limits of rubrics and assignments.
const (
	minCriteria, maxCriteria = 1, 20
	minLevels, maxLevels     = 2, 10
	maxLevelPoints           = 1000
	maxInstructions          = 50000
	maxLateCutoffDays        = 365
	latePolicyNone           = "none"
	latePolicyPenalty        = "penalty"
)

func (p *Plugin) assignmentRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/rubrics", Permission: PermCourseAuthor,
			Summary: "Create a rubric for a course's assignments", Status: http.StatusCreated,
			Request: rubricCreateSchema, Response: rubricSchema,
			Handler: sdk.HandlerFunc(p.createRubric),
		},
		{
			Method: "GET", Path: "/api/v1/rubrics/{rubric_id}", Permission: PermCourseRead,
			Summary:  "A rubric, for the course's instructors and the learners enrolled in it",
			Response: rubricSchema,
			Handler:  sdk.HandlerFunc(p.getRubric),
		},
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/assignments", Permission: PermCourseAuthor,
			Summary: "Add an assignment to a course's draft (learners get it at the next publish)", Status: http.StatusCreated,
			Request: assignmentCreateSchema, Response: assignmentSchema,
			Handler: sdk.HandlerFunc(p.createAssignment),
		},
		{
			Method: "GET", Path: "/api/v1/assignments/{assignment_id}", Permission: PermCourseRead,
			Summary:  "An assignment and its rubric (learners: once a published version lists it)",
			Response: assignmentSchema,
			Handler:  sdk.HandlerFunc(p.getAssignment),
		},
	}
}

type levelInput struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Points      *int   `json:"points"`
}

type criterionInput struct {
	Title       string       `json:"title"`
	Description string       `json:"description"`
	Levels      []levelInput `json:"levels"`
}

type rubricInput struct {
	Title    string           `json:"title"`
	Criteria []criterionInput `json:"criteria"`
}

// checkRubric validates a rubric and gives its criteria and levels IDs.
func checkRubric(in rubricInput) (Rubric, error) {
	var bad []sdk.FieldError
	r := Rubric{Title: text(&bad, "title", in.Title, 1, 200)}
	if len(in.Criteria) < minCriteria || len(in.Criteria) > maxCriteria {
		bad = append(bad, sdk.FieldError{Field: "criteria", Message: fmt.Sprintf("must have %d to %d criteria", minCriteria, maxCriteria)})
	}
	for i, ci := range in.Criteria {
		f := fmt.Sprintf("criteria[%d]", i)
		c := Criterion{ID: uuid.NewString(), Title: text(&bad, f+".title", ci.Title, 1, 200), Description: text(&bad, f+".description", ci.Description, 0, 2000)}
		if len(ci.Levels) < minLevels || len(ci.Levels) > maxLevels {
			bad = append(bad, sdk.FieldError{Field: f + ".levels", Message: fmt.Sprintf("must have %d to %d levels", minLevels, maxLevels)})
		}
		for k, li := range ci.Levels {
			lf := fmt.Sprintf("%s.levels[%d]", f, k)
			l := Level{ID: uuid.NewString(), Title: text(&bad, lf+".title", li.Title, 1, 200), Description: text(&bad, lf+".description", li.Description, 0, 2000)}
			switch {
			case li.Points == nil:
				bad = append(bad, sdk.FieldError{Field: lf + ".points", Message: "is required"})
			case *li.Points < 0 || *li.Points > maxLevelPoints:
				bad = append(bad, sdk.FieldError{Field: lf + ".points", Message: fmt.Sprintf("must be between 0 and %d", maxLevelPoints)})
			default:
				l.Points = *li.Points
			}
			c.Levels = append(c.Levels, l)
		}
		r.Criteria = append(r.Criteria, c)
	}
	if len(bad) > 0 {
		return Rubric{}, sdk.Invalid(bad...)
	}
	if r.MaxScore = rubricMax(r.Criteria); r.MaxScore == 0 {
		// A grade is a percentage of the maximum.
		return Rubric{}, sdk.Invalid(sdk.FieldError{Field: "criteria", Message: "at least one level must be worth points"})
	}
	return r, nil
}

// rubricMax is the best score a rubric gives: each criterion's best level.
func rubricMax(criteria []Criterion) int {
	total := 0
	for _, c := range criteria {
		best := 0
		for _, l := range c.Levels {
			best = max(best, l.Points)
		}
		total += best
	}
	return total
}

// createRubric handles POST /api/v1/courses/{course_id}/rubrics.
func (p *Plugin) createRubric(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in rubricInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	r, err := checkRubric(in)
	if err != nil {
		return nil, err
	}
	r.CourseID, r.CreatedBy = courseID, req.Principal.ID()
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := authorCourse(ctx, tx, req, courseID); err != nil {
			return err
		}
		criteria, err := json.Marshal(r.Criteria)
		if err != nil {
			return fmt.Errorf("encoding criteria: %w", err)
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO rubrics (course_id, title, criteria, created_by) VALUES ($1, $2, $3, $4)
			RETURNING id, created_at`, courseID, r.Title, criteria, r.CreatedBy).Scan(&r.ID, &r.CreatedAt)
		if err != nil {
			return fmt.Errorf("inserting rubric: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, r)
}

// getRubric handles GET /api/v1/rubrics/{rubric_id}. Learners see how they
// will be graded: those enrolled in the course may read its rubrics, as
// may whoever may change or grade the course, and anyone who may read a
// published assignment graded with it.
func (p *Plugin) getRubric(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	rubricID, err := req.UUIDParam("rubric_id")
	if err != nil {
		return nil, err
	}
	var r *Rubric
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if r, err = loadRubric(ctx, tx, rubricID); err != nil {
			return err
		}
		staff, err := courseStaff(ctx, tx, r.CourseID, req.Principal)
		if err != nil || staff {
			return err
		}
		enrolled, err := enrolledIn(ctx, tx, r.CourseID, req.Principal)
		if err != nil || enrolled {
			return err
		}
		// Whoever may read a published assignment may read how it is graded.
		published, err := rubricPublished(ctx, tx, r)
		if err != nil || published {
			return err
		}
		return sdk.Errorf(sdk.ErrNotFound, "no rubric %s", rubricID)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, r)
}

type assignmentInput struct {
	Title              string  `json:"title"`
	Instructions       string  `json:"instructions"`
	DueAt              string  `json:"due_at"`
	RubricID           string  `json:"rubric_id"`
	LatePolicy         string  `json:"late_policy"`
	LatePenaltyPercent int     `json:"late_penalty_percent"`
	LateCutoffDays     int     `json:"late_cutoff_days"`
	PassMark           *int    `json:"pass_mark"`
	Required           *bool   `json:"required"`
	LessonID           *string `json:"lesson_id"`
}

// check validates the fields that need no database.
func (in assignmentInput) check() (Assignment, error) {
	var bad []sdk.FieldError
	a := Assignment{
		Title: text(&bad, "title", in.Title, 1, 200), Instructions: text(&bad, "instructions", in.Instructions, 0, maxInstructions),
		LatePolicy: in.LatePolicy, LatePenaltyPercent: in.LatePenaltyPercent, LateCutoffDays: in.LateCutoffDays,
		PassMark: in.PassMark, Required: true,
	}
	due, err := time.Parse(time.RFC3339, strings.TrimSpace(in.DueAt))
	if err != nil {
		bad = append(bad, sdk.FieldError{Field: "due_at", Message: "must be a date and time in RFC 3339 form, such as 2030-01-31T17:00:00Z"})
	}
	a.DueAt = due.UTC().Truncate(time.Microsecond)
	if in.RubricID == "" {
		bad = append(bad, sdk.FieldError{Field: "rubric_id", Message: "is required"})
	} else {
		a.RubricID = bodyUUID(&bad, "rubric_id", in.RubricID)
	}
	if a.LatePolicy == "" {
		a.LatePolicy = latePolicyNone
	}
	switch a.LatePolicy {
	case latePolicyNone:
		if a.LatePenaltyPercent != 0 {
			bad = append(bad, sdk.FieldError{Field: "late_penalty_percent", Message: "applies only with late_policy penalty"})
		}
		if a.LateCutoffDays != 0 {
			bad = append(bad, sdk.FieldError{Field: "late_cutoff_days", Message: "applies only with late_policy penalty"})
		}
	case latePolicyPenalty:
		if a.LatePenaltyPercent < 0 || a.LatePenaltyPercent > 100 {
			bad = append(bad, sdk.FieldError{Field: "late_penalty_percent", Message: "must be between 0 and 100"})
		}
		if a.LateCutoffDays < 0 || a.LateCutoffDays > maxLateCutoffDays {
			bad = append(bad, sdk.FieldError{Field: "late_cutoff_days", Message: fmt.Sprintf("must be between 0 and %d", maxLateCutoffDays)})
		}
	default:
		bad = append(bad, sdk.FieldError{Field: "late_policy", Message: "must be none or penalty"})
	}
	if a.PassMark != nil && (*a.PassMark < 0 || *a.PassMark > 100) {
		bad = append(bad, sdk.FieldError{Field: "pass_mark", Message: "must be between 0 and 100"})
	}
	if in.Required != nil {
		a.Required = *in.Required
	}
	if in.LessonID != nil {
		a.LessonID = bodyUUID(&bad, "lesson_id", *in.LessonID)
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
	var in assignmentInput
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
		return assessmentDraftChanged(ctx, tx, courseID)
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

// rubricPublished reports whether an assignment of the course's latest
// published version is graded with the rubric.
func rubricPublished(ctx context.Context, tx pgx.Tx, r *Rubric) (bool, error) {
	c, err := loadCourse(ctx, tx, r.CourseID, false)
	if err != nil || c.Status != "published" {
		return false, err
	}
	content, err := publishedContent(ctx, tx, c.ID)
	if err != nil {
		return false, err
	}
	rows, err := tx.Query(ctx, `SELECT id::text FROM assignments WHERE rubric_id = $1`, r.ID)
	if err != nil {
		return false, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("reading the assignments of rubric %s: %w", r.ID, err)
	}
	for _, id := range ids {
		if refListed(content.Assignments, id) {
			return true, nil
		}
	}
	return false, nil
}

// loadRubric reads a rubric of the transaction's institution.
func loadRubric(ctx context.Context, tx pgx.Tx, rubricID string) (*Rubric, error) {
	var r Rubric
	err := tx.QueryRow(ctx, `SELECT id, course_id, title, criteria, created_by, created_at FROM rubrics WHERE id = $1`, rubricID).
		Scan(&r.ID, &r.CourseID, &r.Title, &r.Criteria, &r.CreatedBy, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no rubric %s", rubricID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading rubric %s: %w", rubricID, err)
	}
	r.MaxScore = rubricMax(r.Criteria)
	return &r, nil
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

// The helpers below are shared by quizzes.go, assignments.go and
// submissions.go.

// courseStaff reports whether the principal may change or grade the course.
func courseStaff(ctx context.Context, tx pgx.Tx, courseID string, p sdk.Principal) (bool, error) {
	ok, err := canAuthor(ctx, tx, courseID, p)
	if err != nil || ok {
		return ok, err
	}
	return canGrade(ctx, tx, courseID, p)
}

// enrolledIn reports whether the principal has an enrolment in the course
// that is not withdrawn (waitlisted included).
func enrolledIn(ctx context.Context, tx pgx.Tx, courseID string, p sdk.Principal) (bool, error) {
	if p.Kind != "user" {
		return false, nil
	}
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM enrolments WHERE course_id = $1 AND user_id = $2 AND status <> 'withdrawn')`,
		courseID, p.UserID).Scan(&ok)
	return ok, err
}

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

// learnerUserID is the user ID of a principal acting as a learner: API
// keys do not learn.
func learnerUserID(p sdk.Principal, what string) (string, error) {
	if p.Kind != "user" || p.UserID == "" {
		return "", sdk.Errorf(sdk.ErrForbidden, "only members %s; an API key cannot", what)
	}
	return p.UserID, nil
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

// assessmentDraftChanged marks the course's draft as changed: quizzes and
// assignments are part of it and reach learners at the next publish.
func assessmentDraftChanged(ctx context.Context, tx pgx.Tx, courseID string) error {
	_, err := tx.Exec(ctx, `UPDATE courses SET draft_revision = draft_revision + 1, updated_at = now() WHERE id = $1`, courseID)
	if err != nil {
		return fmt.Errorf("bumping the draft revision of course %s: %w", courseID, err)
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

// bodyUUID checks a UUID in a request body and returns it in lowercase.
func bodyUUID(bad *[]sdk.FieldError, field, v string) string {
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "must be a UUID"})
		return ""
	}
	return id.String()
}

// assessmentCursor reads a (time, id) cursor handed out by the lists of
// this area; nils on the first page.
func assessmentCursor(after []string) (*time.Time, *string, error) {
	if after == nil {
		return nil, nil, nil
	}
	bad := sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor returned by this list"})
	if len(after) != 2 {
		return nil, nil, bad
	}
	at, err := time.Parse(time.RFC3339Nano, after[0])
	if err != nil {
		return nil, nil, bad
	}
	id, err := uuid.Parse(after[1])
	if err != nil {
		return nil, nil, bad
	}
	s := id.String()
	return &at, &s, nil
}

// OpenAPI schemas of the rubric and assignment routes.
var (
	rubricCreateSchema = json.RawMessage(`{"type": "object", "required": ["title", "criteria"], "additionalProperties": false, "properties": {
		"title": {"type": "string", "minLength": 1, "maxLength": 200},
		"criteria": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "object", "required": ["title", "levels"], "additionalProperties": false, "properties": {
			"title": {"type": "string", "minLength": 1, "maxLength": 200},
			"description": {"type": "string", "maxLength": 2000},
			"levels": {"type": "array", "minItems": 2, "maxItems": 10, "items": {"type": "object", "required": ["title", "points"], "additionalProperties": false, "properties": {
				"title": {"type": "string", "minLength": 1, "maxLength": 200},
				"description": {"type": "string", "maxLength": 2000},
				"points": {"type": "integer", "minimum": 0, "maximum": 1000}}}}}}}}}`)
	rubricObjectSchema = `{"type": "object", "required": ["id", "course_id", "title", "criteria", "max_score", "created_by", "created_at"], "properties": {
		"id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"title": {"type": "string"},
		"criteria": {"type": "array", "items": {"type": "object", "required": ["id", "title", "levels"], "properties": {
			"id": {"type": "string", "format": "uuid"},
			"title": {"type": "string"},
			"description": {"type": "string"},
			"levels": {"type": "array", "items": {"type": "object", "required": ["id", "title", "points"], "properties": {
				"id": {"type": "string", "format": "uuid"},
				"title": {"type": "string"},
				"description": {"type": "string"},
				"points": {"type": "integer"}}}}}}},
		"max_score": {"type": "integer"},
		"created_by": {"type": "string", "format": "uuid"},
		"created_at": {"type": "string", "format": "date-time"}}}`
	rubricSchema           = json.RawMessage(rubricObjectSchema)
	assignmentCreateSchema = json.RawMessage(`{"type": "object", "required": ["title", "due_at", "rubric_id"], "additionalProperties": false, "properties": {
		"title": {"type": "string", "minLength": 1, "maxLength": 200},
		"instructions": {"type": "string", "maxLength": 50000},
		"due_at": {"type": "string", "format": "date-time"},
		"rubric_id": {"type": "string", "format": "uuid", "description": "A rubric of the same course"},
		"late_policy": {"enum": ["none", "penalty"], "default": "none"},
		"late_penalty_percent": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Taken off the grade per started day late (late_policy penalty)"},
		"late_cutoff_days": {"type": "integer", "minimum": 0, "maximum": 365, "description": "Days after the due date that late work is still taken (late_policy penalty)"},
		"pass_mark": {"type": "integer", "minimum": 0, "maximum": 100},
		"required": {"type": "boolean", "default": true},
		"lesson_id": {"type": "string", "format": "uuid"}}}`)
	assignmentSchema = json.RawMessage(`{"type": "object", "required": ["id", "course_id", "rubric_id", "title", "instructions", "due_at", "late_policy", "late_penalty_percent", "late_cutoff_days", "pass_mark", "required", "created_by", "created_at", "updated_at"], "properties": {
		"id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"lesson_id": {"type": "string", "format": "uuid"},
		"rubric_id": {"type": "string", "format": "uuid"},
		"title": {"type": "string"},
		"instructions": {"type": "string"},
		"due_at": {"type": "string", "format": "date-time"},
		"late_policy": {"enum": ["none", "penalty"]},
		"late_penalty_percent": {"type": "integer"},
		"late_cutoff_days": {"type": "integer"},
		"pass_mark": {"type": "integer", "nullable": true},
		"required": {"type": "boolean"},
		"created_by": {"type": "string", "format": "uuid"},
		"created_at": {"type": "string", "format": "date-time"},
		"updated_at": {"type": "string", "format": "date-time"},
		"rubric": ` + rubricObjectSchema + `}}`)
)
