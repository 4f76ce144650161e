package courses_test

import (
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func memberRemoved(tenant, userID string) plugintest.Event {
	return plugintest.Event{ID: plugintest.NewEventID(), Type: courses.EventMemberRemoved, TenantID: tenant, Source: "kernel", Data: map[string]string{"user_id": userID}}
}

func TestMemberRemovedGivesUpSeats(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, coTeacher := b.member(tenant, "instructor"), b.member(tenant, "instructor")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	solo := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	done := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $2)`, c.ID, coTeacher.UserID)
		return err
	}))
	cohort := addCohort(t, h, teacher, c.ID, 1)
	leaving, waiting := b.member(tenant, "learner"), b.member(tenant, "learner")
	seat := enrolAs(t, h, leaving, map[string]any{"course_id": c.ID, "cohort_id": cohort})
	queued := enrolAs(t, h, waiting, map[string]any{"course_id": c.ID, "cohort_id": cohort})
	require.Equal(t, "waitlisted", queued.Status)
	other := enrolAs(t, h, leaving, map[string]any{"course_id": solo.ID})
	finished := enrolAs(t, h, leaving, map[string]any{"course_id": done.ID})
	res := h.Do(leaving, "POST", "/api/v1/enrolments/"+finished.ID+"/lessons/"+done.Lessons[0]+"/complete", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	require.Equal(t, "completed", fetchEnrolment(t, h, leaving, finished.ID).Status)
	before := len(eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn))

	ev := memberRemoved(tenant, leaving.UserID)
	require.NoError(t, h.Deliver(t, ev))
	require.NoError(t, h.Deliver(t, ev), "a redelivery changes nothing")

	require.Equal(t, "withdrawn", fetchEnrolment(t, h, leaving, seat.ID).Status)
	require.Equal(t, "withdrawn", fetchEnrolment(t, h, leaving, other.ID).Status)
	require.Equal(t, "completed", fetchEnrolment(t, h, leaving, finished.ID).Status, "what they completed stays")
	withdrawn := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn)[before:]
	require.Len(t, withdrawn, 2)
	freed := 0
	for _, w := range withdrawn {
		require.Equal(t, leaving.UserID, w.UserID)
		if w.FreedSeat {
			freed++
			require.Equal(t, cohort, w.CohortID)
		}
	}
	require.Equal(t, 1, freed, "the cohort seat goes to the waitlist through promote-waitlist")

	// Removing a teacher: they leave the course another instructor teaches,
	// and stay on the one they teach alone, for an admin to reassign.
	require.NoError(t, h.Deliver(t, memberRemoved(tenant, teacher.UserID)))
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.course_instructors WHERE course_id = $1 AND user_id = $2`, c.ID, teacher.UserID))
	require.Equal(t, 1, count(t, h, `SELECT count(*) FROM plugin_courses.course_instructors WHERE course_id = $1 AND user_id = $2`, solo.ID, teacher.UserID))

	// Another institution's removal touches nothing here; bad data is an error.
	require.NoError(t, h.Deliver(t, memberRemoved(plugintest.NewTenant(), waiting.UserID)))
	require.Equal(t, "waitlisted", fetchEnrolment(t, h, waiting, queued.ID).Status)
	require.Error(t, h.Deliver(t, memberRemoved(tenant, "nope")))
}
