package courses_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestCohorts(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, colleague, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	draft := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{draft: true})
	path := "/api/v1/courses/" + c.ID + "/cohorts"

	res := h.Do(teacher, "POST", path, map[string]any{"name": "  Spring  ", "starts_at": "2030-03-01T09:00:00+01:00", "ends_at": "2030-06-01T17:00:00Z", "seat_limit": 2})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var spring courses.Cohort
	res.JSON(t, &spring)
	require.Equal(t, "Spring", spring.Name)
	require.Equal(t, c.ID, spring.CourseID)
	require.Equal(t, time.Date(2030, 3, 1, 8, 0, 0, 0, time.UTC), spring.StartsAt)
	require.Equal(t, 2, *spring.SeatLimit)
	require.Equal(t, 2, *spring.SeatsFree)
	require.Zero(t, spring.SeatsTaken)
	require.Equal(t, teacher.UserID, spring.CreatedBy)

	res = h.Do(admin, "POST", path, map[string]any{"name": "Open", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z"})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var open courses.Cohort
	res.JSON(t, &open)
	require.Nil(t, open.SeatLimit, "no limit")
	require.Nil(t, open.SeatsFree)

	for _, tc := range []struct {
		name   string
		body   any
		status int
		fields []string
	}{
		{name: "nothing", body: map[string]any{}, status: 422, fields: []string{"name", "starts_at", "ends_at"}},
		{name: "ends before it starts", body: map[string]any{"name": "x", "starts_at": "2030-02-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, status: 422, fields: []string{"ends_at"}},
		{name: "ends as it starts", body: map[string]any{"name": "x", "starts_at": "2030-02-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z"}, status: 422, fields: []string{"ends_at"}},
		{name: "not dates", body: map[string]any{"name": "x", "starts_at": "tomorrow", "ends_at": "2030-02-01"}, status: 422, fields: []string{"starts_at", "ends_at"}},
		{name: "no seats", body: map[string]any{"name": "x", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z", "seat_limit": 0}, status: 422, fields: []string{"seat_limit"}},
		{name: "fractional seats", body: map[string]any{"name": "x", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z", "seat_limit": 1.5}, status: 422, fields: []string{"seat_limit"}},
		{name: "unknown field", body: map[string]any{"name": "x", "capacity": 3}, status: 422, fields: []string{"capacity", "starts_at", "ends_at"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(teacher, "POST", path, tc.body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.fields != nil {
				require.ElementsMatch(t, tc.fields, res.Problem().FieldNames())
			}
		})
	}
	// Only the course's authors schedule it.
	good := map[string]any{"name": "x", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z"}
	requireProblem(t, h.Do(learner, "POST", path, good), http.StatusForbidden, "permission-denied")
	requireProblem(t, h.Do(colleague, "POST", path, good), http.StatusForbidden, "forbidden")
	requireProblem(t, h.Do(colleague, "POST", "/api/v1/courses/"+draft.ID+"/cohorts", good), http.StatusNotFound, "not-found")

	// Listed by start, with seats, to anyone who can see the course.
	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID, "cohort_id": spring.ID})
	res = h.Do(learner, "GET", path+"?limit=1", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var page sdk.Page[courses.Cohort]
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, open.ID, page.Items[0].ID)
	require.NotEmpty(t, page.NextCursor)
	res = h.Do(learner, "GET", path+"?limit=1&cursor="+page.NextCursor, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	page = sdk.Page[courses.Cohort]{}
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, spring.ID, page.Items[0].ID)
	require.Equal(t, 1, page.Items[0].SeatsTaken)
	require.Equal(t, 1, *page.Items[0].SeatsFree)
	require.Empty(t, page.NextCursor)
	requireProblem(t, h.Do(learner, "GET", "/api/v1/courses/"+draft.ID+"/cohorts", nil), http.StatusNotFound, "not-found")
	res = h.Do(teacher, "GET", "/api/v1/courses/"+draft.ID+"/cohorts", nil)
	require.Equal(t, http.StatusOK, res.Status, res)

	res = h.Do(learner, "GET", "/api/v1/cohorts/"+spring.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Cohort
	res.JSON(t, &got)
	require.Equal(t, 1, got.SeatsTaken)
	requireProblem(t, h.Do(learner, "GET", "/api/v1/cohorts/"+plugintest.NewID(), nil), http.StatusNotFound, "not-found")

	// Changes: dates are checked together; the limit never drops below the
	// seats taken.
	cohortPath := "/api/v1/cohorts/" + spring.ID
	res = h.Do(teacher, "PATCH", cohortPath, map[string]any{"name": "Spring 2030", "seat_limit": 1})
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &got)
	require.Equal(t, "Spring 2030", got.Name)
	require.Equal(t, 0, *got.SeatsFree)
	res = h.Do(teacher, "PATCH", cohortPath, map[string]any{"ends_at": "2030-02-01T00:00:00Z"})
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	require.Equal(t, []string{"ends_at"}, res.Problem().FieldNames())
	res = h.Do(teacher, "PATCH", cohortPath, map[string]any{"seat_limit": 0})
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	requireProblem(t, h.Do(colleague, "PATCH", cohortPath, map[string]any{"name": "Mine"}), http.StatusForbidden, "forbidden")
	requireProblem(t, h.Do(learner, "PATCH", cohortPath, map[string]any{"name": "Mine"}), http.StatusForbidden, "permission-denied")
	res = h.Do(teacher, "PATCH", cohortPath, map[string]any{"seat_limit": nil})
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &got)
	require.Nil(t, got.SeatLimit, "null removes the limit")

	// With a learner waiting, the limit cannot go below the seats taken.
	res = h.Do(teacher, "PATCH", cohortPath, map[string]any{"seat_limit": 1})
	require.Equal(t, http.StatusOK, res.Status, res)
	waiter := b.member(tenant, "learner")
	w := enrolAs(t, h, waiter, map[string]any{"course_id": c.ID, "cohort_id": spring.ID})
	require.Equal(t, "waitlisted", w.Status)
	require.NotNil(t, e)

	res = h.Do(teacher, "GET", cohortPath+"/waitlist", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var wl sdk.Page[courses.WaitlistEntry]
	res.JSON(t, &wl)
	require.Len(t, wl.Items, 1)
	require.Equal(t, courses.WaitlistEntry{Position: 1, EnrolmentID: w.ID, UserID: waiter.UserID, Source: "self", WaitlistedAt: *w.WaitlistedAt}, wl.Items[0])
	requireProblem(t, h.Do(colleague, "GET", cohortPath+"/waitlist", nil), http.StatusForbidden, "forbidden")
	requireProblem(t, h.Do(learner, "GET", cohortPath+"/waitlist", nil), http.StatusForbidden, "permission-denied")
}

func TestCohortSeatLimitCannotDropBelowSeatsTaken(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher := b.member(tenant, "instructor")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	cohort := addCohort(t, h, teacher, c.ID, 3)
	for range 3 {
		enrolAs(t, h, b.member(tenant, "learner"), map[string]any{"course_id": c.ID, "cohort_id": cohort})
	}
	p := requireProblem(t, h.Do(teacher, "PATCH", "/api/v1/cohorts/"+cohort, map[string]any{"seat_limit": 2, "name": "Renamed"}), http.StatusConflict, "seats_taken")
	require.Contains(t, p.Detail, "3 seats")
	res := h.Do(teacher, "GET", "/api/v1/cohorts/"+cohort, nil)
	var got courses.Cohort
	res.JSON(t, &got)
	require.Equal(t, "Cohort", got.Name, "a refused change changes nothing")
	require.Equal(t, 3, *got.SeatLimit)
}
