package courses_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// A publish moves the progress snapshot of every active enrolment to the
// new version, in its transaction.
func TestPublishRefreshesProgress(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	c, ls := publishedCourse(t, h, b.teacher, "Music", "Rhythm")
	var active, waiting string
	require.NoError(t, h.InTenant(b.tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(t.Context(), `
			INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, activated_at)
			VALUES ($1, $2, 'active', 'self', $3, now()) RETURNING id`, c.ID, b.learner.UserID, b.learner.UserID).Scan(&active)
		if err != nil {
			return err
		}
		err = tx.QueryRow(t.Context(), `
			INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, waitlisted_at)
			VALUES ($1, $2, 'waitlisted', 'self', 'someone', now()) RETURNING id`, c.ID, plugintest.NewID()).Scan(&waiting)
		if err != nil {
			return err
		}
		_, err = tx.Exec(t.Context(), `INSERT INTO lesson_progress (enrolment_id, lesson_id, time_spent_seconds, completed_at) VALUES ($1, $2, 60, now())`, active, ls[0].ID)
		return err
	}))

	m := newModule(t, h, b.teacher, c.ID, "More")
	newLesson(t, h, b.teacher, c.ID, m.ID, "Harmony")
	publish(t, h, b.teacher, c.ID)

	var version, done, required, percent int
	require.NoError(t, h.DB().QueryRow(t.Context(), `
		SELECT version, lessons_completed, lessons_required, percent FROM plugin_courses.course_progress WHERE enrolment_id = $1`, active).
		Scan(&version, &done, &required, &percent))
	require.Equal(t, []int{2, 1, 2, 50}, []int{version, done, required, percent})
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.course_progress WHERE enrolment_id = $1`, waiting))

	// A version that asks for less completes the enrolment, with its event.
	var d courses.Draft
	do(t, h, b.teacher, "GET", "/api/v1/courses/"+c.ID+"/draft", nil, http.StatusOK).JSON(t, &d)
	do(t, h, b.teacher, "DELETE", "/api/v1/courses/"+c.ID+"/modules/"+m.ID, nil, http.StatusNoContent)
	publish(t, h, b.teacher, c.ID)
	var status string
	require.NoError(t, h.DB().QueryRow(t.Context(), `SELECT status FROM plugin_courses.enrolments WHERE id = $1`, active).Scan(&status))
	require.Equal(t, "completed", status)
	var completed []string
	for _, ev := range h.Published(t, b.tenant) {
		if ev.Type == courses.EventCourseCompleted {
			var data map[string]any
			require.NoError(t, json.Unmarshal(ev.Data, &data))
			completed = append(completed, data["enrolment_id"].(string))
		}
	}
	require.Equal(t, []string{active}, completed)
}
