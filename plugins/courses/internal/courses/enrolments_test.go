package courses_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestSelfEnrol(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{title: "Statistics"})

	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID})
	require.Equal(t, "active", e.Status)
	require.Equal(t, "self", e.Source)
	require.Equal(t, learner.UserID, e.UserID)
	require.Equal(t, "Statistics", e.CourseTitle)
	require.Equal(t, "user:"+learner.UserID, e.EnrolledBy)
	require.NotNil(t, e.ActivatedAt)
	require.Nil(t, e.WaitlistedAt)
	require.NotNil(t, e.Progress, "an active enrolment has its snapshot")
	require.Equal(t, 0, e.Progress.Percent)
	require.Equal(t, 2, e.Progress.LessonsRequired)

	created := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentCreated)
	require.Equal(t, []courses.EnrolmentChanged{{EnrolmentID: e.ID, CourseID: c.ID, UserID: learner.UserID, Status: "active", Source: "self"}}, created)

	res := h.Do(learner, "GET", "/api/v1/enrolments/"+e.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Enrolment
	res.JSON(t, &got)
	require.Equal(t, e, got)

	// Enrolling twice writes nothing and publishes nothing.
	events := len(h.Published(t, tenant))
	p := requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": strings.ToUpper(c.ID)}), http.StatusConflict, "already_enrolled")
	require.Contains(t, p.Detail, e.ID)
	require.Equal(t, 1, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE course_id = $1`, c.ID))
	require.Len(t, h.Published(t, tenant), events)

	// After withdrawing, the learner may enrol again: a new enrolment.
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	again := enrolAs(t, h, learner, map[string]any{"course_id": c.ID})
	require.NotEqual(t, e.ID, again.ID)
}

func TestEnrolValidation(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	draft := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{draft: true})
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		fields []string
	}{
		{name: "no course", body: map[string]any{}, status: 422, fields: []string{"course_id"}},
		{name: "everything malformed", body: map[string]any{"course_id": "x", "cohort_id": "y", "user_id": "z"}, status: 422, fields: []string{"course_id", "cohort_id", "user_id"}},
		{name: "unknown field", body: map[string]any{"course_id": c.ID, "seat": 1}, status: 422, fields: []string{"seat"}},
		{name: "not JSON", body: "enrol me", status: 400},
		{name: "no such course", body: map[string]any{"course_id": plugintest.NewID()}, status: 404, code: "not-found"},
		{name: "draft course", body: map[string]any{"course_id": draft.ID}, status: 409, code: "course_not_published"},
		{name: "cohort of no course", body: map[string]any{"course_id": c.ID, "cohort_id": plugintest.NewID()}, status: 422, fields: []string{"cohort_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(learner, "POST", "/api/v1/enrolments", tc.body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.code != "" {
				require.Equal(t, tc.code, res.Problem().Code)
			}
			if tc.fields != nil {
				require.ElementsMatch(t, tc.fields, res.Problem().FieldNames())
			}
		})
	}
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments`))
	require.Empty(t, h.Published(t, tenant))
}

func TestSelfEnrolmentSwitch(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	open := true
	closedByConfig := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	openByCourse := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{selfEnrolment: &open})
	h.SetTenantConfig(tenant, json.RawMessage(`{"self_enrolment": false}`))

	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": closedByConfig.ID}), http.StatusForbidden, "self_enrolment_closed")
	// The course's own setting wins over the institution's.
	enrolAs(t, h, learner, map[string]any{"course_id": openByCourse.ID})
	// An admin still enrols the learner.
	e := enrolAs(t, h, admin, map[string]any{"course_id": closedByConfig.ID, "user_id": learner.UserID})
	require.Equal(t, "admin", e.Source)
	require.Equal(t, "active", e.Status)

	closed := false
	closedByCourse := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{selfEnrolment: &closed})
	h.SetTenantConfig(tenant, json.RawMessage(`{"self_enrolment": true}`))
	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": closedByCourse.ID}), http.StatusForbidden, "self_enrolment_closed")
}

func TestAdminEnrol(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	draft := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{draft: true})
	other := plugintest.NewTenant()
	outsider := b.member(other, "learner")

	// Without courses.enrolment.manage, naming someone else is refused.
	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": admin.UserID}), http.StatusForbidden, "forbidden")
	requireProblem(t, h.Do(teacher, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": learner.UserID}), http.StatusForbidden, "forbidden")
	// Someone who is not a member: no one, or another institution's.
	requireProblem(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": plugintest.NewID()}), http.StatusUnprocessableEntity, "not_a_member")
	requireProblem(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": outsider.UserID}), http.StatusUnprocessableEntity, "not_a_member")
	// Publication still counts.
	requireProblem(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": draft.ID, "user_id": learner.UserID}), http.StatusConflict, "course_not_published")
	// An API key enrols someone, never itself.
	key := plugintest.APIKey(tenant, courses.PermEnrolSelf)
	res := h.Do(key, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID})
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	require.Equal(t, []string{"user_id"}, res.Problem().FieldNames())
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments`))

	e := enrolAs(t, h, admin, map[string]any{"course_id": c.ID, "user_id": strings.ToUpper(learner.UserID)})
	require.Equal(t, learner.UserID, e.UserID)
	require.Equal(t, "admin", e.Source)
	require.Equal(t, "user:"+admin.UserID, e.EnrolledBy)
	requireProblem(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": learner.UserID}), http.StatusConflict, "already_enrolled")
	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID}), http.StatusConflict, "already_enrolled")

	// The learner sees it as their own; the admin may withdraw it.
	res = h.Do(learner, "GET", "/api/v1/enrolments/"+e.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res = h.Do(admin, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	withdrawn := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn)
	require.Equal(t, []courses.EnrolmentChanged{{EnrolmentID: e.ID, CourseID: c.ID, UserID: learner.UserID, Status: "withdrawn", Source: "admin"}}, withdrawn)
}

func TestEnrolPrerequisites(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	basics := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	intro := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	advanced := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{prerequisites: []string{basics.ID, intro.ID}})

	p := requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": advanced.ID}), http.StatusConflict, "prerequisites_incomplete")
	require.Contains(t, p.Detail, basics.ID)
	require.Contains(t, p.Detail, intro.ID)
	require.Len(t, p.Fields, 2)

	// Completing one (through the lessons) leaves the other missing.
	e := enrolAs(t, h, learner, map[string]any{"course_id": basics.ID})
	res := h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+basics.Lessons[0]+"/complete", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	p = requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": advanced.ID}), http.StatusConflict, "prerequisites_incomplete")
	require.NotContains(t, p.Detail, basics.ID)
	require.Equal(t, []string{"prerequisites.0"}, p.FieldNames())
	require.Equal(t, intro.ID, p.Fields[0].Message)

	// Merely enrolled in the other is not enough; completed is.
	e = enrolAs(t, h, learner, map[string]any{"course_id": intro.ID})
	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": advanced.ID}), http.StatusConflict, "prerequisites_incomplete")
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+intro.Lessons[0]+"/complete", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	enrolAs(t, h, learner, map[string]any{"course_id": advanced.ID})

	// An admin's enrolment is the admin's decision.
	newcomer := b.member(tenant, "learner")
	enrolAs(t, h, admin, map[string]any{"course_id": advanced.ID, "user_id": newcomer.UserID})
}

func TestWithdraw(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner, other := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	unlimited := addCohort(t, h, teacher, c.ID, nil)
	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID, "cohort_id": unlimited})

	// Someone else's enrolment does not exist for them.
	requireProblem(t, h.Do(other, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(other, "GET", "/api/v1/enrolments/"+e.ID, nil), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments/not-an-id/withdraw", nil), http.StatusNotFound, "not-found")

	res := h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Enrolment
	res.JSON(t, &got)
	require.Equal(t, "withdrawn", got.Status)
	require.NotNil(t, got.WithdrawnAt)
	// A cohort without a limit frees no seat anyone waits for.
	w := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn)
	require.Len(t, w, 1)
	require.False(t, w[0].FreedSeat)
	require.Equal(t, unlimited, w[0].CohortID)

	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusConflict, "already_withdrawn")
	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+c.Lessons[0]+"/complete", nil), http.StatusConflict, "enrolment_withdrawn")

	// A completed course stays completed.
	e = enrolAs(t, h, learner, map[string]any{"course_id": c.ID, "cohort_id": unlimited})
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+c.Lessons[0]+"/complete", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	requireProblem(t, h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusConflict, "enrolment_completed")
	require.Len(t, eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn), 1)
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin, classmate := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin"), b.member(tenant, "learner")
	var ids []string
	var shared enrolCourse
	for i := range 5 {
		c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{title: fmt.Sprintf("Course %d", i)})
		ids = append(ids, enrolAs(t, h, learner, map[string]any{"course_id": c.ID}).ID)
		shared = c
	}
	enrolAs(t, h, classmate, map[string]any{"course_id": shared.ID})
	res := h.Do(learner, "POST", "/api/v1/enrolments/"+ids[1]+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+ids[0]+"/lessons/"+publishedLessonOf(t, h, tenant, ids[0])+"/time", map[string]any{"seconds": 90})
	require.Equal(t, http.StatusOK, res.Status, res)

	// Newest first, two at a time, with titles and progress.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		path := "/api/v1/enrolments?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := h.Do(learner, "GET", path, nil)
		require.Equal(t, http.StatusOK, res.Status, res)
		var page sdk.Page[courses.Enrolment]
		res.JSON(t, &page)
		for _, e := range page.Items {
			seen = append(seen, e.ID)
			require.Equal(t, learner.UserID, e.UserID)
			require.True(t, strings.HasPrefix(e.CourseTitle, "Course "))
			require.NotNil(t, e.Progress)
			require.Zero(t, e.WaitlistPosition, "lists stay one query")
			if e.ID == ids[0] {
				require.EqualValues(t, 90, e.Progress.TimeSpentSeconds)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen)

	list := func(p sdk.Principal, query string) []courses.Enrolment {
		t.Helper()
		res := h.Do(p, "GET", "/api/v1/enrolments"+query, nil)
		require.Equal(t, http.StatusOK, res.Status, res)
		var page sdk.Page[courses.Enrolment]
		res.JSON(t, &page)
		return page.Items
	}
	require.Len(t, list(learner, "?status=active"), 4)
	withdrawn := list(learner, "?status=withdrawn")
	require.Len(t, withdrawn, 1)
	require.Equal(t, ids[1], withdrawn[0].ID)
	require.Len(t, list(learner, "?course_id="+shared.ID), 1, "one's own in a course")
	require.Len(t, list(learner, "?user_id="+learner.UserID), 5)
	require.Empty(t, list(admin, ""), "an admin's own dashboard")
	require.Len(t, list(admin, "?user_id="+learner.UserID), 5)
	require.Len(t, list(admin, "?course_id="+shared.ID), 2, "everyone in the course")
	require.Len(t, list(admin, "?course_id="+shared.ID+"&user_id="+classmate.UserID), 1)

	requireProblem(t, h.Do(learner, "GET", "/api/v1/enrolments?user_id="+classmate.UserID, nil), http.StatusForbidden, "forbidden")
	for _, q := range []string{"?status=lost", "?user_id=bob", "?course_id=1", "?cursor=nope", "?limit=0"} {
		res := h.Do(learner, "GET", "/api/v1/enrolments"+q, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status, q)
	}
}

// publishedLessonOf is the first lesson of an enrolment's course.
func publishedLessonOf(t *testing.T, h *plugintest.Harness, tenant, enrolmentID string) string {
	t.Helper()
	var id string
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `
			SELECT l.id FROM lessons l JOIN enrolments e ON e.course_id = l.course_id
			WHERE e.id = $1 ORDER BY l.position LIMIT 1`, enrolmentID).Scan(&id)
	}))
	return id
}

// Another institution's IDs are 404s, and its members are not members here.
func TestEnrolmentsOfAnotherInstitution(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, learner := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	cohort := addCohort(t, h, teacher, c.ID, 5)
	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID, "cohort_id": cohort})

	other := plugintest.NewTenant()
	theirAdmin, theirLearner := b.member(other, "admin"), b.member(other, "learner")
	theirs := publishEnrolCourse(t, h, other, b.member(other, "instructor").UserID, enrolCourseSpec{})

	requireProblem(t, h.Do(theirLearner, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID}), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(theirAdmin, "POST", "/api/v1/enrolments", map[string]any{"course_id": theirs.ID, "user_id": learner.UserID}), http.StatusUnprocessableEntity, "not_a_member")
	res := h.Do(theirLearner, "POST", "/api/v1/enrolments", map[string]any{"course_id": theirs.ID, "cohort_id": cohort})
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	require.Equal(t, []string{"cohort_id"}, res.Problem().FieldNames())
	for _, path := range []string{"/api/v1/enrolments/" + e.ID, "/api/v1/enrolments/" + e.ID + "/progress", "/api/v1/cohorts/" + cohort, "/api/v1/cohorts/" + cohort + "/waitlist", "/api/v1/courses/" + c.ID + "/cohorts"} {
		requireProblem(t, h.Do(theirAdmin, "GET", path, nil), http.StatusNotFound, "not-found")
	}
	requireProblem(t, h.Do(theirAdmin, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(theirAdmin, "PATCH", "/api/v1/cohorts/"+cohort, map[string]any{"seat_limit": 1}), http.StatusNotFound, "not-found")
	requireProblem(t, h.Do(theirAdmin, "POST", "/api/v1/courses/"+c.ID+"/cohorts", map[string]any{"name": "x", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z"}), http.StatusNotFound, "not-found")
	var page sdk.Page[courses.Enrolment]
	res = h.Do(theirAdmin, "GET", "/api/v1/enrolments?user_id="+learner.UserID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &page)
	require.Empty(t, page.Items)
}
