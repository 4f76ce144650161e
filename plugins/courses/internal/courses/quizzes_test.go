package courses_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

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
	requireProblem(t, f.h.Do(f.learner, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", statsQuiz(nil)), 403, "permission-denied")
	requireProblem(t, f.h.Do(f.outsider, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", statsQuiz(nil)), 404, "not-found")
	requireProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+plugintest.NewID()+"/quizzes", statsQuiz(nil)), 404, "not-found")
	requireProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/nope/quizzes", statsQuiz(nil)), 404, "not-found")
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
		// What the schema of a question says, the kernel checks first.
		{name: "single with none correct", body: body(question(map[string]any{"correct": []string{}})), status: 422,
			fields: []string{"questions.0.correct"}, message: "must have at least 1 item"},
		{name: "multiple with none correct", body: body(question(map[string]any{"kind": "multiple", "correct": nil})), status: 422,
			fields: []string{"questions.0.correct"}, message: "is required"},
		{name: "one option", body: body(question(map[string]any{"options": []map[string]any{{"id": "a", "text": "A"}}})), status: 422,
			fields: []string{"questions.0.options"}, message: "must have at least 2 items"},
		{name: "question id too long", body: body(question(map[string]any{"id": strings.Repeat("q", 65)})), status: 422,
			fields: []string{"questions.0.id"}, message: "must be at most 64 characters long"},
		{name: "empty option text and prompt", body: body(question(map[string]any{"prompt": "", "options": []map[string]any{{"id": "a", "text": ""}, {"id": "b", "text": "B"}}})), status: 422,
			fields: []string{"questions.0.prompt", "questions.0.options.0.text"}},
		{name: "points out of range", body: body(question(map[string]any{"points": 0}), question(map[string]any{"id": "q2", "points": 101})), status: 422,
			fields: []string{"questions.0.points", "questions.1.points"}},
		{name: "unknown kind", body: body(question(map[string]any{"kind": "essay"})), status: 422, fields: []string{"questions.0.kind"},
			message: "must be one of: single, multiple"},
		{name: "no questions", body: body(), status: 422, fields: []string{"questions"}},
		{name: "settings out of range", body: map[string]any{"title": "", "questions": []any{question(nil)}, "pass_mark": 101, "max_attempts": 0}, status: 422,
			fields: []string{"title", "pass_mark", "max_attempts"}},
		{name: "lesson not a UUID", body: map[string]any{"title": "Q", "questions": []any{question(nil)}, "lesson_id": "lesson-1"}, status: 422, fields: []string{"lesson_id"}},
		{name: "unknown field", body: map[string]any{"title": "Q", "questions": []any{question(nil)}, "timer": 60}, status: 422, fields: []string{"timer"},
			message: "is not a known field"},
		// What it cannot say, the plugin checks.
		{name: "single with two correct", body: body(question(map[string]any{"correct": []string{"a", "b"}})), status: 422,
			fields: []string{"questions.0.correct"}, message: "a single-choice question needs exactly one correct option"},
		{name: "unknown correct option", body: body(question(map[string]any{"correct": []string{"z"}})), status: 422,
			fields: []string{"questions.0.correct"}, message: `unknown option id "z"`},
		{name: "correct option twice", body: body(question(map[string]any{"kind": "multiple", "correct": []string{"a", "a"}})), status: 422,
			fields: []string{"questions.0.correct"}, message: `option "a" is listed twice`},
		{name: "duplicate question ids", body: body(question(nil), question(nil)), status: 422,
			fields: []string{"questions.1.id"}, message: "repeats the id of questions.0"},
		{name: "duplicate option ids", body: body(question(map[string]any{"options": []map[string]any{{"id": "a", "text": "A"}, {"id": "a", "text": "B"}}})), status: 422,
			fields: []string{"questions.0.options.1.id"}},
		{name: "blank prompt and option text", body: body(question(map[string]any{"prompt": " ", "options": []map[string]any{{"id": "a", "text": "\t"}, {"id": "b", "text": "B"}}})), status: 422,
			fields: []string{"questions.0.prompt", "questions.0.options.0.text"}, message: "must not be blank"},
		{name: "blank title", body: map[string]any{"title": "  ", "questions": []any{question(nil)}}, status: 422, fields: []string{"title"}},
		{name: "lesson of another course", body: map[string]any{"title": "Q", "questions": []any{question(nil)}, "lesson_id": otherLesson}, status: 422,
			fields: []string{"lesson_id"}, message: "is not a lesson of this course"},
		{name: "not JSON", body: "quiz", status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", tc.body)
			p := requireProblem(t, res, tc.status, "", tc.fields...)
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
	requireProblem(t, f.h.Do(f.learner, "GET", path, nil), 404, "not-found")
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
	requireProblem(t, f.h.Do(f.learner, "GET", "/api/v1/quizzes/"+later.ID, nil), 404, "not-found")
	// An instructor who does not teach the course reads it as a learner.
	res = f.h.Do(f.outsider, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	require.NotContains(t, string(res.Body), `"correct"`)

	// Another institution's quiz is not there.
	other := newAssessFixture(t, h)
	requireProblem(t, h.Do(other.admin, "GET", path, nil), 404, "not-found")
	requireProblem(t, h.Do(f.learner, "GET", "/api/v1/quizzes/not-a-uuid", nil), 404, "not-found")
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
	requireProblem(t, f.h.Do(f.instructor, "PATCH", path, map[string]any{"questions": []any{}, "max_attempts": 0}), 422, "", "questions", "max_attempts")
	requireProblem(t, f.h.Do(f.instructor, "PATCH", path, map[string]any{"pass_mark": "high"}), 422, "", "pass_mark")
	requireProblem(t, f.h.Do(f.outsider, "PATCH", path, map[string]any{"title": "Mine"}), 404, "not-found")

	// Published and attempted: questions are fixed, the quiz stays.
	f.publish(t)
	f.enrol(t, f.courseID, f.learner, "active")
	require.Equal(t, http.StatusCreated, f.h.Do(f.learner, "POST", path+"/attempts", map[string]any{"answers": map[string]any{}}).Status)
	requireProblem(t, f.h.Do(f.instructor, "PATCH", path, map[string]any{"questions": statsQuiz(nil)["questions"]}), 409, "quiz_attempted")
	requireProblem(t, f.h.Do(f.outsider, "PATCH", path, map[string]any{"title": "Mine"}), 403, "forbidden")
	res = f.h.Do(f.instructor, "PATCH", path, map[string]any{"max_attempts": 9})
	require.Equal(t, http.StatusOK, res.Status, res)
	requireProblem(t, f.h.Do(f.instructor, "DELETE", path, nil), 409, "quiz_published")

	// A quiz only in the draft goes.
	draft := f.createQuiz(t, statsQuiz(map[string]any{"title": "Draft only"}))
	requireProblem(t, f.h.Do(f.learner, "DELETE", "/api/v1/quizzes/"+draft.ID, nil), 403, "permission-denied")
	require.Equal(t, http.StatusNoContent, f.h.Do(f.instructor, "DELETE", "/api/v1/quizzes/"+draft.ID, nil).Status)
	requireProblem(t, f.h.Do(f.instructor, "GET", "/api/v1/quizzes/"+draft.ID, nil), 404, "not-found")
}
