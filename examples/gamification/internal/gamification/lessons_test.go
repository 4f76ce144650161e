package gamification_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/examples/gamification/internal/gamification"
)

// completed is a courses.lesson.completed.v1 event: learner finished a new
// lesson of a new course in institution tenant.
func completed(tenant, learner string) plugintest.Event {
	return plugintest.Event{
		ID: plugintest.NewEventID(), Type: gamification.EventLessonCompleted, TenantID: tenant,
		Actor: "user:" + learner, RequestID: "req-" + plugintest.NewID()[:8],
		Data: map[string]any{"user_id": learner, "course_id": plugintest.NewID(), "lesson_id": plugintest.NewID()},
	}
}

// points is a member's total as the leaderboard reports it (0 when none).
func points(t *testing.T, h *plugintest.Harness, tenant, user string) int64 {
	t.Helper()
	res := h.Do(plugintest.User(tenant, "learner"), "GET", "/api/v1/leaderboard/users/"+user, nil)
	if res.Status == http.StatusNotFound {
		return 0
	}
	require.Equal(t, http.StatusOK, res.Status, res)
	var s gamification.Standing
	res.JSON(t, &s)
	return s.Points
}

func countAwards(t *testing.T, h *plugintest.Harness, tenant string) int {
	t.Helper()
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT count(*) FROM plugin_gamification.awards WHERE tenant_id = $1", tenant).Scan(&n))
	return n
}

// The kernel delivers at least once: the same event (same ID) delivered
// again awards nothing more.
func TestLessonCompletedAwardsOnceWhenDeliveredTwice(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	learner := member(tenant)
	ev := completed(tenant, learner)

	require.NoError(t, h.Deliver(t, ev))
	ev.Attempt = 2 // a redelivery: the kernel did not hear the first answer
	require.NoError(t, h.Deliver(t, ev))

	require.EqualValues(t, 10, points(t, h, tenant, learner), "points_per_lesson's default, once")
	require.Equal(t, 1, countAwards(t, h, tenant))
	require.Len(t, h.Published(t, tenant), 1)
	var handled bool
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM plugin_gamification.edulure_inbox WHERE event_id = $1)", ev.ID).Scan(&handled))
	require.True(t, handled, "ev.Tx recorded the event as handled")
}

// Another event for a lesson that already paid (completed again) awards
// nothing either; another lesson does.
func TestLessonPaysOnce(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	learner := member(tenant)
	first := completed(tenant, learner)
	require.NoError(t, h.Deliver(t, first))

	again := first
	again.ID = plugintest.NewEventID()
	require.NoError(t, h.Deliver(t, again))
	require.EqualValues(t, 10, points(t, h, tenant, learner))

	require.NoError(t, h.Deliver(t, completed(tenant, learner)))
	require.EqualValues(t, 20, points(t, h, tenant, learner))
	require.Len(t, h.Published(t, tenant), 2)
}

// The award and gamification.points.awarded.v1 are written in one
// transaction: both or neither.
func TestLessonCompletedPublishesInTheAwardsTransaction(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	learner := member(tenant)
	ev := completed(tenant, learner)
	require.NoError(t, h.Deliver(t, ev))

	pub := h.Published(t, tenant)
	require.Len(t, pub, 1)
	require.Equal(t, gamification.EventPointsAwarded, pub[0].Type)
	require.Equal(t, ev.Actor, pub[0].Actor, "caused by the learner who completed the lesson")
	require.Equal(t, ev.RequestID, pub[0].RequestID, "and traced to the same request")
	var data gamification.PointsAwarded
	require.NoError(t, pub[0].Decode(&data))
	var awardID string
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT id::text FROM plugin_gamification.awards WHERE tenant_id = $1", tenant).Scan(&awardID))
	lesson := ev.Data.(map[string]any)["lesson_id"].(string)
	require.Equal(t, gamification.PointsAwarded{
		AwardID: awardID, UserID: learner, Points: 10, Reason: "completed lesson " + lesson, LessonID: lesson, Total: 10,
	}, data)

	// Make the next award's transaction fail when it commits, after the
	// handler published: the event goes with the award.
	_, err := h.DB().Exec(t.Context(), `
		CREATE FUNCTION plugin_gamification.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
		CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON plugin_gamification.awards
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION plugin_gamification.refuse();`)
	require.NoError(t, err)
	next := completed(tenant, learner)
	require.ErrorContains(t, h.Deliver(t, next), "refused at commit")
	require.Len(t, h.Published(t, tenant), 1, "no event for the award that rolled back")
	require.EqualValues(t, 10, points(t, h, tenant, learner))

	// Nor is the event in the inbox: its redelivery awards the points.
	_, err = h.DB().Exec(t.Context(), "DROP TRIGGER refuse ON plugin_gamification.awards")
	require.NoError(t, err)
	next.Attempt = 2
	require.NoError(t, h.Deliver(t, next))
	require.EqualValues(t, 20, points(t, h, tenant, learner))
	require.Len(t, h.Published(t, tenant), 2)
}

// One institution's lessons never touch another's points, even for the
// same user ID.
func TestLessonCompletedStaysInItsInstitution(t *testing.T) {
	t.Parallel()
	a, b, learner := plugintest.NewTenant(), plugintest.NewTenant(), plugintest.NewID()
	h := memberOfBoth(t, learner, a, b)
	award(t, h, plugintest.User(b, "instructor"), learner, 3)
	before := len(h.Published(t, b))

	require.NoError(t, h.Deliver(t, completed(a, learner)))
	require.NoError(t, h.Deliver(t, completed(a, learner)))

	require.EqualValues(t, 20, points(t, h, a, learner))
	require.EqualValues(t, 3, points(t, h, b, learner))
	require.Len(t, h.Published(t, a), 2)
	require.Len(t, h.Published(t, b), before)
	require.Equal(t, 1, countAwards(t, h, b))
}

// points_per_lesson comes from the institution's configuration, over the
// operator's defaults.
func TestLessonPointsFollowTheConfiguration(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, gamification.New(), plugintest.WithOperatorConfig(json.RawMessage(`{"points_per_lesson": 15}`)))
	byOperator, byInstitution, none := plugintest.NewTenant(), plugintest.NewTenant(), plugintest.NewTenant()
	h.SetTenantConfig(byInstitution, json.RawMessage(`{"points_per_lesson": 40}`))
	h.SetTenantConfig(none, json.RawMessage(`{"points_per_lesson": 0}`))
	learners := map[string]string{}
	for _, tenant := range []string{byOperator, byInstitution, none} {
		learners[tenant] = member(tenant)
		require.NoError(t, h.Deliver(t, completed(tenant, learners[tenant])))
	}
	require.EqualValues(t, 15, points(t, h, byOperator, learners[byOperator]))
	require.EqualValues(t, 40, points(t, h, byInstitution, learners[byInstitution]))
	require.EqualValues(t, 0, points(t, h, none, learners[none]))
	require.Empty(t, h.Published(t, none), "no award, no event")
}

// Data the plugin does not understand is an error (the kernel retries it,
// then dead-letters it for an operator to see), and awards nothing.
func TestLessonCompletedRefusesBadData(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	learner := member(tenant)
	course, lesson := plugintest.NewID(), plugintest.NewID()
	for _, tc := range []struct {
		name string
		data any
		want string
	}{
		{"no lesson", map[string]any{"user_id": learner, "course_id": course}, "lesson_id: is required"},
		{"user not a UUID", map[string]any{"user_id": "bob", "course_id": course, "lesson_id": lesson}, "user_id: must be a UUID"},
		{"nothing", map[string]any{}, "user_id: is required; course_id: is required; lesson_id: is required"},
		{"user a number", map[string]any{"user_id": 7, "course_id": course, "lesson_id": lesson}, "decoding courses.lesson.completed.v1 event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Deliver(t, plugintest.Event{Type: gamification.EventLessonCompleted, TenantID: tenant, Data: tc.data})
			require.ErrorContains(t, err, tc.want)
		})
	}
	// A platform event (no institution) cannot be a lesson's.
	err := h.Deliver(t, plugintest.Event{Type: gamification.EventLessonCompleted, Data: map[string]any{"user_id": learner, "course_id": course, "lesson_id": lesson}})
	require.ErrorContains(t, err, "names none")

	require.Zero(t, countAwards(t, h, tenant))
	require.Empty(t, h.Published(t, ""))
	var inbox int
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT count(*) FROM plugin_gamification.edulure_inbox").Scan(&inbox))
	require.Zero(t, inbox, "a failed event is not marked handled: its redelivery is")
}

// UUIDs arrive in any case and are stored in one.
func TestLessonCompletedNormalisesIDs(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	learner := member(tenant)
	ev := completed(tenant, learner)
	ev.Data.(map[string]any)["user_id"] = strings.ToUpper(learner)
	require.NoError(t, h.Deliver(t, ev))
	require.EqualValues(t, 10, points(t, h, tenant, learner))
}

// Where the institution turned the plugin off, the kernel delivers nothing.
func TestLessonCompletedNotDeliveredWherePluginIsOff(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	learner := member(tenant)
	h.SetEnabled(tenant, false)
	require.ErrorIs(t, h.Deliver(t, completed(tenant, learner)), plugintest.ErrSkipped)
	require.Zero(t, countAwards(t, h, tenant))
}

// A lesson completed by someone who is not (or no longer) a member of the
// institution earns nothing, and the event is handled: a retry would not
// change the answer.
func TestLessonCompletedByANonMemberAwardsNothing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant, other := plugintest.NewTenant(), plugintest.NewTenant()
	ev := completed(tenant, member(other))
	require.NoError(t, h.Deliver(t, ev))
	require.Zero(t, countAwards(t, h, tenant))
	require.Empty(t, h.Published(t, tenant))
	var handled bool
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM plugin_gamification.edulure_inbox WHERE event_id = $1)", ev.ID).Scan(&handled))
	require.False(t, handled, "the transaction never began")
}
