package courses_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// assessFixture is an institution with a course (one module, one required
// lesson) taught by instructor, another instructor who does not teach it,
// an admin and a learner. The catalogue and enrolment routes are tested
// elsewhere: the fixture writes courses, versions and enrolments directly,
// as those routes would.
type assessFixture struct {
	h          *plugintest.Harness
	tenant     string
	instructor sdk.Principal // teaches the course
	outsider   sdk.Principal // an instructor of the institution who does not
	admin      sdk.Principal
	learner    sdk.Principal
	courseID   string
	moduleID   string
	lessonID   string
}

func newAssessFixture(t *testing.T, h *plugintest.Harness) *assessFixture {
	t.Helper()
	tenant := plugintest.NewTenant()
	f := &assessFixture{
		h: h, tenant: tenant,
		instructor: plugintest.User(tenant, "instructor"), outsider: plugintest.User(tenant, "instructor"),
		admin: plugintest.User(tenant, "admin"), learner: plugintest.User(tenant, "learner"),
	}
	f.courseID, f.moduleID, f.lessonID = f.addCourse(t)
	return f
}

// addCourse writes a draft course taught by f.instructor with one module
// and one required lesson.
func (f *assessFixture) addCourse(t *testing.T) (courseID, moduleID, lessonID string) {
	t.Helper()
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		if err := tx.QueryRow(t.Context(), `INSERT INTO courses (title, created_by) VALUES ('Statistics', $1) RETURNING id`, f.instructor.UserID).Scan(&courseID); err != nil {
			return err
		}
		if _, err := tx.Exec(t.Context(), `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $2)`, courseID, f.instructor.UserID); err != nil {
			return err
		}
		if err := tx.QueryRow(t.Context(), `INSERT INTO modules (course_id, title, position) VALUES ($1, 'Basics', 0) RETURNING id`, courseID).Scan(&moduleID); err != nil {
			return err
		}
		return tx.QueryRow(t.Context(), `INSERT INTO lessons (course_id, module_id, title, position) VALUES ($1, $2, 'Means', 0) RETURNING id`, courseID, moduleID).Scan(&lessonID)
	}))
	return courseID, moduleID, lessonID
}

// publish publishes the course's draft as its next version, as the
// catalogue's publish does: the lesson and every quiz and assignment the
// course has now.
func (f *assessFixture) publish(t *testing.T) {
	t.Helper()
	f.publishCourse(t, f.courseID, f.moduleID, f.lessonID)
}

func (f *assessFixture) publishCourse(t *testing.T, courseID, moduleID, lessonID string) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		c := courses.Content{
			CourseID: courseID, Title: "Statistics", Prerequisites: []string{},
			Modules: []courses.ContentModule{{ID: moduleID, Title: "Basics", Lessons: []courses.ContentLesson{
				{ID: lessonID, Title: "Means", BodyFormat: "markdown", Assets: []courses.Asset{}, Required: true, Prerequisites: []string{}},
			}}},
		}
		for _, q := range []struct {
			sql string
			out *[]courses.AssessmentRef
		}{
			{`SELECT id, title, coalesce(lesson_id::text, ''), required FROM quizzes WHERE course_id = $1 ORDER BY created_at`, &c.Quizzes},
			{`SELECT id, title, coalesce(lesson_id::text, ''), required FROM assignments WHERE course_id = $1 ORDER BY due_at`, &c.Assignments},
		} {
			rows, _ := tx.Query(ctx, q.sql, courseID)
			refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (courses.AssessmentRef, error) {
				var a courses.AssessmentRef
				return a, r.Scan(&a.ID, &a.Title, &a.LessonID, &a.Required)
			})
			if err != nil {
				return err
			}
			*q.out = append([]courses.AssessmentRef{}, refs...)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) + 1 FROM course_versions WHERE course_id = $1`, courseID).Scan(&c.Version); err != nil {
			return err
		}
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO course_versions (course_id, version, content, published_by) VALUES ($1, $2, $3, $4)`,
			courseID, c.Version, raw, f.instructor.UserID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE courses SET status = 'published', published_version = $2, published_at = now() WHERE id = $1`, courseID, c.Version)
		return err
	}))
}

// enrol writes an enrolment of user in the course with the given status.
func (f *assessFixture) enrol(t *testing.T, courseID string, user sdk.Principal, status string) string {
	t.Helper()
	var id string
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `
			INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, activated_at)
			VALUES ($1, $2, $3, 'admin', 'test', CASE WHEN $3 = 'active' THEN now() END) RETURNING id`,
			courseID, user.UserID, status).Scan(&id)
	}))
	return id
}

// count runs a count query as the plugin, in the fixture's institution.
func (f *assessFixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), sql, args...).Scan(&n)
	}))
	return n
}

func (f *assessFixture) draftRevision(t *testing.T) int {
	t.Helper()
	return f.count(t, `SELECT draft_revision FROM courses WHERE id = $1`, f.courseID)
}

// createQuiz creates a quiz through the API and returns it.
func (f *assessFixture) createQuiz(t *testing.T, body map[string]any) courses.Quiz {
	t.Helper()
	res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", body)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var q courses.Quiz
	res.JSON(t, &q)
	return q
}

// requireProblem checks an error answer's status, code and field names.
func assessProblem(t *testing.T, res *plugintest.Result, status int, code string, fields ...string) plugintest.Problem {
	t.Helper()
	require.Equal(t, status, res.Status, res)
	p := res.Problem()
	if code != "" {
		require.Equal(t, code, p.Code, res)
	}
	if fields != nil {
		require.ElementsMatch(t, fields, p.FieldNames(), res)
	}
	return p
}

// statsQuiz: q1 single (1 point, a), q2 multiple (2 points, a and b), q3
// single (1 point, c).
func statsQuiz(extra map[string]any) map[string]any {
	body := map[string]any{
		"title": "Check",
		"questions": []map[string]any{
			{"id": "q1", "prompt": "Mean of 1, 2, 3?", "kind": "single", "options": []map[string]any{{"id": "a", "text": "2"}, {"id": "b", "text": "3"}}, "correct": []string{"a"}},
			{"id": "q2", "prompt": "Measures of spread?", "kind": "multiple", "points": 2, "options": []map[string]any{{"id": "a", "text": "IQR"}, {"id": "b", "text": "SD"}, {"id": "c", "text": "Mode"}}, "correct": []string{"b", "a"}},
			{"id": "q3", "prompt": "Median of 1, 5, 9?", "kind": "single", "options": []map[string]any{{"id": "a", "text": "1"}, {"id": "b", "text": "9"}, {"id": "c", "text": "5"}}, "correct": []string{"c"}},
		},
	}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func TestCreateQuiz(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	before := f.draftRevision(t)
	q := f.createQuiz(t, statsQuiz(map[string]any{"lesson_id": f.lessonID, "pass_mark": 60, "max_attempts": 2}))
	require.NotEmpty(t, q.ID)
	require.Equal(t, f.courseID, q.CourseID)
	require.Equal(t, f.lessonID, q.LessonID)
	require.Len(t, q.Questions, 3)
	require.Equal(t, 1, q.Questions[0].Points, "points default to 1")
	require.Equal(t, []string{"a", "b"}, q.Questions[1].Correct)
	require.Equal(t, 60, *q.PassMark)
	require.Equal(t, 2, *q.MaxAttempts)
	require.True(t, q.Required, "quizzes are required unless said otherwise")
	require.Equal(t, f.instructor.UserID, q.CreatedBy)
	require.Equal(t, before+1, f.draftRevision(t), "a quiz changes the draft")

	// The author reads it with the answers.
	res := f.h.Do(f.instructor, "GET", "/api/v1/quizzes/"+q.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Quiz
	res.JSON(t, &got)
	require.Equal(t, []string{"c"}, got.Questions[2].Correct)

	// Only the course's instructors author it: a learner lacks the
	// permission, an instructor who does not teach the draft does not see it.
	assessProblem(t, f.h.Do(f.learner, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", statsQuiz(nil)), 403, "permission-denied")
	assessProblem(t, f.h.Do(f.outsider, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", statsQuiz(nil)), 404, "not-found")
	assessProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+plugintest.NewID()+"/quizzes", statsQuiz(nil)), 404, "not-found")
	assessProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/nope/quizzes", statsQuiz(nil)), 404, "not-found")
	// The admin may.
	res = f.h.Do(f.admin, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", statsQuiz(nil))
	require.Equal(t, http.StatusCreated, res.Status, res)
}

func TestQuizValidation(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	otherCourse, _, otherLesson := f.addCourse(t)
	_ = otherCourse
	question := func(changes map[string]any) map[string]any {
		q := map[string]any{"id": "q1", "prompt": "Pick one", "kind": "single", "options": []map[string]any{{"id": "a", "text": "A"}, {"id": "b", "text": "B"}}, "correct": []string{"a"}}
		for k, v := range changes {
			if v == nil {
				delete(q, k)
			} else {
				q[k] = v
			}
		}
		return q
	}
	body := func(questions ...map[string]any) map[string]any {
		return map[string]any{"title": "Quiz", "questions": questions}
	}
	for _, tc := range []struct {
		name    string
		body    any
		status  int
		fields  []string
		message string
	}{
		{name: "single with two correct", body: body(question(map[string]any{"correct": []string{"a", "b"}})), status: 422,
			fields: []string{"questions[0].correct"}, message: "a single-choice question needs exactly one correct option"},
		{name: "single with none correct", body: body(question(map[string]any{"correct": []string{}})), status: 422,
			fields: []string{"questions[0].correct"}, message: "a single-choice question needs exactly one correct option"},
		{name: "multiple with none correct", body: body(question(map[string]any{"kind": "multiple", "correct": nil})), status: 422,
			fields: []string{"questions[0].correct"}, message: "a multiple-choice question needs at least one correct option"},
		{name: "unknown correct option", body: body(question(map[string]any{"correct": []string{"z"}})), status: 422,
			fields: []string{"questions[0].correct"}, message: `unknown option id "z"`},
		{name: "correct option twice", body: body(question(map[string]any{"kind": "multiple", "correct": []string{"a", "a"}})), status: 422,
			fields: []string{"questions[0].correct"}, message: `option "a" is listed twice`},
		{name: "duplicate question ids", body: body(question(nil), question(nil)), status: 422,
			fields: []string{"questions[1].id"}, message: "repeats the id of questions[0]"},
		{name: "duplicate option ids", body: body(question(map[string]any{"options": []map[string]any{{"id": "a", "text": "A"}, {"id": "a", "text": "B"}}})), status: 422,
			fields: []string{"questions[0].options[1].id"}},
		{name: "one option", body: body(question(map[string]any{"options": []map[string]any{{"id": "a", "text": "A"}}})), status: 422,
			fields: []string{"questions[0].options"}},
		{name: "question id too long", body: body(question(map[string]any{"id": strings.Repeat("q", 65)})), status: 422,
			fields: []string{"questions[0].id"}},
		{name: "empty option text and prompt", body: body(question(map[string]any{"prompt": " ", "options": []map[string]any{{"id": "a", "text": ""}, {"id": "b", "text": "B"}}})), status: 422,
			fields: []string{"questions[0].prompt", "questions[0].options[0].text"}},
		{name: "points out of range", body: body(question(map[string]any{"points": 0}), question(map[string]any{"id": "q2", "points": 101})), status: 422,
			fields: []string{"questions[0].points", "questions[1].points"}},
		{name: "unknown kind", body: body(question(map[string]any{"kind": "essay"})), status: 422, fields: []string{"questions[0].kind"}},
		{name: "no questions", body: body(), status: 422, fields: []string{"questions"}},
		{name: "settings out of range", body: map[string]any{"title": "", "questions": []any{question(nil)}, "pass_mark": 101, "max_attempts": 0}, status: 422,
			fields: []string{"title", "pass_mark", "max_attempts"}},
		{name: "lesson not a UUID", body: map[string]any{"title": "Q", "questions": []any{question(nil)}, "lesson_id": "lesson-1"}, status: 422, fields: []string{"lesson_id"}},
		{name: "lesson of another course", body: map[string]any{"title": "Q", "questions": []any{question(nil)}, "lesson_id": otherLesson}, status: 422,
			fields: []string{"lesson_id"}, message: "is not a lesson of this course"},
		{name: "unknown field", body: map[string]any{"title": "Q", "questions": []any{question(nil)}, "timer": 60}, status: 400},
		{name: "not JSON", body: "quiz", status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", tc.body)
			p := assessProblem(t, res, tc.status, "", tc.fields...)
			if tc.message != "" {
				require.Equal(t, tc.message, p.Fields[0].Message)
			}
		})
	}
	require.Zero(t, f.count(t, `SELECT count(*) FROM quizzes`), "nothing refused was written")
	require.Equal(t, 1, f.draftRevision(t))
}

func TestQuizVisibility(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newAssessFixture(t, h)
	q := f.createQuiz(t, statsQuiz(nil))
	path := "/api/v1/quizzes/" + q.ID

	// Before a publish lists it, learners do not see it.
	assessProblem(t, f.h.Do(f.learner, "GET", path, nil), 404, "not-found")
	f.publish(t)
	res := f.h.Do(f.learner, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	require.NotContains(t, string(res.Body), `"correct"`, "learners never see the answers")
	var got courses.Quiz
	res.JSON(t, &got)
	require.Len(t, got.Questions, 3)
	require.Len(t, got.Questions[1].Options, 3)

	// A quiz added after the publish waits for the next one.
	later := f.createQuiz(t, statsQuiz(map[string]any{"title": "Later"}))
	assessProblem(t, f.h.Do(f.learner, "GET", "/api/v1/quizzes/"+later.ID, nil), 404, "not-found")
	// An instructor who does not teach the course reads it as a learner.
	res = f.h.Do(f.outsider, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	require.NotContains(t, string(res.Body), `"correct"`)

	// Another institution's quiz is not there.
	other := newAssessFixture(t, h)
	assessProblem(t, h.Do(other.admin, "GET", path, nil), 404, "not-found")
	assessProblem(t, h.Do(f.learner, "GET", "/api/v1/quizzes/not-a-uuid", nil), 404, "not-found")
}

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
		p := assessProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{"answers": tc.answers}), 422, "", tc.field)
		require.Equal(t, tc.message, p.Fields[0].Message, tc.name)
	}
	assessProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{}), 422, "", "answers")
	assessProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{"answers": map[string]any{"q1": "a"}}), 422, "")
	require.Equal(t, 3, f.count(t, `SELECT count(*) FROM quiz_attempts`))

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
	assessProblem(t, f.h.Do(f.learner, "GET", path+"?cursor=bogus", nil), 422, "", "cursor")
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
	assessProblem(t, f.h.Do(f.learner, "POST", path, answers), 404, "not-found")
	f.publish(t)

	stranger := plugintest.User(f.tenant, "learner")
	assessProblem(t, f.h.Do(stranger, "POST", path, answers), 404, "not_enrolled")
	waiting := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, waiting, "waitlisted")
	assessProblem(t, f.h.Do(waiting, "POST", path, answers), 409, "enrolment_waitlisted")
	left := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, left, "withdrawn")
	assessProblem(t, f.h.Do(left, "POST", path, answers), 404, "not_enrolled")
	assessProblem(t, f.h.Do(plugintest.APIKey(f.tenant, courses.PermEnrolSelf), "POST", path, answers), 403, "")
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
	assessProblem(t, attempt(limited), 409, "attempts_exhausted")
	require.Equal(t, 2, f.count(t, `SELECT count(*) FROM quiz_attempts WHERE quiz_id = $1`, limited.ID), "a refused attempt writes nothing")

	// A quiz without a limit takes the institution's default_quiz_attempts.
	h.SetTenantConfig(f.tenant, json.RawMessage(`{"default_quiz_attempts": 1}`))
	require.Equal(t, http.StatusCreated, attempt(byDefault).Status)
	assessProblem(t, attempt(byDefault), 409, "attempts_exhausted")
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

func TestPatchAndDeleteQuiz(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	q := f.createQuiz(t, statsQuiz(nil))
	path := "/api/v1/quizzes/" + q.ID
	rev := f.draftRevision(t)

	res := f.h.Do(f.instructor, "PATCH", path, map[string]any{"title": "Checkpoint", "pass_mark": 40, "lesson_id": f.lessonID})
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Quiz
	res.JSON(t, &got)
	require.Equal(t, "Checkpoint", got.Title)
	require.Equal(t, 40, *got.PassMark)
	require.Equal(t, f.lessonID, got.LessonID)
	require.Len(t, got.Questions, 3, "absent fields stay")
	require.Equal(t, rev+1, f.draftRevision(t))
	// null clears.
	res = f.h.Do(f.instructor, "PATCH", path, map[string]any{"pass_mark": nil, "lesson_id": nil, "questions": statsQuiz(nil)["questions"].([]map[string]any)[:1]})
	require.Equal(t, http.StatusOK, res.Status, res)
	got = courses.Quiz{}
	res.JSON(t, &got)
	require.Nil(t, got.PassMark)
	require.Empty(t, got.LessonID)
	require.Len(t, got.Questions, 1)
	assessProblem(t, f.h.Do(f.instructor, "PATCH", path, map[string]any{"questions": []any{}, "max_attempts": 0}), 422, "", "questions", "max_attempts")
	assessProblem(t, f.h.Do(f.instructor, "PATCH", path, map[string]any{"pass_mark": "high"}), 422, "", "pass_mark")
	assessProblem(t, f.h.Do(f.outsider, "PATCH", path, map[string]any{"title": "Mine"}), 404, "not-found")

	// Published and attempted: questions are fixed, the quiz stays.
	f.publish(t)
	f.enrol(t, f.courseID, f.learner, "active")
	require.Equal(t, http.StatusCreated, f.h.Do(f.learner, "POST", path+"/attempts", map[string]any{"answers": map[string]any{}}).Status)
	assessProblem(t, f.h.Do(f.instructor, "PATCH", path, map[string]any{"questions": statsQuiz(nil)["questions"]}), 409, "quiz_attempted")
	assessProblem(t, f.h.Do(f.outsider, "PATCH", path, map[string]any{"title": "Mine"}), 403, "forbidden")
	res = f.h.Do(f.instructor, "PATCH", path, map[string]any{"max_attempts": 9})
	require.Equal(t, http.StatusOK, res.Status, res)
	assessProblem(t, f.h.Do(f.instructor, "DELETE", path, nil), 409, "quiz_published")

	// A quiz only in the draft goes.
	draft := f.createQuiz(t, statsQuiz(map[string]any{"title": "Draft only"}))
	assessProblem(t, f.h.Do(f.learner, "DELETE", "/api/v1/quizzes/"+draft.ID, nil), 403, "permission-denied")
	require.Equal(t, http.StatusNoContent, f.h.Do(f.instructor, "DELETE", "/api/v1/quizzes/"+draft.ID, nil).Status)
	assessProblem(t, f.h.Do(f.instructor, "GET", "/api/v1/quizzes/"+draft.ID, nil), 404, "not-found")
}
