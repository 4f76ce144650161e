package telemetry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

// courses' and messaging's events become statements under the same
// consent rules, once however often they are delivered.
func TestPlatformEvents(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	u := in.learner.UserID
	course, cohort, lesson := plugintest.NewID(), plugintest.NewID(), plugintest.NewID()
	lessonDone := func(at time.Time) plugintest.Event {
		return plugintest.Event{Type: telemetry.EventLessonCompleted, TenantID: in.id, Source: "courses", Data: map[string]any{
			"enrolment_id": plugintest.NewID(), "course_id": course, "cohort_id": cohort, "lesson_id": lesson, "user_id": u,
			"time_spent_seconds": 300, "completed_at": at}}
	}

	// No consent: the event is handled (no retry), nothing is stored.
	require.NoError(t, h.Deliver(t, lessonDone(time.Now())))
	require.Zero(t, countIn(t, h, in.id, `SELECT count(*) FROM statements`))

	g := decide(t, h, in.learner, "analytics", 1, true)
	ev := lessonDone(g.DecidedAt.Add(time.Millisecond))
	ev.ID = plugintest.NewEventID()
	require.NoError(t, h.Deliver(t, ev))
	require.NoError(t, h.Deliver(t, ev)) // a redelivery
	ev.ID = ""                           // the same data in another event: another statement
	require.NoError(t, h.Deliver(t, ev))
	require.Equal(t, 2, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE source = 'platform:courses'`))
	require.Equal(t, 2, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE user_id = $1 AND verb = $2 AND object_type = $3
		AND course_id = $4 AND cohort_id = $5 AND duration_ms = 300000 AND completion AND consent_id = $6`,
		u, telemetry.VerbCompleted, telemetry.ActivityLesson, course, cohort, g.ID))

	require.NoError(t, h.Deliver(t, plugintest.Event{Type: telemetry.EventCourseCompleted, TenantID: in.id, Source: "courses",
		Data: map[string]any{"enrolment_id": plugintest.NewID(), "course_id": course, "user_id": u, "version": 1, "completed_at": time.Now()}}))
	require.NoError(t, h.Deliver(t, plugintest.Event{Type: telemetry.EventQuizAttempted, TenantID: in.id, Source: "courses",
		Data: map[string]any{"attempt_id": plugintest.NewID(), "quiz_id": plugintest.NewID(), "course_id": course, "user_id": u, "percent": 85, "passed": true, "attempted_at": time.Now()}}))
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE object_type = $1 AND course_id = $2`, telemetry.ActivityCourse, course))
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE verb = $1 AND score_scaled = 0.85 AND success`, telemetry.VerbPassed))

	// messaging's posts and reactions, with their course and cohort.
	post := plugintest.NewID()
	require.NoError(t, h.Deliver(t, plugintest.Event{Type: telemetry.EventPostCreated, TenantID: in.id, Source: "messaging",
		Data: map[string]any{"post_id": post, "space_id": plugintest.NewID(), "space_kind": "cohort", "course_id": course, "cohort_id": cohort,
			"author_id": u, "kind": "post", "created_at": time.Now()}}))
	require.NoError(t, h.Deliver(t, plugintest.Event{Type: telemetry.EventReactionAdded, TenantID: in.id, Source: "messaging",
		Data: map[string]any{"target_type": "comment", "target_id": plugintest.NewID(), "post_id": post, "space_id": plugintest.NewID(),
			"user_id": u, "emoji": "👍", "created_at": time.Now()}}))
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE verb = $1 AND object_type = $2 AND object_id = $3
		AND course_id = $4 AND cohort_id = $5 AND source = 'platform:messaging'`, telemetry.VerbPosted, telemetry.ActivityNote,
		"https://edulure.dev/xapi/activities/posts/"+post, course, cohort))
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM statements WHERE verb = $1 AND object_type = $2 AND raw->'result'->>'response' = '👍'`,
		telemetry.VerbLiked, telemetry.ActivityComment))

	// Withdrawn: the next ones are dropped.
	decide(t, h, in.learner, "analytics", 1, false)
	require.NoError(t, h.Deliver(t, lessonDone(time.Now())))
	require.Equal(t, 6, countIn(t, h, in.id, `SELECT count(*) FROM statements`))

	// Data that makes no statement fails the delivery (retried, then a
	// dead letter for an operator).
	require.Error(t, h.Deliver(t, plugintest.Event{Type: telemetry.EventLessonCompleted, TenantID: in.id, Data: map[string]any{"user_id": "nobody", "completed_at": time.Now()}}))
}
