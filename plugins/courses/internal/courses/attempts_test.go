package courses_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestQuizAttemptGrading(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	q := f.createQuiz(t, statsQuiz(map[string]any{"max_attempts": 5, "required": false}))
	f.publish(t)
	enrolment := f.enrol(t, f.courseID, f.learner, "active")
	path := "/api/v1/quizzes/" + q.ID + "/attempts"

	// q1 right (1), q2 half right scores nothing (0 of 2), q3 unanswered.
	res := f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q1": []string{"a"}, "q2": []string{"a"}}})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.NotContains(t, string(res.Body), `"correct":["`, "the right answers are not revealed")
	var a courses.QuizAttempt
	res.JSON(t, &a)
	require.Equal(t, 1, a.Attempt)
	require.Equal(t, enrolment, a.EnrolmentID)
	require.Equal(t, 1, a.Score)
	require.Equal(t, 4, a.MaxScore)
	require.Equal(t, 25, a.Percent)
	require.False(t, a.Passed, "25 is below the default pass mark of 70")
	require.Equal(t, 70, *a.PassMark)
	require.Equal(t, 4, *a.AttemptsLeft)
	require.Equal(t, []courses.QuestionResult{
		{QuestionID: "q1", Correct: true, Points: 1},
		{QuestionID: "q2", Correct: false, Points: 0},
		{QuestionID: "q3", Correct: false, Points: 0},
	}, a.Results)

	// Every set exactly right, in any order.
	res = f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q1": []string{"a"}, "q2": []string{"b", "a"}, "q3": []string{"c"}}})
	require.Equal(t, http.StatusCreated, res.Status, res)
	res.JSON(t, &a)
	require.Equal(t, 2, a.Attempt)
	require.Equal(t, 4, a.Score)
	require.Equal(t, 100, a.Percent)
	require.True(t, a.Passed)

	// A superset of the right options is wrong.
	res = f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q2": []string{"a", "b", "c"}}})
	require.Equal(t, http.StatusCreated, res.Status, res)
	res.JSON(t, &a)
	require.Equal(t, 0, a.Score)

	// Malformed answers are refused, naming the question; nothing is written.
	for _, tc := range []struct {
		name    string
		answers any
		field   string
		message string
	}{
		{"unknown question", map[string]any{"q9": []string{"a"}}, "answers.q9", "is not a question of this quiz"},
		{"unknown option", map[string]any{"q2": []string{"a", "x"}}, "answers.q2", `unknown option id "x"`},
		{"two options for a single choice", map[string]any{"q1": []string{"a", "b"}}, "answers.q1", "a single-choice question takes exactly one option"},
		{"no option for a single choice", map[string]any{"q1": []string{}}, "answers.q1", "a single-choice question takes exactly one option"},
		{"option twice", map[string]any{"q2": []string{"a", "a"}}, "answers.q2", `option "a" is chosen twice`},
	} {
		p := requireProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{"answers": tc.answers}), 422, "", tc.field)
		require.Equal(t, tc.message, p.Fields[0].Message, tc.name)
	}
	requireProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{}), 422, "", "answers")
	requireProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q1": "a"}}), 422, "")
	require.Equal(t, 3, f.count(t, `SELECT count(*) FROM quiz_attempts`))
	// Each graded attempt is published (the refused ones are not).
	attempted := eventsOf[courses.QuizAttempted](t, f.h, f.tenant, courses.EventQuizAttempted)
	require.Len(t, attempted, 3)
	require.Equal(t, q.ID, attempted[0].QuizID)
	require.Equal(t, f.courseID, attempted[0].CourseID)
	require.Equal(t, enrolment, attempted[0].EnrolmentID)
	require.Equal(t, f.learner.UserID, attempted[0].UserID)
	require.Equal(t, 25, attempted[0].Percent)
	require.False(t, attempted[0].Passed)
	require.True(t, attempted[1].Passed)
	require.Equal(t, 2, attempted[1].Attempt)
	require.False(t, attempted[1].AttemptedAt.IsZero())

	// The learner lists their own attempts, oldest first, page by page.
	res = f.h.Do(f.learner, "GET", path+"?limit=2", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var page sdk.Page[courses.QuizAttempt]
	res.JSON(t, &page)
	require.Len(t, page.Items, 2)
	require.Equal(t, []int{1, 2}, []int{page.Items[0].Attempt, page.Items[1].Attempt})
	require.True(t, page.Items[1].Results[1].Correct)
	require.NotEmpty(t, page.NextCursor)
	res = f.h.Do(f.learner, "GET", path+"?limit=2&cursor="+page.NextCursor, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	page = sdk.Page[courses.QuizAttempt]{}
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, 3, page.Items[0].Attempt)
	require.Empty(t, page.NextCursor)
	requireProblem(t, f.h.Do(f.learner, "GET", path+"?cursor=bogus", nil), 422, "", "cursor")
	// Someone else's attempts are not theirs to list.
	res = f.h.Do(plugintest.User(f.tenant, "learner"), "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	page = sdk.Page[courses.QuizAttempt]{}
	res.JSON(t, &page)
	require.Empty(t, page.Items)
}

func TestQuizAttemptNeedsEnrolment(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	q := f.createQuiz(t, statsQuiz(nil))
	path := "/api/v1/quizzes/" + q.ID + "/attempts"
	answers := map[string]any{"answers": map[string]any{"q1": []string{"a"}}}

	// Not published yet: there is no quiz for learners.
	f.enrol(t, f.courseID, f.learner, "active")
	requireProblem(t, f.h.Do(f.learner, "POST", path, answers), 404, "not-found")
	f.publish(t)

	stranger := plugintest.User(f.tenant, "learner")
	requireProblem(t, f.h.Do(stranger, "POST", path, answers), 404, "not_enrolled")
	waiting := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, waiting, "waitlisted")
	requireProblem(t, f.h.Do(waiting, "POST", path, answers), 409, "enrolment_waitlisted")
	left := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, left, "withdrawn")
	requireProblem(t, f.h.Do(left, "POST", path, answers), 404, "not_enrolled")
	requireProblem(t, f.h.Do(plugintest.APIKey(f.tenant, courses.PermEnrolSelf), "POST", path, answers), 403, "")
	require.Zero(t, f.count(t, `SELECT count(*) FROM quiz_attempts`))

	res := f.h.Do(f.learner, "POST", path, answers)
	require.Equal(t, http.StatusCreated, res.Status, res)
}

func TestQuizAttemptLimit(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newAssessFixture(t, h)
	limited := f.createQuiz(t, statsQuiz(map[string]any{"max_attempts": 2}))
	byDefault := f.createQuiz(t, statsQuiz(map[string]any{"title": "Default"}))
	f.publish(t)
	f.enrol(t, f.courseID, f.learner, "active")
	wrong := map[string]any{"answers": map[string]any{"q1": []string{"b"}}}
	attempt := func(q courses.Quiz) *plugintest.Result {
		return f.h.Do(f.learner, "POST", "/api/v1/quizzes/"+q.ID+"/attempts", wrong)
	}

	require.Equal(t, http.StatusCreated, attempt(limited).Status)
	res := attempt(limited)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a courses.QuizAttempt
	res.JSON(t, &a)
	require.Equal(t, 0, *a.AttemptsLeft)
	requireProblem(t, attempt(limited), 409, "attempts_exhausted")
	require.Equal(t, 2, f.count(t, `SELECT count(*) FROM quiz_attempts WHERE quiz_id = $1`, limited.ID), "a refused attempt writes nothing")

	// A quiz without a limit takes the institution's default_quiz_attempts.
	h.SetTenantConfig(f.tenant, json.RawMessage(`{"default_quiz_attempts": 1}`))
	require.Equal(t, http.StatusCreated, attempt(byDefault).Status)
	requireProblem(t, attempt(byDefault), 409, "attempts_exhausted")
	// 0 is unlimited.
	h.SetTenantConfig(f.tenant, json.RawMessage(`{"default_quiz_attempts": 0}`))
	for range 3 {
		res := attempt(byDefault)
		require.Equal(t, http.StatusCreated, res.Status, res)
		var a courses.QuizAttempt
		res.JSON(t, &a)
		require.Nil(t, a.AttemptsLeft)
	}
}

// Concurrent attempts count one after the other: the limit holds.
func TestQuizAttemptLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	q := f.createQuiz(t, statsQuiz(map[string]any{"max_attempts": 2}))
	f.publish(t)
	f.enrol(t, f.courseID, f.learner, "active")
	statuses := make([]int, 6)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			statuses[i] = f.h.Do(f.learner, "POST", "/api/v1/quizzes/"+q.ID+"/attempts", map[string]any{"answers": map[string]any{}}).Status
		})
	}
	wg.Wait()
	require.ElementsMatch(t, []int{201, 201, 409, 409, 409, 409}, statuses)
	require.Equal(t, 2, f.count(t, `SELECT count(*) FROM quiz_attempts`))
}

// A pass moves the learner's progress; with every required lesson done it
// completes the course.
func TestQuizPassMovesProgress(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	q := f.createQuiz(t, statsQuiz(map[string]any{"pass_mark": 50}))
	f.publish(t)
	enrolment := f.enrol(t, f.courseID, f.learner, "active")
	path := "/api/v1/quizzes/" + q.ID + "/attempts"

	res := f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q1": []string{"a"}}})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.Zero(t, f.count(t, `SELECT count(*) FROM course_progress`), "a fail moves nothing")

	res = f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q1": []string{"a"}, "q2": []string{"a", "b"}}})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a courses.QuizAttempt
	res.JSON(t, &a)
	require.True(t, a.Passed, "75 passes the quiz's own pass mark of 50")
	var passed, required, percent int
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `SELECT assessments_passed, assessments_required, percent FROM course_progress WHERE enrolment_id = $1`, enrolment).
			Scan(&passed, &required, &percent)
	}))
	require.Equal(t, []int{1, 1, 50}, []int{passed, required, percent}, "one of two required items (the lesson, the quiz) done")

	// The lesson done as well, the next pass completes the course.
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `INSERT INTO lesson_progress (enrolment_id, lesson_id, completed_at) VALUES ($1, $2, now())`, enrolment, f.lessonID)
		return err
	}))
	res = f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q1": []string{"a"}, "q2": []string{"a", "b"}, "q3": []string{"c"}}})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM enrolments WHERE id = $1 AND status = 'completed'`, enrolment))
	var completed []plugintest.PublishedEvent
	for _, e := range f.h.Published(t, f.tenant) {
		if e.Type == courses.EventCourseCompleted {
			completed = append(completed, e)
		}
	}
	require.Len(t, completed, 1)
	var data courses.CourseCompleted
	require.NoError(t, completed[0].Decode(&data))
	require.Equal(t, enrolment, data.EnrolmentID)
	require.Equal(t, f.learner.UserID, data.UserID)
}
