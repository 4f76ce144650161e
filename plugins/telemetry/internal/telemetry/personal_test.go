package telemetry_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

// A person's export holds their statements and decisions; their erasure
// deletes the statements (and the rollups follow), keeps the decisions
// under a pseudonym, and leaves others alone.
func TestPersonalData(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h)
	g := decide(t, h, in.learner, "analytics", 1, true)
	decide(t, h, in.other, "analytics", 1, true)
	at := g.DecidedAt.Add(time.Second)
	course := plugintest.NewID()
	mine := courseStmt(in.learner.UserID, course, "", at, telemetry.VerbCompleted, telemetry.ActivityLesson, nil)
	require.Equal(t, 1, ingest(t, h, in.learner, mine).Stored)
	d := decide(t, h, in.other, "analytics", 1, true)
	require.Equal(t, 1, ingest(t, h, in.other, courseStmt(in.other.UserID, course, "", d.DecidedAt.Add(time.Millisecond), telemetry.VerbCompleted, telemetry.ActivityLesson, nil)).Stored)
	_, err := h.RunJob(t, telemetry.JobRollup, plugintest.JobRun{TenantID: in.id, Trigger: "schedule"})
	require.NoError(t, err)

	x := h.ExportPersonalData(t, in.id, in.learner.UserID)
	require.Len(t, x.Rows("statements"), 1)
	require.Len(t, x.Rows("consent_decisions"), 1)
	require.NotContains(t, x.Text(), in.other.UserID)

	dry := h.ErasePersonalDataDryRun(t, in.id, in.learner.UserID)
	require.Equal(t, int64(1), dry.Of("statements").Deleted)
	counts := h.ErasePersonalData(t, in.id, in.learner.UserID)
	require.Equal(t, int64(1), counts.Of("statements").Deleted)
	require.Zero(t, counts.Of("consent_decisions").Deleted)
	h.RequireNoTrace(t, in.learner.UserID)
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM consent_decisions WHERE id = $1 AND user_id <> $2`, g.ID, g.UserID),
		"the decision stays, under a pseudonym")
	// A statement the erased person had sent is gone from the ID index too:
	// nothing names them, and no replay is answered as theirs.
	require.Zero(t, countIn(t, h, in.id, `SELECT count(*) FROM statement_ids WHERE id = $1`, mine["id"]))

	// The rollups follow once the job has run.
	_, err = h.RunJob(t, telemetry.JobRollup, plugintest.JobRun{TenantID: in.id, Trigger: "schedule"})
	require.NoError(t, err)
	var courses telemetry.CourseAggregates
	q := url.Values{"from": {at.Add(-time.Hour).Format(time.RFC3339)}}
	res := h.Do(in.admin, "GET", "/api/v1/telemetry/aggregates/courses?"+q.Encode(), nil)
	require.Equal(t, 200, res.Status, res)
	res.JSON(t, &courses)
	require.Equal(t, []telemetry.CourseFigures{{CourseID: course, LessonCompletions: 1, Statements: 1}}, courses.Items)

	// An institution that leaves takes everything with it.
	h.EraseTenant(t, in.id)
}

// An erased admin leaves no trace in what they did for others: the policy
// they published and the decision they recorded for a learner stay, under
// the erasure's pseudonym.
func TestPersonalDataOfAnAdmin(t *testing.T) {
	t.Parallel()
	h := setup(t)
	in := newInst(t, h) // the admin published the analytics policy
	res := h.Do(in.admin, "POST", "/api/v1/telemetry/consents", map[string]any{"purpose": "analytics", "policy_version": 1, "granted": true, "user_id": in.learner.UserID})
	require.Equal(t, 201, res.Status, res)
	var d telemetry.Decision
	res.JSON(t, &d)
	require.Equal(t, "admin", d.Source)

	x := h.ExportPersonalData(t, in.id, in.admin.UserID)
	require.Contains(t, x.Text(), in.admin.UserID)
	h.ErasePersonalData(t, in.id, in.admin.UserID)
	h.RequireNoTrace(t, in.admin.UserID)
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM consent_decisions WHERE id = $1 AND user_id = $2`, d.ID, in.learner.UserID),
		"the learner's decision stays theirs")
	require.Equal(t, 1, countIn(t, h, in.id, `SELECT count(*) FROM consent_policies WHERE version = 1`), "the policy stays")
}
