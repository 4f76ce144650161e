package telemetry_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

func courseStmt(user, course, cohort string, ts time.Time, verb, objectType string, result map[string]any) map[string]any {
	ext := map[string]any{telemetry.ExtCourseID: course}
	if cohort != "" {
		ext[telemetry.ExtCohortID] = cohort
	}
	s := stmt(user, ts, map[string]any{
		"verb":    map[string]any{"id": verb},
		"object":  map[string]any{"id": "https://edulure.dev/xapi/activities/x/" + plugintest.NewID(), "definition": map[string]any{"type": objectType}},
		"context": map[string]any{"extensions": ext},
	})
	if result != nil {
		s["result"] = result
	}
	return s
}

func TestRollupsAndAggregates(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := newInst(t, h), newInst(t, h)
	for _, in := range []inst{a, b} {
		h.SetTenantConfig(in.id, []byte(`{"default_granted": ["analytics"]}`))
	}
	course, cohort := plugintest.NewID(), plugintest.NewID()
	now := time.Now().UTC()
	quiz := "https://edulure.dev/xapi/activities/quizzes/q1"
	quizStmt := func(user string, scaled float64) map[string]any {
		s := courseStmt(user, course, cohort, now, telemetry.VerbPassed, telemetry.ActivityAssessment, map[string]any{"score": map[string]any{"scaled": scaled}})
		s["object"] = map[string]any{"id": quiz, "definition": map[string]any{"type": telemetry.ActivityAssessment}}
		return s
	}
	r := ingest(t, h, a.learner,
		courseStmt(a.learner.UserID, course, cohort, now, telemetry.VerbCompleted, telemetry.ActivityLesson, map[string]any{"duration": "PT5M"}),
		courseStmt(a.learner.UserID, course, cohort, now.Add(-2*time.Hour), telemetry.VerbCompleted, telemetry.ActivityLesson, map[string]any{"duration": "PT10M"}),
		courseStmt(a.learner.UserID, course, "", now.Add(-26*time.Hour), telemetry.VerbCompleted, telemetry.ActivityCourse, nil),
		quizStmt(a.learner.UserID, 0.85), quizStmt(a.learner.UserID, 1), quizStmt(a.learner.UserID, 0.05),
	)
	require.Equal(t, 6, r.Stored, r)
	require.Equal(t, 1, ingest(t, h, a.other, courseStmt(a.other.UserID, course, cohort, now, telemetry.VerbAttempted, telemetry.ActivityLesson, nil)).Stored)
	// Another institution, same course ID: counted apart.
	require.Equal(t, 1, ingest(t, h, b.learner, courseStmt(b.learner.UserID, course, cohort, now, telemetry.VerbCompleted, telemetry.ActivityLesson, nil)).Stored)

	// Before the rollup job: nothing to read.
	get := func(in inst, path string, v any) {
		t.Helper()
		q := url.Values{"from": {now.Add(-72 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}
		res := h.Do(in.admin, "GET", "/api/v1/telemetry/aggregates/"+path+"?"+q.Encode(), nil)
		require.Equal(t, 200, res.Status, res)
		res.JSON(t, v)
	}
	var verbs telemetry.VerbAggregates
	get(a, "verbs", &verbs)
	require.Empty(t, verbs.Items)

	out, err := h.RunJob(t, telemetry.JobRollup, plugintest.JobRun{TenantID: a.id, Trigger: "schedule"})
	require.NoError(t, err)
	require.Contains(t, out, "hours recomputed")
	again, err := h.RunJob(t, telemetry.JobRollup, plugintest.JobRun{TenantID: a.id, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "0 hours recomputed", again)

	get(a, "verbs", &verbs)
	require.Equal(t, []telemetry.VerbCount{{Verb: telemetry.VerbCompleted, Statements: 3}, {Verb: telemetry.VerbPassed, Statements: 3}, {Verb: telemetry.VerbAttempted, Statements: 1}}, verbs.Items)

	var courses telemetry.CourseAggregates
	get(a, "courses", &courses)
	require.ElementsMatch(t, []telemetry.CourseFigures{
		{CourseID: course, CohortID: cohort, LessonCompletions: 2, TimeSpentSeconds: 900, Statements: 6},
		{CourseID: course, CourseCompletions: 1, Statements: 1},
	}, courses.Items)

	var scores telemetry.ScoreAggregates
	get(a, "quiz-scores", &scores)
	require.Equal(t, []telemetry.ScoreDistribution{{ObjectID: quiz, Attempts: 3, Buckets: []int64{1, 0, 0, 0, 0, 0, 0, 0, 1, 1}}}, scores.Items)

	var active telemetry.ActiveLearners
	get(a, "active-learners", &active)
	var learners, total int64
	for _, d := range active.Items {
		learners = max(learners, d.Learners)
		total += d.Statements
	}
	require.Equal(t, int64(2), learners, "%+v", active.Items)
	require.Equal(t, int64(7), total)

	// b's rollups hold only b's statement, once b's job has run.
	get(b, "verbs", &verbs)
	require.Empty(t, verbs.Items)
	_, err = h.RunJob(t, telemetry.JobRollup, plugintest.JobRun{TenantID: b.id, Trigger: "schedule"})
	require.NoError(t, err)
	get(b, "courses", &courses)
	require.Equal(t, []telemetry.CourseFigures{{CourseID: course, CohortID: cohort, LessonCompletions: 1, Statements: 1}}, courses.Items)

	// Learners do not read aggregates; the range is checked.
	require.Equal(t, 403, h.Do(a.learner, "GET", "/api/v1/telemetry/aggregates/verbs", nil).Status)
	res := h.Do(a.admin, "GET", "/api/v1/telemetry/aggregates/verbs?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", nil)
	require.Equal(t, 422, res.Status, res)

	// Freshness.
	res = h.Do(a.admin, "GET", "/api/v1/telemetry/freshness", nil)
	require.Equal(t, 200, res.Status, res)
	var f telemetry.Freshness
	res.JSON(t, &f)
	require.NotNil(t, f.NewestStored)
	require.NotNil(t, f.LagSeconds)
	require.Equal(t, int64(7), f.StatementsLastHour)
	require.NotNil(t, f.DelayP95Seconds)
	require.GreaterOrEqual(t, *f.DelayP95Seconds, *f.DelayP50Seconds)
	require.Nil(t, f.LastExportedHour)
	require.Zero(t, f.RollupQueue)
}
