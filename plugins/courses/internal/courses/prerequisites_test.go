package courses_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestCoursePrerequisites(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	a := newCourse(t, h, b.teacher, "Arithmetic")
	bc := newCourse(t, h, b.teacher, "Basic algebra")
	c := newCourse(t, h, b.teacher, "Calculus")
	put := func(courseID string, ids ...string) *plugintest.Result {
		if ids == nil {
			ids = []string{}
		}
		return h.Do(b.teacher, "PUT", "/api/v1/courses/"+courseID+"/prerequisites", map[string]any{"course_ids": ids})
	}
	edges := func() int {
		return count(t, h, `SELECT count(*) FROM plugin_courses.course_prerequisites WHERE tenant_id = $1`, b.tenant)
	}

	// Calculus needs algebra, which needs arithmetic (duplicates and case do not matter).
	res := put(c.ID, bc.ID, strings.ToUpper(bc.ID))
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.CoursePrerequisites
	res.JSON(t, &got)
	require.Equal(t, courses.CoursePrerequisites{CourseID: c.ID, CourseIDs: []string{bc.ID}}, got)
	require.Equal(t, http.StatusOK, put(bc.ID, a.ID).Status)
	require.Equal(t, 2, edges())
	var d courses.Draft
	do(t, h, b.teacher, "GET", "/api/v1/courses/"+c.ID+"/draft", nil, http.StatusOK).JSON(t, &d)
	require.Equal(t, []string{bc.ID}, d.Content.Prerequisites, "the draft holds them until published")
	rev := getCourse(t, h, b.teacher, c.ID).DraftRevision

	// Cycles are refused, naming the path, and nothing is written.
	for _, tc := range []struct {
		name   string
		course string
		ids    []string
		path   []string
	}{
		{"self", a.ID, []string{a.ID}, []string{"Arithmetic", "Arithmetic"}},
		{"direct", bc.ID, []string{c.ID}, []string{"Basic algebra", "Calculus", "Basic algebra"}},
		{"indirect", a.ID, []string{c.ID}, []string{"Arithmetic", "Calculus", "Basic algebra", "Arithmetic"}},
		{"among others", a.ID, []string{bc.ID, plugintest.NewID()}, nil}, // the unknown ID is named first
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := put(tc.course, tc.ids...)
			require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
			if tc.path == nil {
				require.Equal(t, "unknown_prerequisite", res.Problem().Code)
				return
			}
			pr := res.Problem()
			require.Equal(t, "prerequisite_cycle", pr.Code, res)
			var quoted []string
			for _, title := range tc.path {
				quoted = append(quoted, `"`+title+`"`)
			}
			names := pr.Detail[strings.Index(pr.Detail, `"`):]
			var titles []string
			for _, part := range strings.Split(names, " → ") {
				titles = append(titles, part[:strings.LastIndex(part, " (")])
			}
			require.Equal(t, quoted, titles, pr.Detail)
		})
	}
	require.Equal(t, 2, edges())
	require.Equal(t, rev, getCourse(t, h, b.teacher, c.ID).DraftRevision)

	// IDs that name no course of the institution are named.
	foreign := newCourse(t, h, plugintest.User(plugintest.NewTenant(), "instructor"), "Elsewhere")
	missing := plugintest.NewID()
	res = put(a.ID, bc.ID, foreign.ID, "not-a-uuid")
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	require.Equal(t, []string{"course_ids.2"}, res.Problem().FieldNames())
	res = put(a.ID, foreign.ID, missing)
	pr := requireProblem(t, res, http.StatusUnprocessableEntity, "unknown_prerequisite")
	require.Equal(t, []string{"course_ids.0", "course_ids.1"}, pr.FieldNames())
	require.Contains(t, pr.Detail, foreign.ID)
	require.Contains(t, pr.Detail, missing)
	require.Equal(t, http.StatusUnprocessableEntity, h.Do(b.teacher, "PUT", "/api/v1/courses/"+a.ID+"/prerequisites", map[string]any{}).Status)
	require.Equal(t, 2, edges())

	// Who may change them.
	requireProblem(t, h.Do(b.learner, "PUT", "/api/v1/courses/"+a.ID+"/prerequisites", map[string]any{"course_ids": []string{}}), http.StatusForbidden, "")
	requireProblem(t, h.Do(b.otherTeacher, "PUT", "/api/v1/courses/"+a.ID+"/prerequisites", map[string]any{"course_ids": []string{}}), http.StatusNotFound, "")
	requireProblem(t, h.Do(plugintest.User(plugintest.NewTenant(), "admin"), "PUT", "/api/v1/courses/"+a.ID+"/prerequisites",
		map[string]any{"course_ids": []string{}}), http.StatusNotFound, "")

	// An empty list clears them; then what was a cycle is fine.
	require.Equal(t, http.StatusOK, put(c.ID).Status)
	require.Equal(t, 1, edges())
	require.Equal(t, http.StatusOK, put(bc.ID, c.ID).Status)
	require.Equal(t, 1, edges(), "algebra now needs calculus instead of arithmetic")
}

// Two edits that are each fine alone but close a cycle together: one of
// them must lose, whatever the timing.
func TestCoursePrerequisitesConcurrent(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	for round := range 5 {
		x := newCourse(t, h, b.teacher, "X")
		y := newCourse(t, h, b.teacher, "Y")
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, pair := range [][2]string{{x.ID, y.ID}, {y.ID, x.ID}} {
			wg.Go(func() {
				statuses[i] = h.Do(b.admin, "PUT", "/api/v1/courses/"+pair[0]+"/prerequisites", map[string]any{"course_ids": []string{pair[1]}}).Status
			})
		}
		wg.Wait()
		slices.Sort(statuses)
		require.Equal(t, []int{http.StatusOK, http.StatusUnprocessableEntity}, statuses, "round %d", round)
		require.Equal(t, 1, count(t, h, `SELECT count(*) FROM plugin_courses.course_prerequisites WHERE course_id = ANY($1::uuid[])`,
			[]string{x.ID, y.ID}))
	}
}

func TestLessonPrerequisites(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	c := newCourse(t, h, b.teacher, "Chemistry")
	m := newModule(t, h, b.teacher, c.ID, "Basics")
	l1 := newLesson(t, h, b.teacher, c.ID, m.ID, "Atoms")
	l2 := newLesson(t, h, b.teacher, c.ID, m.ID, "Molecules")
	l3 := newLesson(t, h, b.teacher, c.ID, m.ID, "Reactions")
	other := newCourse(t, h, b.teacher, "Physics")
	om := newModule(t, h, b.teacher, other.ID, "Basics")
	foreignLesson := newLesson(t, h, b.teacher, other.ID, om.ID, "Forces")
	put := func(lessonID string, ids ...string) *plugintest.Result {
		if ids == nil {
			ids = []string{}
		}
		return h.Do(b.teacher, "PUT", "/api/v1/courses/"+c.ID+"/lessons/"+lessonID+"/prerequisites", map[string]any{"lesson_ids": ids})
	}
	edges := func() int {
		return count(t, h, `SELECT count(*) FROM plugin_courses.lesson_prerequisites WHERE tenant_id = $1`, b.tenant)
	}

	res := put(l3.ID, l2.ID, l1.ID)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.LessonPrerequisites
	res.JSON(t, &got)
	want := []string{l1.ID, l2.ID}
	slices.Sort(want)
	require.Equal(t, courses.LessonPrerequisites{CourseID: c.ID, LessonID: l3.ID, LessonIDs: want}, got)
	require.Equal(t, http.StatusOK, put(l2.ID, l1.ID).Status)
	var lesson courses.Lesson
	do(t, h, b.teacher, "GET", "/api/v1/courses/"+c.ID+"/lessons/"+l3.ID, nil, http.StatusOK).JSON(t, &lesson)
	require.Equal(t, want, lesson.Prerequisites)

	pr := requireProblem(t, put(l1.ID, l3.ID), http.StatusUnprocessableEntity, "prerequisite_cycle")
	require.Contains(t, pr.Detail, `"Atoms" (`+l1.ID+`) → "Reactions" (`+l3.ID+`) → "Atoms" (`+l1.ID+`)`)
	requireProblem(t, put(l1.ID, l2.ID), http.StatusUnprocessableEntity, "prerequisite_cycle")
	pr = requireProblem(t, put(l2.ID, l2.ID), http.StatusUnprocessableEntity, "prerequisite_cycle")
	require.Contains(t, pr.Detail, `"Molecules" (`+l2.ID+`) → "Molecules" (`+l2.ID+`)`)
	require.Equal(t, 3, edges())

	// Only lessons of the same course.
	missing := plugintest.NewID()
	pr = requireProblem(t, put(l1.ID, foreignLesson.ID, missing), http.StatusUnprocessableEntity, "unknown_prerequisite")
	require.Equal(t, []string{"lesson_ids.0", "lesson_ids.1"}, pr.FieldNames())
	require.Contains(t, pr.Fields[0].Message, "another course")
	require.Contains(t, pr.Detail, missing)
	require.Equal(t, 3, edges())
	requireProblem(t, h.Do(b.teacher, "PUT", "/api/v1/courses/"+c.ID+"/lessons/"+foreignLesson.ID+"/prerequisites",
		map[string]any{"lesson_ids": []string{}}), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.teacher, "PUT", "/api/v1/courses/"+c.ID+"/lessons/"+l1.ID+"/prerequisites",
		map[string]any{"lesson_ids": []string{l2.ID}, "extra": 1}), http.StatusUnprocessableEntity, "invalid-request", "extra")

	// A deleted lesson's prerequisites go with it.
	do(t, h, b.teacher, "DELETE", "/api/v1/courses/"+c.ID+"/lessons/"+l2.ID, nil, http.StatusNoContent)
	require.Equal(t, 1, edges())
	require.Equal(t, http.StatusOK, put(l3.ID).Status)
	require.Zero(t, edges())
}
