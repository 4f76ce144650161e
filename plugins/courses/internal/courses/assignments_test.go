package courses_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// reportRubric: Method (0, 5, 10) and Writing (0, 5); at best 15 points.
var reportRubric = map[string]any{
	"title": "Report",
	"criteria": []map[string]any{
		{"title": "Method", "description": "Is the method sound?", "levels": []map[string]any{
			{"title": "Weak", "points": 0}, {"title": "Fair", "points": 5}, {"title": "Sound", "points": 10}}},
		{"title": "Writing", "levels": []map[string]any{{"title": "Poor", "points": 0}, {"title": "Good", "points": 5}}},
	},
}

// createRubric creates reportRubric for a course through the API.
func (f *assessFixture) createRubric(t *testing.T, courseID string) courses.Rubric {
	t.Helper()
	res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+courseID+"/rubrics", reportRubric)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var r courses.Rubric
	res.JSON(t, &r)
	return r
}

// createAssignment creates an assignment of the fixture's course graded
// with rubric, due at due, with the given extra fields.
func (f *assessFixture) createAssignment(t *testing.T, rubric courses.Rubric, due time.Time, extra map[string]any) courses.Assignment {
	t.Helper()
	body := map[string]any{"title": "A small report", "instructions": "Ask one question.", "rubric_id": rubric.ID, "due_at": due.UTC().Format(time.RFC3339)}
	for k, v := range extra {
		body[k] = v
	}
	res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/assignments", body)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a courses.Assignment
	res.JSON(t, &a)
	return a
}

func TestCreateRubric(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	r := f.createRubric(t, f.courseID)
	require.NoError(t, uuid.Validate(r.ID))
	require.Equal(t, f.courseID, r.CourseID)
	require.Equal(t, 15, r.MaxScore)
	require.Len(t, r.Criteria, 2)
	require.Equal(t, "Is the method sound?", r.Criteria[0].Description)
	ids := map[string]bool{}
	for _, c := range r.Criteria {
		require.NoError(t, uuid.Validate(c.ID), "the server names criteria")
		ids[c.ID] = true
		for _, l := range c.Levels {
			require.NoError(t, uuid.Validate(l.ID), "and levels")
			ids[l.ID] = true
		}
	}
	require.Len(t, ids, 7, "every ID is new")
	require.Equal(t, 10, r.Criteria[0].Levels[2].Points)

	level := func(points any) map[string]any { return map[string]any{"title": "L", "points": points} }
	for _, tc := range []struct {
		name   string
		body   any
		fields []string
	}{
		{"no criteria", map[string]any{"title": "R", "criteria": []any{}}, []string{"criteria"}},
		{"one level", map[string]any{"title": "R", "criteria": []any{map[string]any{"title": "C", "levels": []any{level(1)}}}}, []string{"criteria[0].levels"}},
		{"points out of range and missing", map[string]any{"title": "", "criteria": []any{
			map[string]any{"title": "C", "levels": []any{level(-1), level(1001)}},
			map[string]any{"title": "", "levels": []any{level(0), map[string]any{"title": "L"}}},
		}}, []string{"title", "criteria[0].levels[0].points", "criteria[0].levels[1].points", "criteria[1].title", "criteria[1].levels[1].points"}},
		{"worth nothing", map[string]any{"title": "R", "criteria": []any{map[string]any{"title": "C", "levels": []any{level(0), level(0)}}}}, []string{"criteria"}},
		{"eleven levels", map[string]any{"title": "R", "criteria": []any{map[string]any{"title": "C", "levels": []any{
			level(0), level(1), level(2), level(3), level(4), level(5), level(6), level(7), level(8), level(9), level(10)}}}}, []string{"criteria[0].levels"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assessProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", tc.body), 422, "", tc.fields...)
		})
	}
	assessProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", map[string]any{"title": "R", "criteria": []any{
		map[string]any{"title": "C", "id": "mine", "levels": []any{level(0), level(1)}}}}), 400, "")
	assessProblem(t, f.h.Do(f.learner, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", reportRubric), 403, "permission-denied")
	assessProblem(t, f.h.Do(f.outsider, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", reportRubric), 404, "not-found")
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM rubrics`))
}

// Rubric transparency: learners enrolled in the course read its rubrics.
func TestRubricVisibility(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newAssessFixture(t, h)
	r := f.createRubric(t, f.courseID)
	path := "/api/v1/rubrics/" + r.ID

	for _, p := range []struct {
		name   string
		status int
		who    func() (res *plugintest.Result)
	}{
		{"the instructor", 200, func() *plugintest.Result { return f.h.Do(f.instructor, "GET", path, nil) }},
		{"the admin", 200, func() *plugintest.Result { return f.h.Do(f.admin, "GET", path, nil) }},
		{"a learner not enrolled", 404, func() *plugintest.Result { return f.h.Do(f.learner, "GET", path, nil) }},
		{"an instructor of other courses", 404, func() *plugintest.Result { return f.h.Do(f.outsider, "GET", path, nil) }},
	} {
		require.Equal(t, p.status, p.who().Status, p.name)
	}
	f.enrol(t, f.courseID, f.learner, "active")
	res := f.h.Do(f.learner, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Rubric
	res.JSON(t, &got)
	require.Equal(t, r, got)

	// Once a published assignment is graded with it, whoever may read the
	// assignment may read the rubric.
	f.createAssignment(t, r, time.Now().Add(48*time.Hour), nil)
	f.publish(t)
	require.Equal(t, http.StatusOK, f.h.Do(f.outsider, "GET", path, nil).Status)

	other := newAssessFixture(t, h)
	assessProblem(t, h.Do(other.admin, "GET", path, nil), 404, "not-found")
}

func TestCreateAssignment(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newAssessFixture(t, h)
	r := f.createRubric(t, f.courseID)
	otherCourse, _, _ := f.addCourse(t)
	foreign := f.createRubric(t, otherCourse)
	rev := f.draftRevision(t)
	due := time.Date(2031, 3, 1, 17, 0, 0, 0, time.FixedZone("CET", 3600))

	a := f.createAssignment(t, r, due, map[string]any{"late_policy": "penalty", "late_penalty_percent": 10, "late_cutoff_days": 3, "pass_mark": 60, "lesson_id": f.lessonID})
	require.NotEmpty(t, a.ID)
	require.True(t, a.DueAt.Equal(due))
	require.Equal(t, "UTC", a.DueAt.Location().String())
	require.Equal(t, "penalty", a.LatePolicy)
	require.Equal(t, 10, a.LatePenaltyPercent)
	require.Equal(t, 3, a.LateCutoffDays)
	require.Equal(t, 60, *a.PassMark)
	require.True(t, a.Required)
	require.Equal(t, f.lessonID, a.LessonID)
	require.Equal(t, r.ID, a.Rubric.ID, "the answer includes the rubric")
	require.Equal(t, rev+1, f.draftRevision(t), "an assignment changes the draft")
	plain := f.createAssignment(t, r, due, map[string]any{"required": false})
	require.Equal(t, "none", plain.LatePolicy)
	require.Nil(t, plain.PassMark)

	base := func(changes map[string]any) map[string]any {
		b := map[string]any{"title": "Report", "rubric_id": r.ID, "due_at": "2031-03-01T17:00:00Z"}
		for k, v := range changes {
			b[k] = v
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		body   any
		fields []string
	}{
		{"rubric of another course", base(map[string]any{"rubric_id": foreign.ID}), []string{"rubric_id"}},
		{"unknown rubric", base(map[string]any{"rubric_id": plugintest.NewID()}), []string{"rubric_id"}},
		{"no rubric", base(map[string]any{"rubric_id": ""}), []string{"rubric_id"}},
		{"due date not RFC 3339", base(map[string]any{"due_at": "next Friday"}), []string{"due_at"}},
		{"penalty without the penalty policy", base(map[string]any{"late_penalty_percent": 10, "late_cutoff_days": 2}), []string{"late_penalty_percent", "late_cutoff_days"}},
		{"penalty out of range", base(map[string]any{"late_policy": "penalty", "late_penalty_percent": 101, "late_cutoff_days": 366}), []string{"late_penalty_percent", "late_cutoff_days"}},
		{"unknown policy", base(map[string]any{"late_policy": "lenient"}), []string{"late_policy"}},
		{"long title, pass mark", base(map[string]any{"title": strings.Repeat("t", 201), "pass_mark": -1}), []string{"title", "pass_mark"}},
		{"lesson not a UUID", base(map[string]any{"lesson_id": "1"}), []string{"lesson_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assessProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/assignments", tc.body), 422, "", tc.fields...)
		})
	}
	require.Equal(t, 2, f.count(t, `SELECT count(*) FROM assignments`))
	assessProblem(t, f.h.Do(f.outsider, "POST", "/api/v1/courses/"+f.courseID+"/assignments", base(nil)), 404, "not-found")

	// Learners see an assignment once a published version lists it.
	path := "/api/v1/assignments/" + a.ID
	assessProblem(t, f.h.Do(f.learner, "GET", path, nil), 404, "not-found")
	res := f.h.Do(f.instructor, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	f.publish(t)
	res = f.h.Do(f.learner, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Assignment
	res.JSON(t, &got)
	require.Equal(t, a.ID, got.ID)
	require.Equal(t, r, *got.Rubric, "with its rubric")

	other := newAssessFixture(t, h)
	assessProblem(t, h.Do(other.admin, "GET", path, nil), 404, "not-found")
	assessProblem(t, h.Do(other.admin, "POST", "/api/v1/courses/"+f.courseID+"/assignments", base(nil)), 404, "not-found")
}
