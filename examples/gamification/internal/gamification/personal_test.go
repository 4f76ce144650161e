package gamification_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/examples/gamification/internal/gamification"
)

// A distinctive name, which reaches the plugin only in an award's reason.
const memberName = "Zephyrine Quillfeather"

// earn gives learner an award from teacher (naming them), an award for
// a completed lesson, and classmate an award from learner's teacher; then
// the nightly snapshot is taken.
func earn(t *testing.T, h *plugintest.Harness, tenant string, teacher sdk.Principal, learner, classmate string) {
	t.Helper()
	res := h.Do(teacher, "POST", awardPath, map[string]any{"user_id": learner, "points": 30, "reason": "Well done, " + memberName})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.NoError(t, h.Deliver(t, plugintest.Event{Type: gamification.EventLessonCompleted, TenantID: tenant,
		Data: map[string]any{"user_id": learner, "course_id": plugintest.NewID(), "lesson_id": plugintest.NewID()}}))
	award(t, h, teacher, classmate, 20)
	_, err := h.RunJob(t, gamification.SnapshotJob, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
}

func TestExportAndErasure(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher, learner, classmate := plugintest.User(tenant, "instructor"), member(tenant), member(tenant)
	earn(t, h, tenant, teacher, learner, classmate)

	ex := h.ExportPersonalData(t, tenant, learner)
	require.Len(t, ex.Rows("awards"), 2)
	require.Len(t, ex.Rows("totals"), 1)
	require.Equal(t, json.Number("40"), ex.Rows("totals")[0]["points"])
	require.Len(t, ex.Rows("snapshots"), 1)
	require.Equal(t, json.Number("1"), ex.Rows("snapshots")[0]["rank"])
	require.NotContains(t, ex.Text(), classmate)
	require.NotContains(t, ex.Text(), teacher.UserID, "the awarder is someone else")

	// The teacher's export: the awards they gave, by reference.
	given := h.ExportPersonalData(t, tenant, teacher.UserID)
	require.Len(t, given.References("awards"), 2)
	require.NotContains(t, given.Text(), learner)
	require.NotContains(t, given.Text(), memberName)

	got := h.ErasePersonalData(t, tenant, learner)
	require.Equal(t, plugintest.Count{Class: "awards", Table: "awards", Deleted: 2}, got.Of("awards"))
	require.Equal(t, int64(1), got.Of("totals").Deleted)
	require.Equal(t, int64(1), got.Of("snapshots").Anonymised)
	h.RequireNoTrace(t, learner, memberName)

	// The leaderboard drops them; the past snapshot keeps its shape.
	var board gamification.Leaderboard
	res := h.Do(teacher, "GET", "/api/v1/leaderboard", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &board)
	require.Len(t, board.Items, 1)
	require.Equal(t, classmate, board.Items[0].UserID)
	snap := latest(t, h, tenant)
	require.Len(t, snap.Items, 2)
	require.NotEqual(t, learner, snap.Items[0].UserID)
	require.EqualValues(t, 40, snap.Items[0].Points)

	// Erasing the teacher keeps the awards they gave, without their ID.
	got = h.ErasePersonalData(t, tenant, teacher.UserID)
	require.Equal(t, int64(1), got.Of("awards").References, "the classmate's award (the learner's are gone)")
	h.RequireNoTrace(t, teacher.UserID)
	require.Len(t, h.ExportPersonalData(t, tenant, classmate).Rows("awards"), 1)
}

// Erasing a member of one institution leaves their points in another.
func TestErasureIsPerInstitution(t *testing.T) {
	t.Parallel()
	person, a, b := plugintest.NewID(), plugintest.NewTenant(), plugintest.NewTenant()
	h := memberOfBoth(t, person, a, b)
	for _, tenant := range []string{a, b} {
		res := h.Do(plugintest.User(tenant, "instructor"), "POST", awardPath, map[string]any{"user_id": person, "points": 5, "reason": "Thanks, " + memberName})
		require.Equal(t, http.StatusCreated, res.Status, res)
	}
	inB := h.ExportPersonalData(t, b, person)
	h.ErasePersonalData(t, a, person)
	require.Equal(t, inB.Text(), h.ExportPersonalData(t, b, person).Text())
	for _, tr := range h.FindTraces(t, person, memberName) {
		require.Equal(t, []string{b}, tr.Tenants, "%s", tr)
	}
}

// Offboarding an institution deletes every row the plugin holds for it.
func TestEraseInstitution(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	earn(t, h, a, plugintest.User(a, "instructor"), member(a), member(a))
	kept := member(b)
	earn(t, h, b, plugintest.User(b, "instructor"), kept, member(b))

	want := h.EraseTenantDryRun(t, a)
	require.Equal(t, int64(3), want.Table("awards").Deleted)
	require.Equal(t, int64(2), want.Table("totals").Deleted)
	require.Equal(t, int64(1), want.Table("snapshots").Deleted)
	require.Equal(t, want, h.EraseTenant(t, a))
	require.Len(t, h.ExportPersonalData(t, b, kept).Rows("awards"), 2)
}
