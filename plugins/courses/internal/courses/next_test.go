package courses_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// catExec runs statements in the institution's transaction, as the plugin's
// role: the enrolments, progress and attempts other parts of the plugin
// write.
func catExec(t *testing.T, h *plugintest.Harness, tenant, sql string, args ...any) {
	t.Helper()
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), sql, args...)
		return err
	}))
}

func catEnrol(t *testing.T, h *plugintest.Harness, tenant, courseID, userID, status string) string {
	t.Helper()
	var id string
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `
			INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, activated_at, completed_at)
			VALUES ($1, $2, $3, 'admin', 'test', now(), CASE WHEN $3 = 'completed' THEN now() END) RETURNING id`,
			courseID, userID, status).Scan(&id)
	}))
	return id
}

func catNext(t *testing.T, h *plugintest.Harness, p sdk.Principal, courseID string) courses.Recommendation {
	t.Helper()
	var r courses.Recommendation
	do(t, h, p, "GET", "/api/v1/courses/"+courseID+"/next", nil, http.StatusOK).JSON(t, &r)
	require.NotEmpty(t, r.Reason)
	return r
}

func TestNextRecommendation(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	foundations, _ := publishedCourse(t, h, b.teacher, "Foundations", "Intro")

	// Geology: Rocks (with a required quiz), Minerals (needs Fossils),
	// Fossils (with an optional quiz); an assignment for the whole course;
	// Foundations first. Quizzes pass at the course's 80%.
	c := newCourse(t, h, b.teacher, "Geology")
	do(t, h, b.teacher, "PATCH", "/api/v1/courses/"+c.ID, map[string]any{"pass_mark": 80}, http.StatusOK)
	m := newModule(t, h, b.teacher, c.ID, "Earth")
	rocks := newLesson(t, h, b.teacher, c.ID, m.ID, "Rocks")
	minerals := newLesson(t, h, b.teacher, c.ID, m.ID, "Minerals")
	fossils := newLesson(t, h, b.teacher, c.ID, m.ID, "Fossils")
	do(t, h, b.teacher, "PUT", "/api/v1/courses/"+c.ID+"/lessons/"+minerals.ID+"/prerequisites", map[string]any{"lesson_ids": []string{fossils.ID}}, http.StatusOK)
	do(t, h, b.teacher, "PUT", "/api/v1/courses/"+c.ID+"/prerequisites", map[string]any{"course_ids": []string{foundations.ID}}, http.StatusOK)
	var rocksQuiz, fossilsQuiz, essay string
	require.NoError(t, h.InTenant(b.tenant, func(tx pgx.Tx) error {
		ctx := t.Context()
		err := tx.QueryRow(ctx, `
			INSERT INTO quizzes (course_id, lesson_id, title, questions, max_attempts, required, created_by)
			VALUES ($1, $2, 'Rock check', '[]', 3, true, $3) RETURNING id`, c.ID, rocks.ID, b.teacher.UserID).Scan(&rocksQuiz)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO quizzes (course_id, lesson_id, title, questions, required, created_by)
			VALUES ($1, $2, 'Fossil fun', '[]', false, $3) RETURNING id`, c.ID, fossils.ID, b.teacher.UserID).Scan(&fossilsQuiz)
		if err != nil {
			return err
		}
		var rubric string
		err = tx.QueryRow(ctx, `INSERT INTO rubrics (course_id, title, criteria, created_by) VALUES ($1, 'Essay rubric', '[]', $2) RETURNING id`,
			c.ID, b.teacher.UserID).Scan(&rubric)
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO assignments (course_id, rubric_id, title, due_at, created_by) VALUES ($1, $2, 'Field report', now() + interval '30 days', $3)
			RETURNING id`, c.ID, rubric, b.teacher.UserID).Scan(&essay)
	}))
	publish(t, h, b.teacher, c.ID)
	enrolment := catEnrol(t, h, b.tenant, c.ID, b.learner.UserID, "active")
	t0 := time.Now().Add(-time.Hour).UTC()
	progress := func(lessonID string, completed bool, at time.Time) {
		t.Helper()
		catExec(t, h, b.tenant, `
			INSERT INTO lesson_progress (enrolment_id, lesson_id, time_spent_seconds, completed_at, updated_at)
			VALUES ($1, $2, 60, CASE WHEN $3 THEN $4::timestamptz END, $4)
			ON CONFLICT (enrolment_id, lesson_id) DO UPDATE SET completed_at = EXCLUDED.completed_at, updated_at = EXCLUDED.updated_at`,
			enrolment, lessonID, completed, at)
	}
	attempt := func(quiz string, n, percent int, at time.Time) {
		t.Helper()
		catExec(t, h, b.tenant, `
			INSERT INTO quiz_attempts (quiz_id, enrolment_id, user_id, attempt, answers, score, max_score, percent, passed, submitted_at)
			VALUES ($1, $2, $3, $4, '{}', $5, 100, $5, $5 >= 80, $6)`, quiz, enrolment, b.learner.UserID, n, percent, at)
	}

	// 1. The prerequisite course comes first.
	r := catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "course", CourseID: foundations.ID, ReasonCode: "prerequisite_course", Reason: r.Reason}, r)
	require.Contains(t, r.Reason, `"Foundations"`)

	// 2. Once it is completed, the first lesson.
	catEnrol(t, h, b.tenant, foundations.ID, b.learner.UserID, "completed")
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "lesson", LessonID: rocks.ID, ReasonCode: "start", Reason: r.Reason}, r)

	// 3. A completed lesson's required quiz.
	progress(rocks.ID, true, t0)
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "quiz", QuizID: rocksQuiz, LessonID: rocks.ID, ReasonCode: "take_quiz", Reason: r.Reason}, r)

	// 4. Failed: revisit the lesson, with the score and the pass mark.
	attempt(rocksQuiz, 1, 50, t0.Add(time.Minute))
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "lesson", LessonID: rocks.ID, ReasonCode: "remediate", Reason: r.Reason}, r)
	require.Contains(t, r.Reason, "50%")
	require.Contains(t, r.Reason, "80%")
	require.Contains(t, r.Reason, `"Rocks"`)

	// The pass mark falls back to the institution's default.
	do(t, h, b.teacher, "PATCH", "/api/v1/courses/"+c.ID, map[string]any{"pass_mark": nil}, http.StatusOK)
	h.SetTenantConfig(b.tenant, json.RawMessage(`{"default_pass_mark": 65}`))
	require.Contains(t, catNext(t, h, b.learner, c.ID).Reason, "65%")
	catExec(t, h, b.tenant, `UPDATE quizzes SET pass_mark = 90 WHERE id = $1`, rocksQuiz)
	require.Contains(t, catNext(t, h, b.learner, c.ID).Reason, "90%", "the quiz's own pass mark comes first")
	catExec(t, h, b.tenant, `UPDATE quizzes SET pass_mark = NULL WHERE id = $1`, rocksQuiz)
	do(t, h, b.teacher, "PATCH", "/api/v1/courses/"+c.ID, map[string]any{"pass_mark": 80}, http.StatusOK)

	// No attempt left: nothing to gain from the quiz, move on.
	catExec(t, h, b.tenant, `UPDATE quizzes SET max_attempts = 1 WHERE id = $1`, rocksQuiz)
	require.Equal(t, fossils.ID, catNext(t, h, b.learner, c.ID).LessonID)
	catExec(t, h, b.tenant, `UPDATE quizzes SET max_attempts = 3 WHERE id = $1`, rocksQuiz)

	// 5. Revisited since: retake the quiz.
	progress(rocks.ID, true, t0.Add(2*time.Minute))
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "quiz", QuizID: rocksQuiz, LessonID: rocks.ID, ReasonCode: "take_quiz", Reason: r.Reason}, r)
	require.Contains(t, r.Reason, "50%")
	require.Contains(t, r.Reason, "80%")

	// 6. Passed: Minerals needs Fossils, so Fossils is next.
	attempt(rocksQuiz, 2, 85, t0.Add(3*time.Minute))
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "lesson", LessonID: fossils.ID, ReasonCode: "continue", Reason: r.Reason}, r)

	// 7. Started but not finished: pick it up.
	progress(fossils.ID, false, t0.Add(4*time.Minute))
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "lesson", LessonID: fossils.ID, ReasonCode: "continue", Reason: r.Reason}, r)
	require.Contains(t, r.Reason, "where you left off")

	// 8. Done (its optional quiz is the learner's choice): Minerals is unlocked.
	progress(fossils.ID, true, t0.Add(5*time.Minute))
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "lesson", LessonID: minerals.ID, ReasonCode: "continue", Reason: r.Reason}, r)
	// ... but an optional quiz taken and failed calls for remediation too.
	attempt(fossilsQuiz, 1, 40, t0.Add(5*time.Minute+time.Second))
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "lesson", LessonID: fossils.ID, ReasonCode: "remediate", Reason: r.Reason}, r)
	require.Contains(t, r.Reason, `"Fossil fun"`)
	attempt(fossilsQuiz, 2, 100, t0.Add(5*time.Minute+2*time.Second))
	require.Equal(t, minerals.ID, catNext(t, h, b.learner, c.ID).LessonID)

	// 9. Every lesson done: the course's assignment.
	progress(minerals.ID, true, t0.Add(6*time.Minute))
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "assignment", AssignmentID: essay, ReasonCode: "submit_assignment", Reason: r.Reason}, r)

	// 10. Submitted: nothing left to do while it is graded.
	catExec(t, h, b.tenant, `INSERT INTO submissions (assignment_id, course_id, enrolment_id, user_id, body) VALUES ($1, $2, $3, $4, 'report')`,
		essay, c.ID, enrolment, b.learner.UserID)
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "done", ReasonCode: "complete", Reason: r.Reason}, r)

	// 11. Completed.
	catExec(t, h, b.tenant, `UPDATE enrolments SET status = 'completed', completed_at = now() WHERE id = $1`, enrolment)
	r = catNext(t, h, b.learner, c.ID)
	require.Equal(t, courses.Recommendation{Kind: "done", ReasonCode: "complete", Reason: "You have completed this course."}, r)
}

func TestNextRefusals(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	c, _ := publishedCourse(t, h, b.teacher, "Astronomy", "Stars")
	path := "/api/v1/courses/" + c.ID + "/next"

	requireProblem(t, h.Do(b.learner, "GET", path, nil), http.StatusNotFound, "not_enrolled")
	requireProblem(t, h.Do(plugintest.APIKey(b.tenant, courses.PermCourseRead), "GET", path, nil), http.StatusNotFound, "not_enrolled")
	requireProblem(t, h.Do(plugintest.User(plugintest.NewTenant(), "learner"), "GET", path, nil), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(b.learner, "GET", "/api/v1/courses/"+plugintest.NewID()+"/next", nil), http.StatusNotFound, "not-found")

	waiting := plugintest.User(b.tenant, "learner")
	catEnrol(t, h, b.tenant, c.ID, waiting.UserID, "waitlisted")
	requireProblem(t, h.Do(waiting, "GET", path, nil), http.StatusConflict, "enrolment_waitlisted")

	// A withdrawn enrolment is no enrolment.
	gone := plugintest.User(b.tenant, "learner")
	catEnrol(t, h, b.tenant, c.ID, gone.UserID, "withdrawn")
	requireProblem(t, h.Do(gone, "GET", path, nil), http.StatusNotFound, "not_enrolled")

	// A draft says nothing to someone who cannot see it.
	draft := newCourse(t, h, b.teacher, "Cosmology")
	requireProblem(t, h.Do(b.learner, "GET", "/api/v1/courses/"+draft.ID+"/next", nil), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(b.teacher, "GET", "/api/v1/courses/"+draft.ID+"/next", nil), http.StatusNotFound, "not_enrolled")

	// An enrolled learner of a course since unpublished.
	catEnrol(t, h, b.tenant, c.ID, b.learner.UserID, "active")
	require.Equal(t, "start", catNext(t, h, b.learner, c.ID).ReasonCode)
	do(t, h, b.teacher, "POST", "/api/v1/courses/"+c.ID+"/unpublish", nil, http.StatusOK)
	requireProblem(t, h.Do(b.learner, "GET", path, nil), http.StatusConflict, "course_unpublished")
}
