package courses_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestDemoContent(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	admin, instructor, learner := plugintest.User(tenant, "admin"), plugintest.User(tenant, "instructor"), plugintest.User(tenant, "learner")
	args := map[string]string{"instructor_id": instructor.UserID, "learner_id": learner.UserID, "admin_id": admin.UserID}
	out, err := h.RunJob(t, courses.JobDemoContent, plugintest.JobRun{TenantID: tenant, Args: args})
	require.NoError(t, err)
	require.Contains(t, out, "enrolled the learner")
	out, err = h.RunJob(t, courses.JobDemoContent, plugintest.JobRun{TenantID: tenant, Args: args})
	require.NoError(t, err)
	require.Equal(t, "the demo course exists", out)

	var types []string
	for _, e := range h.Published(t, tenant) {
		types = append(types, e.Type)
	}
	require.Equal(t, []string{courses.EventCoursePublished, courses.EventEnrolmentCreated}, types)
	var n int
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `SELECT count(*) FROM course_progress WHERE user_id = $1 AND lessons_required = 4 AND assessments_required = 2`, learner.UserID).Scan(&n)
	}))
	require.Equal(t, 1, n, "the learner is enrolled with a progress snapshot")

	_, err = h.RunJob(t, courses.JobDemoContent, plugintest.JobRun{TenantID: tenant, Args: map[string]string{"instructor_id": "nope"}})
	require.Error(t, err)
}

// A run in one institution naming another institution's people (or a
// learner as the instructor) is refused before it writes anything: a
// stranger neither teaches nor learns here.
func TestDemoContentRefusesStrangers(t *testing.T) {
	t.Parallel()
	h := setup(t)
	b, c := plugintest.NewTenant(), plugintest.NewTenant()
	theirs := map[string]string{
		"admin_id": plugintest.User(b, "admin").UserID, "instructor_id": plugintest.User(b, "instructor").UserID,
		"learner_id": plugintest.User(b, "learner").UserID,
	}
	ours := map[string]string{
		"admin_id": plugintest.User(c, "admin").UserID, "instructor_id": plugintest.User(c, "instructor").UserID,
		"learner_id": plugintest.User(c, "learner").UserID,
	}
	mixed := func(field, id string) map[string]string {
		m := map[string]string{}
		for k, v := range ours {
			m[k] = v
		}
		m[field] = id
		return m
	}
	for _, tc := range []struct {
		name   string
		args   map[string]string
		code   string
		fields []string
	}{
		{"all of another institution", theirs, "not_an_instructor", []string{"admin_id", "instructor_id", "learner_id"}},
		{"their instructor", mixed("instructor_id", theirs["instructor_id"]), "not_an_instructor", []string{"instructor_id"}},
		{"their learner", mixed("learner_id", theirs["learner_id"]), "not_a_member", []string{"learner_id"}},
		{"their admin", mixed("admin_id", theirs["admin_id"]), "not_a_member", []string{"admin_id"}},
		{"a learner as the instructor", mixed("instructor_id", ours["learner_id"]), "not_an_instructor", []string{"instructor_id"}},
		{"no one", mixed("learner_id", plugintest.NewID()), "not_a_member", []string{"learner_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.RunJob(t, courses.JobDemoContent, plugintest.JobRun{TenantID: c, Args: tc.args})
			var se *sdk.Error
			require.ErrorAs(t, err, &se)
			require.ErrorIs(t, err, sdk.ErrInvalid)
			require.Equal(t, tc.code, se.Code)
			var fields []string
			for _, f := range se.Fields {
				fields = append(fields, f.Field)
			}
			require.ElementsMatch(t, tc.fields, fields)
		})
	}
	require.Zero(t, countIn(t, h, c, `SELECT count(*) FROM courses`), "nothing written")
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.course_instructors`))
	require.Empty(t, h.Published(t, ""))

	// With its own people, the same run works.
	out, err := h.RunJob(t, courses.JobDemoContent, plugintest.JobRun{TenantID: c, Args: ours})
	require.NoError(t, err)
	require.Contains(t, out, "enrolled the learner")
}
