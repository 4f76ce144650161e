package courses_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

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
		{"one level", map[string]any{"title": "R", "criteria": []any{map[string]any{"title": "C", "levels": []any{level(1)}}}}, []string{"criteria.0.levels"}},
		{"points out of range and missing", map[string]any{"title": "", "criteria": []any{
			map[string]any{"title": "C", "levels": []any{level(-1), level(1001)}},
			map[string]any{"title": "", "levels": []any{level(0), map[string]any{"title": "L"}}},
		}}, []string{"title", "criteria.0.levels.0.points", "criteria.0.levels.1.points", "criteria.1.title", "criteria.1.levels.1.points"}},
		{"worth nothing", map[string]any{"title": "R", "criteria": []any{map[string]any{"title": "C", "levels": []any{level(0), level(0)}}}}, []string{"criteria"}},
		{"eleven levels", map[string]any{"title": "R", "criteria": []any{map[string]any{"title": "C", "levels": []any{
			level(0), level(1), level(2), level(3), level(4), level(5), level(6), level(7), level(8), level(9), level(10)}}}}, []string{"criteria.0.levels"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", tc.body), 422, "", tc.fields...)
		})
	}
	requireProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", map[string]any{"title": "R", "criteria": []any{
		map[string]any{"title": "C", "id": "mine", "levels": []any{level(0), level(1)}}}}), 422, "invalid-request", "criteria.0.id")
	requireProblem(t, f.h.Do(f.learner, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", reportRubric), 403, "permission-denied")
	requireProblem(t, f.h.Do(f.outsider, "POST", "/api/v1/courses/"+f.courseID+"/rubrics", reportRubric), 404, "not-found")
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
	requireProblem(t, h.Do(other.admin, "GET", path, nil), 404, "not-found")
}
