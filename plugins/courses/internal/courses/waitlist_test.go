package courses_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// A full cohort waitlists; a withdrawal frees the seat; the
// promote-waitlist job, run on the withdrawal's event, gives it to the
// first in line, once.
func TestWaitlistPromotionOnWithdrawal(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher := b.member(tenant, "instructor")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	cohort := addCohort(t, h, teacher, c.ID, 1)
	first, second, third := b.member(tenant, "learner"), b.member(tenant, "learner"), b.member(tenant, "learner")

	// A course with cohorts needs one named.
	requireProblem(t, h.Do(first, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID}), http.StatusUnprocessableEntity, "cohort_required")
	seated := enrolAs(t, h, first, map[string]any{"course_id": c.ID, "cohort_id": cohort})
	require.Equal(t, "active", seated.Status)
	w1 := enrolAs(t, h, second, map[string]any{"course_id": c.ID, "cohort_id": cohort})
	require.Equal(t, "waitlisted", w1.Status)
	require.NotNil(t, w1.WaitlistedAt)
	require.Nil(t, w1.ActivatedAt)
	require.Nil(t, w1.Progress, "no snapshot without a seat")
	require.Equal(t, 1, w1.WaitlistPosition)
	w2 := enrolAs(t, h, third, map[string]any{"course_id": c.ID, "cohort_id": cohort})
	require.Equal(t, 2, w2.WaitlistPosition)
	created := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentCreated)
	require.Len(t, created, 3)
	require.Equal(t, "waitlisted", created[1].Status)
	require.Equal(t, cohort, created[1].CohortID)

	// Waiting is not learning.
	requireProblem(t, h.Do(second, "POST", "/api/v1/enrolments/"+w1.ID+"/lessons/"+c.Lessons[0]+"/complete", nil), http.StatusConflict, "enrolment_waitlisted")
	requireProblem(t, h.Do(second, "GET", "/api/v1/enrolments/"+w1.ID+"/progress", nil), http.StatusConflict, "enrolment_waitlisted")

	res := h.Do(teacher, "GET", "/api/v1/cohorts/"+cohort, nil)
	var co courses.Cohort
	res.JSON(t, &co)
	require.Equal(t, 1, co.SeatsTaken)
	require.Equal(t, 0, *co.SeatsFree)
	require.Equal(t, 2, co.WaitlistLength)

	// The withdrawal frees the seat but promotes no one itself.
	res = h.Do(first, "POST", "/api/v1/enrolments/"+seated.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	require.Equal(t, "waitlisted", fetchEnrolment(t, h, second, w1.ID).Status)
	var withdrawal plugintest.PublishedEvent
	for _, e := range h.Published(t, tenant) {
		if e.Type == courses.EventEnrolmentWithdrawn {
			withdrawal = e
		}
	}
	var data courses.EnrolmentChanged
	require.NoError(t, withdrawal.Decode(&data))
	require.True(t, data.FreedSeat)
	require.Equal(t, cohort, data.CohortID)

	run := plugintest.JobRun{TenantID: tenant, Event: ptr(withdrawal.Event())}
	out, err := h.RunJob(t, courses.JobPromoteWaitlist, run)
	require.NoError(t, err)
	require.Equal(t, "promoted 1", out)
	promoted := fetchEnrolment(t, h, second, w1.ID)
	require.Equal(t, "active", promoted.Status)
	require.NotNil(t, promoted.ActivatedAt)
	require.NotNil(t, promoted.Progress)
	require.Zero(t, promoted.WaitlistPosition)
	require.Equal(t, 1, fetchEnrolment(t, h, third, w2.ID).WaitlistPosition, "next in line")
	require.Equal(t, []courses.EnrolmentChanged{{EnrolmentID: w1.ID, CourseID: c.ID, CohortID: cohort, UserID: second.UserID, Status: "active", Source: "self"}},
		eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentPromoted))

	// A re-run (a retry, a redelivered event) finds no free seat.
	out, err = h.RunJob(t, courses.JobPromoteWaitlist, run)
	require.NoError(t, err)
	require.Equal(t, "promoted 0", out)
	require.Equal(t, "waitlisted", fetchEnrolment(t, h, third, w2.ID).Status)
	require.Len(t, eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentPromoted), 1)

	// A waitlisted learner who gives up frees no seat.
	res = h.Do(third, "POST", "/api/v1/enrolments/"+w2.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	ws := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn)
	require.False(t, ws[len(ws)-1].FreedSeat)
	out, err = h.RunJob(t, courses.JobPromoteWaitlist, plugintest.JobRun{TenantID: tenant, Event: &plugintest.Event{
		Type: courses.EventEnrolmentWithdrawn, TenantID: tenant, Source: courses.Name, Data: ws[len(ws)-1],
	}})
	require.NoError(t, err)
	require.Equal(t, "no seat freed", out)
}

// Newcomers queue behind people already waiting, even when a seat is free
// (a raised limit before the job has run), and the scheduled job fills the
// seats in order.
func TestPromoteWaitlistsAfterSeatLimitRaised(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher := b.member(tenant, "instructor")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	cohort := addCohort(t, h, teacher, c.ID, 1)
	other := addCohort(t, h, teacher, c.ID, 1)
	var waiting []courses.Enrolment
	var learners []sdk.Principal
	for i := range 4 {
		p := b.member(tenant, "learner")
		e := enrolAs(t, h, p, map[string]any{"course_id": c.ID, "cohort_id": cohort})
		if i == 0 {
			require.Equal(t, "active", e.Status)
			continue
		}
		require.Equal(t, "waitlisted", e.Status)
		waiting, learners = append(waiting, e), append(learners, p)
	}
	enrolAs(t, h, b.member(tenant, "learner"), map[string]any{"course_id": c.ID, "cohort_id": other})

	res := h.Do(teacher, "PATCH", "/api/v1/cohorts/"+cohort, map[string]any{"seat_limit": 3})
	require.Equal(t, http.StatusOK, res.Status, res)
	var co courses.Cohort
	res.JSON(t, &co)
	require.Equal(t, 2, *co.SeatsFree)
	require.Equal(t, 3, co.WaitlistLength, "the request promotes nobody")
	late := enrolAs(t, h, b.member(tenant, "learner"), map[string]any{"course_id": c.ID, "cohort_id": cohort})
	require.Equal(t, "waitlisted", late.Status, "people waiting are served first")
	require.Equal(t, 4, late.WaitlistPosition)

	out, err := h.RunJob(t, courses.JobPromoteWaitlists, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "promoted 2", out)
	for i, e := range waiting {
		want := "active"
		if i == 2 {
			want = "waitlisted"
		}
		require.Equal(t, want, fetchEnrolment(t, h, learners[i], e.ID).Status, fmt.Sprint("waiter ", i))
	}
	out, err = h.RunJob(t, courses.JobPromoteWaitlists, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "promoted 0", out)

	// No limit at all: everyone waiting gets a seat.
	res = h.Do(teacher, "PATCH", "/api/v1/cohorts/"+cohort, map[string]any{"seat_limit": nil})
	require.Equal(t, http.StatusOK, res.Status, res)
	out, err = h.RunJob(t, courses.JobPromoteWaitlists, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "promoted 2", out)
	require.Len(t, eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentPromoted), 4)

	// Another institution's run sees none of it.
	out, err = h.RunJob(t, courses.JobPromoteWaitlists, plugintest.JobRun{TenantID: plugintest.NewTenant(), Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "promoted 0", out)
}

// Learners racing for the last seat: the cohort's lock lets one take it;
// the others wait in line. The same learner enrolling twice at once gets
// one enrolment.
func TestLastSeatRace(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher := b.member(tenant, "instructor")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	cohort := addCohort(t, h, teacher, c.ID, 1)
	const n = 8
	statuses := make(chan int, n)
	for range n {
		p := b.member(tenant, "learner")
		go func() {
			statuses <- h.Do(p, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "cohort_id": cohort}).Status
		}()
	}
	for range n {
		require.Equal(t, http.StatusCreated, <-statuses)
	}
	require.Equal(t, 1, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE cohort_id = $1 AND status = 'active'`, cohort))
	require.Equal(t, n-1, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE cohort_id = $1 AND status = 'waitlisted'`, cohort))

	learner := b.member(tenant, "learner")
	other := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	results := make(chan *plugintest.Result, n)
	for range n {
		go func() { results <- h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": other.ID}) }()
	}
	created := 0
	for range n {
		res := <-results
		switch res.Status {
		case http.StatusCreated:
			created++
		default:
			requireProblem(t, res, http.StatusConflict, "already_enrolled")
		}
	}
	require.Equal(t, 1, created)
	require.Equal(t, 1, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE course_id = $1`, other.ID))
	require.Len(t, eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentCreated), n+1)
}
