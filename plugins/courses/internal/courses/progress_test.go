package courses_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// A learner works through a course without assessments: lesson
// prerequisites hold, each completion publishes once, and the last one
// completes the course at 100%.
func TestLessonCompletionAndProgress(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 3, lessonPrereqs: map[int][]int{2: {0, 1}}})
	other := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID})
	base := "/api/v1/enrolments/" + e.ID + "/lessons/"
	complete := func(lesson string, body any) courses.LessonProgress {
		t.Helper()
		res := h.Do(learner, "POST", base+lesson+"/complete", body)
		require.Equal(t, http.StatusOK, res.Status, res)
		var lp courses.LessonProgress
		res.JSON(t, &lp)
		return lp
	}

	// The third lesson needs the first two.
	p := requireProblem(t, h.Do(learner, "POST", base+c.Lessons[2]+"/complete", nil), http.StatusConflict, "lesson_prerequisites_incomplete")
	require.Contains(t, p.Detail, c.Lessons[0])
	require.Contains(t, p.Detail, c.Lessons[1])
	require.Equal(t, []string{"prerequisites.0", "prerequisites.1"}, p.FieldNames())

	lp := complete(c.Lessons[0], map[string]any{"time_spent_seconds": 120})
	require.Equal(t, c.Lessons[0], lp.Lesson.LessonID)
	require.Equal(t, "Lesson 1", lp.Lesson.Title)
	require.NotNil(t, lp.Lesson.CompletedAt)
	require.Equal(t, 120, lp.Lesson.TimeSpentSeconds)
	require.Equal(t, 1, lp.Progress.LessonsCompleted)
	require.Equal(t, 3, lp.Progress.LessonsRequired)
	require.Equal(t, 33, lp.Progress.Percent)
	require.EqualValues(t, 120, lp.Progress.TimeSpentSeconds)
	done := eventsOf[courses.LessonCompleted](t, h, tenant, courses.EventLessonCompleted)
	require.Len(t, done, 1)
	require.Equal(t, courses.LessonCompleted{EnrolmentID: e.ID, CourseID: c.ID, LessonID: c.Lessons[0], UserID: learner.UserID,
		TimeSpentSeconds: 120, CompletedAt: done[0].CompletedAt}, done[0])
	require.True(t, done[0].CompletedAt.Equal(*lp.Lesson.CompletedAt))

	// Completing again: the same state, no event, no time added.
	again := complete(c.Lessons[0], map[string]any{"time_spent_seconds": 60})
	require.Equal(t, lp.Lesson, again.Lesson)
	require.Equal(t, lp.Progress.Percent, again.Progress.Percent)
	require.Len(t, eventsOf[courses.LessonCompleted](t, h, tenant, courses.EventLessonCompleted), 1)

	// Time spent without completing.
	res := h.Do(learner, "POST", base+c.Lessons[1]+"/time", map[string]any{"seconds": 45})
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &lp)
	require.Nil(t, lp.Lesson.CompletedAt)
	require.Equal(t, 45, lp.Lesson.TimeSpentSeconds)
	require.EqualValues(t, 165, lp.Progress.TimeSpentSeconds)
	require.Equal(t, 33, lp.Progress.Percent)
	for _, body := range []any{map[string]any{}, map[string]any{"seconds": 0}, map[string]any{"seconds": 86401}, map[string]any{"seconds": "10"}} {
		res := h.Do(learner, "POST", base+c.Lessons[1]+"/time", body)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	}
	res = h.Do(learner, "POST", base+c.Lessons[1]+"/complete", map[string]any{"time_spent_seconds": 86401})
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	requireProblem(t, h.Do(learner, "POST", base+c.Lessons[1]+"/complete", map[string]any{"time": 1}), http.StatusUnprocessableEntity, "invalid-request", "time")

	// Not a lesson of this course's published version; not one's own enrolment.
	requireProblem(t, h.Do(learner, "POST", base+other.Lessons[0]+"/complete", nil), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(learner, "POST", base+plugintest.NewID()+"/time", map[string]any{"seconds": 5}), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(admin, "POST", base+c.Lessons[1]+"/complete", nil), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(b.member(tenant, "learner"), "GET", "/api/v1/enrolments/"+e.ID+"/progress", nil), http.StatusNotFound, "not-found")

	complete(c.Lessons[1], nil)
	require.Empty(t, eventsOf[courses.CourseCompleted](t, h, tenant, courses.EventCourseCompleted))
	lp = complete(c.Lessons[2], map[string]any{"time_spent_seconds": 0})
	require.Equal(t, 100, lp.Progress.Percent)
	require.NotNil(t, lp.Progress.CompletedAt)
	require.Len(t, eventsOf[courses.LessonCompleted](t, h, tenant, courses.EventLessonCompleted), 3)
	completed := eventsOf[courses.CourseCompleted](t, h, tenant, courses.EventCourseCompleted)
	require.Len(t, completed, 1)
	require.Equal(t, e.ID, completed[0].EnrolmentID)
	require.Equal(t, 1, completed[0].Version)
	got := fetchEnrolment(t, h, learner, e.ID)
	require.Equal(t, "completed", got.Status)
	require.NotNil(t, got.CompletedAt)

	// A completed enrolment may still record time; it completes once.
	res = h.Do(learner, "POST", base+c.Lessons[0]+"/time", map[string]any{"seconds": 30})
	require.Equal(t, http.StatusOK, res.Status, res)
	require.Len(t, eventsOf[courses.CourseCompleted](t, h, tenant, courses.EventCourseCompleted), 1)

	// The progress view: the snapshot and every lesson in course order.
	res = h.Do(learner, "GET", "/api/v1/enrolments/"+e.ID+"/progress", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var ep courses.EnrolmentProgress
	res.JSON(t, &ep)
	require.Equal(t, 100, ep.Progress.Percent)
	require.EqualValues(t, 195, ep.Progress.TimeSpentSeconds)
	require.Len(t, ep.Lessons, 3)
	for i, l := range ep.Lessons {
		require.Equal(t, c.Lessons[i], l.LessonID)
		require.Equal(t, c.ModuleID, l.ModuleID)
		require.NotNil(t, l.CompletedAt)
	}
	require.Equal(t, []int{150, 45, 0}, []int{ep.Lessons[0].TimeSpentSeconds, ep.Lessons[1].TimeSpentSeconds, ep.Lessons[2].TimeSpentSeconds})
	res = h.Do(admin, "GET", "/api/v1/enrolments/"+e.ID+"/progress", nil)
	require.Equal(t, http.StatusOK, res.Status, "courses.enrolment.manage reads anyone's: %s", res)

	// The dashboard shows the same snapshot.
	dash := fetchEnrolment(t, h, learner, e.ID)
	require.Equal(t, ep.Progress.Percent, dash.Progress.Percent)
	require.Equal(t, ep.Progress.TimeSpentSeconds, dash.Progress.TimeSpentSeconds)
}

// Completing a lesson from two tabs at once publishes once: the
// enrolment's row lock serialises them.
func TestLessonCompletedOnceUnderRace(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID})
	const n = 6
	statuses := make(chan int, n)
	for range n {
		go func() {
			statuses <- h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+c.Lessons[0]+"/complete", map[string]any{"time_spent_seconds": 10}).Status
		}()
	}
	for range n {
		require.Equal(t, http.StatusOK, <-statuses)
	}
	require.Len(t, eventsOf[courses.LessonCompleted](t, h, tenant, courses.EventLessonCompleted), 1)
	require.Len(t, eventsOf[courses.CourseCompleted](t, h, tenant, courses.EventCourseCompleted), 1)
	require.Equal(t, 10, count(t, h, `SELECT time_spent_seconds FROM plugin_courses.lesson_progress WHERE enrolment_id = $1`, e.ID))
}
