package courses_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

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
			requireProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/assignments", tc.body), 422, "", tc.fields...)
		})
	}
	require.Equal(t, 2, f.count(t, `SELECT count(*) FROM assignments`))
	requireProblem(t, f.h.Do(f.outsider, "POST", "/api/v1/courses/"+f.courseID+"/assignments", base(nil)), 404, "not-found")

	// Learners see an assignment once a published version lists it.
	path := "/api/v1/assignments/" + a.ID
	requireProblem(t, f.h.Do(f.learner, "GET", path, nil), 404, "not-found")
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
	requireProblem(t, h.Do(other.admin, "GET", path, nil), 404, "not-found")
	requireProblem(t, h.Do(other.admin, "POST", "/api/v1/courses/"+f.courseID+"/assignments", base(nil)), 404, "not-found")
}
