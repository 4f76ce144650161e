package courses_test

import (
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestAppeals(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newGradingFixture(t, h, nil)
	// A second instructor of the course reviews appeals.
	reviewer := plugintest.User(f.tenant, "instructor")
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $2)`, f.courseID, reviewer.UserID)
		return err
	}))
	s := f.submit(t, f.learner, f.assignment.ID)
	appealPath := "/api/v1/submissions/" + s.ID + "/appeals"
	low := map[string]string{f.criterion(0): f.level(0, 1), f.criterion(1): f.level(1, 0)}  // 5 of 15
	high := map[string]string{f.criterion(0): f.level(0, 2), f.criterion(1): f.level(1, 1)} // 15 of 15

	requireProblem(t, f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "Too low"}), 409, "not_graded")
	require.Equal(t, http.StatusOK, f.grade(f.instructor, s.ID, low).Status)
	requireProblem(t, f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": ""}), 422, "", "reason")
	requireProblem(t, f.h.Do(plugintest.User(f.tenant, "learner"), "POST", appealPath, map[string]any{"reason": "Mine?"}), 404, "not-found")

	res := f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "My method follows the textbook."})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var ap courses.Appeal
	res.JSON(t, &ap)
	require.Equal(t, "open", ap.Status)
	require.Equal(t, s.ID, ap.SubmissionID)
	require.Equal(t, 33, ap.Original.Percent)
	require.Equal(t, f.instructor.UserID, ap.Original.GradedBy)
	require.Equal(t, low, ap.Original.Levels)
	requireProblem(t, f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "Again"}), 409, "appeal_open")
	res = f.h.Do(f.learner, "GET", "/api/v1/submissions/"+s.ID, nil)
	var sub courses.Submission
	res.JSON(t, &sub)
	require.Equal(t, "appealed", sub.Status)
	require.Equal(t, 33, sub.Percent, "the grade stands while the appeal is open")

	// The review backlog.
	listAppeals := func(p sdk.Principal, query string) []courses.Appeal {
		t.Helper()
		res := f.h.Do(p, "GET", "/api/v1/appeals"+query, nil)
		require.Equal(t, http.StatusOK, res.Status, res)
		var page sdk.Page[courses.Appeal]
		res.JSON(t, &page)
		return page.Items
	}
	require.Len(t, listAppeals(reviewer, ""), 1)
	require.Len(t, listAppeals(f.admin, ""), 1)
	require.Empty(t, listAppeals(f.outsider, ""))
	require.Empty(t, listAppeals(reviewer, "?status=upheld"))
	requireProblem(t, f.h.Do(f.learner, "GET", "/api/v1/appeals", nil), 403, "permission-denied")
	res = f.h.Do(f.learner, "GET", "/api/v1/appeals/"+ap.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	requireProblem(t, f.h.Do(f.outsider, "GET", "/api/v1/appeals/"+ap.ID, nil), 404, "not-found")

	// Appeals go back to a reviewer: never the grader.
	resolvePath := "/api/v1/appeals/" + ap.ID + "/resolve"
	upheld := map[string]any{"outcome": "upheld", "resolution": "The method is sound.", "levels": high, "feedback": "Regraded."}
	requireProblem(t, f.h.Do(f.instructor, "POST", resolvePath, upheld), 403, "reviewer_is_grader")
	requireProblem(t, f.h.Do(f.outsider, "POST", resolvePath, upheld), 403, "not_a_grader")
	requireProblem(t, f.h.Do(reviewer, "POST", resolvePath, map[string]any{"outcome": "upheld", "resolution": "Yes"}), 422, "", "levels")
	requireProblem(t, f.h.Do(reviewer, "POST", resolvePath, map[string]any{"outcome": "maybe", "resolution": ""}), 422, "", "outcome", "resolution")
	requireProblem(t, f.h.Do(reviewer, "POST", resolvePath, map[string]any{"outcome": "upheld", "resolution": "Yes", "levels": map[string]string{f.criterion(0): f.level(1, 1), f.criterion(1): f.level(1, 1)}}), 422, "unknown_level")
	require.Empty(t, published(t, f.h, f.tenant, courses.EventSubmissionGraded)[1:], "only the first grade was published")

	res = f.h.Do(reviewer, "POST", resolvePath, upheld)
	require.Equal(t, http.StatusOK, res.Status, res)
	ap = courses.Appeal{}
	res.JSON(t, &ap)
	require.Equal(t, "upheld", ap.Status)
	require.Equal(t, reviewer.UserID, ap.ReviewedBy)
	require.NotNil(t, ap.ResolvedAt)
	require.Equal(t, 33, ap.Original.Percent, "the original grade is kept on the appeal")
	require.Equal(t, "graded", ap.Submission.Status)
	require.Equal(t, 100, ap.Submission.Percent)
	require.Equal(t, "Regraded.", ap.Submission.Feedback)
	require.Equal(t, reviewer.UserID, ap.Submission.GradedBy)
	events := published(t, f.h, f.tenant, courses.EventSubmissionGraded)
	require.Len(t, events, 2)
	var data courses.SubmissionGraded
	require.NoError(t, events[1].Decode(&data))
	require.True(t, data.Regrade)
	require.Equal(t, 100, data.Percent)
	require.True(t, data.Passed)
	require.Equal(t, 1, f.count(t, `SELECT assessments_passed FROM course_progress WHERE enrolment_id = $1`, f.enrolment), "the regrade passed the assignment")
	requireProblem(t, f.h.Do(reviewer, "POST", resolvePath, upheld), 409, "appeal_resolved")
	require.Empty(t, listAppeals(reviewer, ""))
	require.Len(t, listAppeals(reviewer, "?status=upheld"), 1)

	// A rejected appeal leaves the grade as it was. The reviewer gave the
	// current grade, so this time the first instructor reviews.
	res = f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "Still unsure."})
	require.Equal(t, http.StatusCreated, res.Status, res)
	res.JSON(t, &ap)
	requireProblem(t, f.h.Do(reviewer, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "No"}), 403, "reviewer_is_grader")
	requireProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "No", "levels": low}), 422, "", "levels")
	res = f.h.Do(f.instructor, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "The grade stands."})
	require.Equal(t, http.StatusOK, res.Status, res)
	ap = courses.Appeal{}
	res.JSON(t, &ap)
	require.Equal(t, "rejected", ap.Status)
	require.Equal(t, "graded", ap.Submission.Status)
	require.Equal(t, 100, ap.Submission.Percent)
	require.Equal(t, reviewer.UserID, ap.Submission.GradedBy)
	require.Len(t, published(t, f.h, f.tenant, courses.EventSubmissionGraded), 2, "a rejection publishes nothing")

	// Another institution sees none of it.
	other := newAssessFixture(t, h)
	requireProblem(t, h.Do(other.admin, "GET", "/api/v1/appeals/"+ap.ID, nil), 404, "not-found")
	requireProblem(t, h.Do(other.admin, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "x"}), 404, "not-found")
	require.Empty(t, listAppeals(other.admin, "?status=rejected"))
}
