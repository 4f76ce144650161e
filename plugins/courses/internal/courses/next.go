package courses

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Recommendation is a learner's next step in a course (GET
// /api/v1/courses/{course_id}/next): one thing to do and why.
type Recommendation struct {
	Kind         string `json:"kind" enum:"lesson,quiz,assignment,course,done"`
	LessonID     string `json:"lesson_id,omitempty" format:"uuid"`
	QuizID       string `json:"quiz_id,omitempty" format:"uuid"`
	AssignmentID string `json:"assignment_id,omitempty" format:"uuid"`
	CourseID     string `json:"course_id,omitempty" format:"uuid" doc:"Kind course: the prerequisite course to complete first."`
	// ReasonCode is start, continue, remediate, take_quiz,
	// submit_assignment, prerequisite_course or complete.
	ReasonCode string `json:"reason_code" enum:"start,continue,remediate,take_quiz,submit_assignment,prerequisite_course,complete"`
	Reason     string `json:"reason" doc:"One sentence for the learner."`
}

// Reason codes of a Recommendation.
const (
	ReasonStart              = "start"
	ReasonContinue           = "continue"
	ReasonRemediate          = "remediate"
	ReasonTakeQuiz           = "take_quiz"
	ReasonSubmitAssignment   = "submit_assignment"
	ReasonPrerequisiteCourse = "prerequisite_course"
	ReasonComplete           = "complete"
)

func (p *Plugin) nextRoutes() []sdk.Route {
	return []sdk.Route{{
		Method: "GET", Path: "/api/v1/courses/{course_id}/next", Permission: PermCourseRead,
		Summary:  "The caller's recommended next step in a course they are enrolled in",
		Response: Recommendation{}, Handler: p.nextStep,
	}}
}

// learnerState is what the recommendation reads about one enrolment.
type learnerState struct {
	started     bool                   // any lesson progress at all
	lessons     map[string]lessonState // by lesson ID
	quizzes     map[string]quizState   // by quiz ID, quizzes that still exist
	assignments map[string]bool        // by assignment ID, those that still exist: submitted
	// prerequisite is the first prerequisite course the learner has not
	// completed, if any.
	prerequisite *prerequisiteCourse
}

type lessonState struct {
	completed bool
	touchedAt time.Time // last time spent or completion recorded
}

type quizState struct {
	passMark    int
	maxAttempts int // 0: unlimited
	attempts    int
	passed      bool
	lastPercent int
	lastAt      time.Time
}

// retriable: the learner may attempt the quiz again.
func (q quizState) retriable() bool { return q.maxAttempts == 0 || q.attempts < q.maxAttempts }

type prerequisiteCourse struct{ id, title string }

// nextStep handles GET /api/v1/courses/{course_id}/next.
func (p *Plugin) nextStep(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	var out Recommendation
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := loadCourse(ctx, tx, courseID, false)
		if err != nil {
			return err
		}
		var enrolmentID, status string
		if req.Principal.IsUser() {
			err := tx.QueryRow(ctx, `SELECT id::text, status FROM enrolments WHERE course_id = $1 AND user_id = $2 AND status <> 'withdrawn'`,
				courseID, req.Principal.UserID).Scan(&enrolmentID, &status)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if enrolmentID == "" {
			if c.Status != "published" {
				author, err := canAuthor(ctx, tx, courseID, req.Principal)
				if err != nil {
					return err
				}
				if !author {
					return sdk.Errorf(sdk.ErrNotFound, "no course %s", courseID)
				}
			}
			return sdk.Errorf(sdk.ErrNotFound, "you are not enrolled in course %s", courseID).WithCode("not_enrolled")
		}
		switch status {
		case "waitlisted":
			return sdk.Errorf(sdk.ErrConflict, "you are on the waitlist of course %s: there is nothing to do until you get a seat", courseID).WithCode("enrolment_waitlisted")
		case "completed":
			out = Recommendation{Kind: "done", ReasonCode: ReasonComplete, Reason: "You have completed this course."}
			return nil
		}
		if c.Status != "published" {
			return sdk.Errorf(sdk.ErrConflict, "course %s is not published at the moment: there is nothing to recommend", courseID).WithCode("course_unpublished")
		}
		content, err := publishedContent(ctx, tx, courseID)
		if err != nil {
			return err
		}
		coursePassMark := cfg.DefaultPassMark
		if c.PassMark != nil {
			coursePassMark = *c.PassMark
		}
		st, err := readLearnerState(ctx, tx, content, enrolmentID, req.Principal.UserID, coursePassMark, cfg.DefaultQuizAttempts)
		if err != nil {
			return err
		}
		out = recommend(content, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// readLearnerState reads the enrolment's progress, quiz attempts and
// submissions, and the prerequisite courses of the published version the
// learner has not completed.
func readLearnerState(ctx context.Context, tx pgx.Tx, content *Content, enrolmentID, userID string, coursePassMark, defaultAttempts int) (*learnerState, error) {
	st := &learnerState{lessons: map[string]lessonState{}, quizzes: map[string]quizState{}, assignments: map[string]bool{}}

	rows, err := tx.Query(ctx, `SELECT lesson_id::text, completed_at IS NOT NULL, updated_at FROM lesson_progress WHERE enrolment_id = $1`, enrolmentID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var l lessonState
		if err := rows.Scan(&id, &l.completed, &l.touchedAt); err != nil {
			rows.Close()
			return nil, err
		}
		st.lessons[id], st.started = l, true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading lesson progress: %w", err)
	}

	// Quizzes of the version that still exist, with their settings as they
	// are now and the enrolment's attempts.
	quizIDs := make([]string, 0, len(content.Quizzes))
	for _, q := range content.Quizzes {
		quizIDs = append(quizIDs, q.ID)
	}
	rows, err = tx.Query(ctx, `
		SELECT q.id::text, q.pass_mark, q.max_attempts, count(a.id), coalesce(bool_or(a.passed), false),
		       (array_agg(a.percent ORDER BY a.attempt DESC))[1], max(a.submitted_at)
		FROM quizzes q LEFT JOIN quiz_attempts a ON a.quiz_id = q.id AND a.enrolment_id = $2
		WHERE q.id = ANY($1::uuid[])
		GROUP BY q.id`, quizIDs, enrolmentID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var passMark, maxAttempts, lastPercent *int
		var lastAt *time.Time
		q := quizState{passMark: coursePassMark, maxAttempts: defaultAttempts}
		if err := rows.Scan(&id, &passMark, &maxAttempts, &q.attempts, &q.passed, &lastPercent, &lastAt); err != nil {
			rows.Close()
			return nil, err
		}
		if passMark != nil {
			q.passMark = *passMark
		}
		if maxAttempts != nil {
			q.maxAttempts = *maxAttempts
		}
		if lastPercent != nil {
			q.lastPercent = *lastPercent
		}
		if lastAt != nil {
			q.lastAt = *lastAt
		}
		st.quizzes[id] = q
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading quiz attempts: %w", err)
	}

	assignmentIDs := make([]string, 0, len(content.Assignments))
	for _, a := range content.Assignments {
		assignmentIDs = append(assignmentIDs, a.ID)
	}
	rows, err = tx.Query(ctx, `
		SELECT a.id::text, EXISTS (SELECT 1 FROM submissions s WHERE s.assignment_id = a.id AND s.enrolment_id = $2)
		FROM assignments a WHERE a.id = ANY($1::uuid[])`, assignmentIDs, enrolmentID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var submitted bool
		if err := rows.Scan(&id, &submitted); err != nil {
			rows.Close()
			return nil, err
		}
		st.assignments[id] = submitted
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading submissions: %w", err)
	}

	// Prerequisite courses not completed: first one the learner is taking,
	// then a published one (that they can take), then in the version's order.
	if len(content.Prerequisites) > 0 {
		var pc prerequisiteCourse
		err := tx.QueryRow(ctx, `
			SELECT c.id::text, coalesce(v.content->>'title', c.title)
			FROM unnest($1::uuid[]) WITH ORDINALITY AS r (id, n)
			JOIN courses c ON c.id = r.id
			LEFT JOIN course_versions v ON v.course_id = c.id AND v.version = c.published_version
			WHERE NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.course_id = c.id AND e.user_id = $2 AND e.status = 'completed')
			ORDER BY EXISTS (SELECT 1 FROM enrolments e WHERE e.course_id = c.id AND e.user_id = $2 AND e.status = 'active') DESC,
			         c.status = 'published' DESC, r.n
			LIMIT 1`, content.Prerequisites, userID).Scan(&pc.id, &pc.title)
		switch {
		case err == nil:
			st.prerequisite = &pc
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("reading prerequisite courses: %w", err)
		}
	}
	return st, nil
}

// recommend picks the learner's next step, in this order:
//
//  1. a prerequisite course not completed (the course builds on it);
//  2. mastery before new material: a quiz of a completed lesson that was
//     failed and not since passed (while attempts remain) calls for
//     remediation, revisiting the lesson, and once the lesson has been
//     worked on again, for retaking the quiz;
//  3. walking the lessons in course order: for a completed lesson, its
//     required quizzes not yet taken and required assignments not
//     submitted; else the first lesson not completed whose prerequisite
//     lessons are all completed (a lesson still locked is skipped: the
//     walk reaches its prerequisites);
//  4. the course's own quizzes and required assignments;
//  5. done: nothing left the learner can do (completion may still wait
//     on grading).
func recommend(c *Content, st *learnerState) Recommendation {
	if st.prerequisite != nil {
		return Recommendation{
			Kind: "course", CourseID: st.prerequisite.id, ReasonCode: ReasonPrerequisiteCourse,
			Reason: fmt.Sprintf("Complete %q first: %q builds on it.", st.prerequisite.title, c.Title),
		}
	}
	lessonTitles := map[string]string{}
	for _, l := range c.Lessons() {
		lessonTitles[l.ID] = l.Title
	}
	for _, l := range c.Lessons() {
		if !st.lessons[l.ID].completed {
			continue
		}
		for _, ref := range c.Quizzes {
			if q, ok := st.quizzes[ref.ID]; ok && ref.LessonID == l.ID && q.attempts > 0 {
				if r, ok := quizStep(st, ref, l.Title); ok {
					return r
				}
			}
		}
	}
	for _, l := range c.Lessons() {
		if st.lessons[l.ID].completed {
			if r, ok := assessLesson(c, st, l); ok {
				return r
			}
			continue
		}
		locked := false
		for _, pre := range l.Prerequisites {
			// A prerequisite not in the version cannot be completed: it binds no one.
			if _, inVersion := lessonTitles[pre]; inVersion && !st.lessons[pre].completed {
				locked = true
				break
			}
		}
		if locked {
			continue
		}
		r := Recommendation{Kind: "lesson", LessonID: l.ID, ReasonCode: ReasonContinue}
		switch {
		case !st.started:
			r.ReasonCode, r.Reason = ReasonStart, fmt.Sprintf("Start %q with %q.", c.Title, l.Title)
		case !st.lessons[l.ID].touchedAt.IsZero():
			r.Reason = fmt.Sprintf("Pick up %q where you left off.", l.Title)
		default:
			r.Reason = fmt.Sprintf("Continue with %q, the next lesson you have not completed.", l.Title)
		}
		return r
	}
	// Assessments of the course as a whole (or of a lesson no longer in it).
	for _, q := range c.Quizzes {
		if _, ofLesson := lessonTitles[q.LessonID]; ofLesson {
			continue
		}
		if r, ok := quizStep(st, q, ""); ok {
			return r
		}
	}
	for _, a := range c.Assignments {
		if _, ofLesson := lessonTitles[a.LessonID]; ofLesson {
			continue
		}
		if r, ok := assignmentStep(st, a); ok {
			return r
		}
	}
	return Recommendation{
		Kind: "done", ReasonCode: ReasonComplete,
		Reason: fmt.Sprintf("There is nothing more for you to do in %q for now.", c.Title),
	}
}

// assessLesson is the step a completed lesson's quizzes and assignments
// call for, if any.
func assessLesson(c *Content, st *learnerState, l ContentLesson) (Recommendation, bool) {
	for _, q := range c.Quizzes {
		if q.LessonID != l.ID {
			continue
		}
		if r, ok := quizStep(st, q, l.Title); ok {
			return r, true
		}
	}
	for _, a := range c.Assignments {
		if a.LessonID != l.ID {
			continue
		}
		if r, ok := assignmentStep(st, a); ok {
			return r, true
		}
	}
	return Recommendation{}, false
}

// quizStep is the step a quiz calls for: nothing once passed or when no
// attempt is left; taking it when it is required and not yet taken; after a
// failed attempt, revisiting its lesson (remediation) until the lesson has
// been worked on again, then retaking it. lessonTitle is "" for a quiz of
// the whole course, which has no lesson to revisit.
func quizStep(st *learnerState, ref AssessmentRef, lessonTitle string) (Recommendation, bool) {
	q, exists := st.quizzes[ref.ID]
	if !exists || q.passed || !q.retriable() {
		return Recommendation{}, false
	}
	r := Recommendation{Kind: "quiz", QuizID: ref.ID, LessonID: ref.LessonID, ReasonCode: ReasonTakeQuiz}
	switch {
	case q.attempts == 0 && !ref.Required:
		return Recommendation{}, false // optional and untried: the learner's choice
	case q.attempts == 0 && lessonTitle != "":
		r.Reason = fmt.Sprintf("Take %q to check what you learnt in %q.", ref.Title, lessonTitle)
	case q.attempts == 0:
		r.Reason = fmt.Sprintf("Take %q.", ref.Title)
	case lessonTitle != "" && !st.lessons[ref.LessonID].touchedAt.After(q.lastAt):
		return Recommendation{
			Kind: "lesson", LessonID: ref.LessonID, ReasonCode: ReasonRemediate,
			Reason: fmt.Sprintf("You scored %d%% on %q and need %d%% to pass: revisit %q before trying again.",
				q.lastPercent, ref.Title, q.passMark, lessonTitle),
		}, true
	default:
		r.Reason = fmt.Sprintf("Try %q again: you scored %d%% and need %d%% to pass.", ref.Title, q.lastPercent, q.passMark)
	}
	return r, true
}

// assignmentStep is submitting a required assignment not yet submitted
// (and still in the course).
func assignmentStep(st *learnerState, a AssessmentRef) (Recommendation, bool) {
	submitted, exists := st.assignments[a.ID]
	if !exists || submitted || !a.Required {
		return Recommendation{}, false
	}
	return Recommendation{
		Kind: "assignment", AssignmentID: a.ID, LessonID: a.LessonID, ReasonCode: ReasonSubmitAssignment,
		Reason: fmt.Sprintf("Submit %q.", a.Title),
	}, true
}
