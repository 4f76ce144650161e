package courses_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func orderEvent(tenant string, data any) plugintest.Event {
	return plugintest.Event{ID: plugintest.NewEventID(), Type: courses.EventOrderPaid, TenantID: tenant, Source: "commerce", Data: data}
}

// A paid order enrols its buyer once, however often it arrives.
func TestOrderPaidEnrolsOnce(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, buyer := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	draft := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{draft: true})
	elsewhere := publishEnrolCourse(t, h, plugintest.NewTenant(), teacher.UserID, enrolCourseSpec{})
	ev := orderEvent(tenant, map[string]any{"order_id": "ord_1", "user_id": buyer.UserID, "currency": "EUR", "items": []map[string]any{
		{"course_id": c.ID, "price": 4900},
		{"sku": "a-mug"},                  // not a course
		{"course_id": plugintest.NewID()}, // no such course: skipped
		{"course_id": draft.ID},           // not published: skipped
		{"course_id": elsewhere.ID},       // another institution's: skipped
	}})
	require.NoError(t, h.Deliver(t, ev))
	require.NoError(t, h.Deliver(t, ev), "a redelivery")
	again := orderEvent(tenant, ev.Data)
	require.NoError(t, h.Deliver(t, again), "the same order in a new event")

	require.Equal(t, 1, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE user_id = $1`, buyer.UserID))
	var page sdk.Page[courses.Enrolment]
	res := h.Do(buyer, "GET", "/api/v1/enrolments", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	e := page.Items[0]
	require.Equal(t, "order", e.Source)
	require.Equal(t, "ord_1", *e.OrderID)
	require.Equal(t, "active", e.Status)
	require.Equal(t, "event:"+ev.ID, e.EnrolledBy)
	require.NotNil(t, e.Progress)
	created := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentCreated)
	require.Equal(t, []courses.EnrolmentChanged{{EnrolmentID: e.ID, CourseID: c.ID, UserID: buyer.UserID, Status: "active", Source: "order", OrderID: "ord_1"}}, created)

	// Enrolled already (here by themselves): the order changes nothing.
	self := b.member(tenant, "learner")
	enrolAs(t, h, self, map[string]any{"course_id": c.ID})
	require.NoError(t, h.Deliver(t, orderEvent(tenant, map[string]any{"order_id": "ord_2", "user_id": self.UserID, "items": []map[string]any{{"course_id": c.ID}}})))
	require.Equal(t, 1, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE user_id = $1`, self.UserID))
	require.Equal(t, 0, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE order_id = 'ord_2'`))
}

func TestOrderPaidCohorts(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher := b.member(tenant, "instructor")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	small := addCohort(t, h, teacher, c.ID, 1)
	enrolAs(t, h, b.member(tenant, "learner"), map[string]any{"course_id": c.ID, "cohort_id": small})
	buy := func(order string, item map[string]any) courses.Enrolment {
		t.Helper()
		buyer := b.member(tenant, "learner")
		require.NoError(t, h.Deliver(t, orderEvent(tenant, map[string]any{"order_id": order, "user_id": buyer.UserID, "items": []map[string]any{item}})))
		var page sdk.Page[courses.Enrolment]
		res := h.Do(buyer, "GET", "/api/v1/enrolments", nil)
		res.JSON(t, &page)
		require.Len(t, page.Items, 1, order)
		return page.Items[0]
	}

	// A full cohort waitlists the buyer.
	e := buy("ord_full", map[string]any{"course_id": c.ID, "cohort_id": small})
	require.Equal(t, "waitlisted", e.Status)
	require.Equal(t, small, *e.CohortID)
	// No cohort named: the soonest with a free seat (here none, so the
	// soonest, waitlisted)...
	e = buy("ord_any", map[string]any{"course_id": c.ID})
	require.Equal(t, small, *e.CohortID)
	require.Equal(t, "waitlisted", e.Status)
	// ... and with a cohort with free seats, that one.
	roomy := addCohort(t, h, teacher, c.ID, 10)
	e = buy("ord_roomy", map[string]any{"course_id": c.ID})
	require.Equal(t, roomy, *e.CohortID)
	require.Equal(t, "active", e.Status)
	// A cohort of another course is not joined.
	otherCourse := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	e = buy("ord_mixed", map[string]any{"course_id": otherCourse.ID, "cohort_id": roomy})
	require.Nil(t, e.CohortID)
	require.Equal(t, "active", e.Status)
}

// Data the plugin cannot read fails the delivery (retried, then
// dead-lettered); it writes nothing.
func TestOrderPaidMalformed(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	c := publishEnrolCourse(t, h, tenant, b.member(tenant, "instructor").UserID, enrolCourseSpec{})
	user := plugintest.NewID()
	for _, tc := range []struct {
		name string
		data any
	}{
		{"no user", map[string]any{"order_id": "o", "items": []map[string]any{{"course_id": c.ID}}}},
		{"user not a UUID", map[string]any{"order_id": "o", "user_id": "bob", "items": []map[string]any{{"course_id": c.ID}}}},
		{"no order", map[string]any{"user_id": user, "items": []map[string]any{{"course_id": c.ID}}}},
		{"course not a UUID", map[string]any{"order_id": "o", "user_id": user, "items": []map[string]any{{"course_id": "intro-101"}}}},
		{"cohort not a UUID", map[string]any{"order_id": "o", "user_id": user, "items": []map[string]any{{"course_id": c.ID, "cohort_id": 7}}}},
		{"items not a list", map[string]any{"order_id": "o", "user_id": user, "items": "all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, h.Deliver(t, orderEvent(tenant, tc.data)))
		})
	}
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments`))
	require.Empty(t, h.Published(t, tenant))
}

// An order naming a buyer who is not a member of the institution (another
// institution's user, or no one) enrols nobody: the delivery succeeds, as
// a retry could not change that, and nothing is written.
func TestOrderPaidForAStranger(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	c := publishEnrolCourse(t, h, tenant, b.teacher.UserID, enrolCourseSpec{})
	stranger := b.member(plugintest.NewTenant(), "learner")
	for _, buyer := range []string{stranger.UserID, plugintest.NewID()} {
		require.NoError(t, h.Deliver(t, orderEvent(tenant, map[string]any{"order_id": "ord_" + buyer[:8], "user_id": buyer, "items": []map[string]any{{"course_id": c.ID}}})))
	}
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.enrolments`))
	require.Empty(t, h.Published(t, tenant))
}

// A refunded order withdraws the enrolments it made, once, and nothing
// else: the learner's own enrolments and other orders' stay.
func TestOrderRefundedWithdraws(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h, tenant := b.h, b.tenant
	teacher, buyer := b.member(tenant, "instructor"), b.member(tenant, "learner")
	bought := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	other := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	own := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	require.NoError(t, h.Deliver(t, orderEvent(tenant, map[string]any{"order_id": "ord_r1", "user_id": buyer.UserID, "items": []map[string]any{{"course_id": bought.ID}}})))
	require.NoError(t, h.Deliver(t, orderEvent(tenant, map[string]any{"order_id": "ord_r2", "user_id": buyer.UserID, "items": []map[string]any{{"course_id": other.ID}}})))
	enrolAs(t, h, buyer, map[string]any{"course_id": own.ID})

	refund := plugintest.Event{ID: plugintest.NewEventID(), Type: courses.EventOrderRefunded, TenantID: tenant, Source: "commerce",
		Data: map[string]any{"order_id": "ord_r1", "user_id": buyer.UserID, "amount_refunded": 4900}}
	require.NoError(t, h.Deliver(t, refund))
	require.NoError(t, h.Deliver(t, refund), "a redelivery")
	status := func(course string) string {
		var s string
		require.NoError(t, h.DB().QueryRow(t.Context(), `SELECT status FROM plugin_courses.enrolments WHERE user_id = $1 AND course_id = $2`, buyer.UserID, course).Scan(&s))
		return s
	}
	require.Equal(t, "withdrawn", status(bought.ID))
	require.Equal(t, "active", status(other.ID))
	require.Equal(t, "active", status(own.ID))
	withdrawn := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn)
	require.Len(t, withdrawn, 1)
	require.Equal(t, "ord_r1", withdrawn[0].OrderID)
	require.Equal(t, "order", withdrawn[0].Source)

	// A subscription's end withdraws what its order made, the same way.
	ended := plugintest.Event{ID: plugintest.NewEventID(), Type: courses.EventSubscriptionEnded, TenantID: tenant, Source: "commerce",
		Data: map[string]any{"order_id": "ord_r2", "user_id": buyer.UserID, "status": "canceled"}}
	require.NoError(t, h.Deliver(t, ended))
	require.Equal(t, "withdrawn", status(other.ID))
	require.Equal(t, "active", status(own.ID))
	require.Len(t, eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn), 2)

	// Malformed data fails the delivery.
	bad := plugintest.Event{ID: plugintest.NewEventID(), Type: courses.EventOrderRefunded, TenantID: tenant, Source: "commerce",
		Data: map[string]any{"order_id": "ord_r1", "user_id": "nobody"}}
	require.Error(t, h.Deliver(t, bad))
}
