package courses_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestSubmit(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newGradingFixture(t, h, nil)
	path := "/api/v1/assignments/" + f.assignment.ID + "/submissions"

	s := f.submit(t, f.learner, f.assignment.ID)
	require.Equal(t, f.assignment.ID, s.AssignmentID)
	require.Equal(t, f.courseID, s.CourseID)
	require.Equal(t, f.enrolment, s.EnrolmentID)
	require.Equal(t, f.learner.UserID, s.UserID)
	require.Equal(t, "My report.", s.Body)
	require.Len(t, s.Assets, 1)
	require.Equal(t, "submitted", s.Status)
	require.Zero(t, s.DaysLate)
	require.Nil(t, s.Grade)
	requireProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{"body": "Again."}), 409, "already_submitted")

	// Who may submit.
	stranger := plugintest.User(f.tenant, "learner")
	requireProblem(t, f.h.Do(stranger, "POST", path, map[string]any{"body": "Hi"}), 404, "not_enrolled")
	waiting := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, waiting, "waitlisted")
	requireProblem(t, f.h.Do(waiting, "POST", path, map[string]any{"body": "Hi"}), 409, "enrolment_waitlisted")
	requireProblem(t, f.h.Do(f.learner, "POST", "/api/v1/assignments/"+plugintest.NewID()+"/submissions", map[string]any{"body": "Hi"}), 404, "not-found")

	// What a submission needs.
	second := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, second, "active")
	requireProblem(t, f.h.Do(second, "POST", path, map[string]any{"body": "  "}), 422, "", "body")
	requireProblem(t, f.h.Do(second, "POST", path, map[string]any{"assets": []map[string]any{{"url": "ftp://x", "type": "image/png", "size_bytes": 1}}}), 422, "", "assets.0.url")
	p := requireProblem(t, f.h.Do(second, "POST", path, map[string]any{"body": strings.Repeat("x", 100001)}), 422, "", "body")
	require.Equal(t, "must be at most 100000 characters long", p.Fields[0].Message)
	p = requireProblem(t, f.h.Do(second, "POST", path, map[string]any{"body": "a\x00b"}), 422, "", "body")
	require.Contains(t, p.Fields[0].Message, "NUL")
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM submissions`), "nothing refused was written")
	res := f.h.Do(second, "POST", path, map[string]any{"assets": []map[string]any{{"url": "https://cdn.example.test/a.pdf", "type": "application/pdf", "size_bytes": 10}}})
	require.Equal(t, http.StatusCreated, res.Status, res)

	// An assignment not in the published version takes nothing yet.
	draft := f.createAssignment(t, f.rubric, time.Now().Add(time.Hour), nil)
	requireProblem(t, f.h.Do(second, "POST", "/api/v1/assignments/"+draft.ID+"/submissions", map[string]any{"body": "Early"}), 404, "not-found")
}

func TestLateSubmissions(t *testing.T) {
	t.Parallel()
	f := newAssessFixture(t, setup(t))
	r := f.createRubric(t, f.courseID)
	past := time.Now().Add(-25 * time.Hour) // two started days ago
	strict := f.createAssignment(t, r, past, nil)
	lenient := f.createAssignment(t, r, past, map[string]any{"late_policy": "penalty", "late_penalty_percent": 15, "late_cutoff_days": 3})
	short := f.createAssignment(t, r, past, map[string]any{"late_policy": "penalty", "late_penalty_percent": 15, "late_cutoff_days": 1})
	heavy := f.createAssignment(t, r, time.Now().Add(-6*24*time.Hour-time.Minute), map[string]any{"late_policy": "penalty", "late_penalty_percent": 20, "late_cutoff_days": 10})
	f.publish(t)
	f.enrol(t, f.courseID, f.learner, "active")
	g := &gradingFixture{assessFixture: f, rubric: r}
	body := map[string]any{"body": "Late, sorry."}

	requireProblem(t, f.h.Do(f.learner, "POST", "/api/v1/assignments/"+strict.ID+"/submissions", body), 409, "deadline_passed")
	requireProblem(t, f.h.Do(f.learner, "POST", "/api/v1/assignments/"+short.ID+"/submissions", body), 409, "deadline_passed")
	require.Zero(t, f.count(t, `SELECT count(*) FROM submissions`), "a refused submission writes nothing")

	s := g.submit(t, f.learner, lenient.ID)
	require.Equal(t, 2, s.DaysLate)
	// Full marks lose 15% per started day late: 100 - 30.
	res := g.grade(f.instructor, s.ID, map[string]string{g.criterion(0): g.level(0, 2), g.criterion(1): g.level(1, 1)})
	require.Equal(t, http.StatusOK, res.Status, res)
	var graded courses.Submission
	res.JSON(t, &graded)
	require.Equal(t, 15, graded.Score)
	require.Equal(t, 100, graded.RawPercent)
	require.Equal(t, 30, graded.PenaltyPercent)
	require.Equal(t, 70, graded.Percent)
	require.True(t, graded.Passed, "70 meets the default pass mark")

	// Seven started days at 20% take everything: the penalty stops at 100.
	s = g.submit(t, f.learner, heavy.ID)
	require.Equal(t, 7, s.DaysLate)
	res = g.grade(f.instructor, s.ID, map[string]string{g.criterion(0): g.level(0, 1), g.criterion(1): g.level(1, 1)})
	require.Equal(t, http.StatusOK, res.Status, res)
	graded = courses.Submission{}
	res.JSON(t, &graded)
	require.Equal(t, 66, graded.RawPercent, "10 of 15")
	require.Equal(t, 100, graded.PenaltyPercent)
	require.Equal(t, 0, graded.Percent)
	require.False(t, graded.Passed)
}

func TestGrade(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newGradingFixture(t, h, map[string]any{"pass_mark": 60})
	s := f.submit(t, f.learner, f.assignment.ID)
	before := len(f.h.Published(t, f.tenant))
	full := map[string]string{f.criterion(0): f.level(0, 1), f.criterion(1): f.level(1, 1)}

	// Refused grades change nothing.
	p := requireProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): f.level(1, 0), f.criterion(1): f.level(1, 1)}), 422, "unknown_level", "levels."+f.criterion(0))
	require.Contains(t, p.Fields[0].Message, "is not a level of criterion \"Method\"")
	requireProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): plugintest.NewID(), "nope": f.level(1, 0)}), 422, "unknown_level", "levels."+f.criterion(0), "levels."+f.criterion(1), "levels.nope")
	requireProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): f.level(0, 0)}), 422, "missing_level", "levels."+f.criterion(1))
	requireProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): f.level(0, 0), f.criterion(1): f.level(1, 0), "extra": "x"}), 422, "unknown_criterion", "levels.extra")
	requireProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/submissions/"+s.ID+"/grade", map[string]any{}), 422, "", "levels")
	requireProblem(t, f.grade(f.outsider, s.ID, full), 403, "not_a_grader")
	requireProblem(t, f.grade(f.learner, s.ID, full), 403, "permission-denied")
	requireProblem(t, f.grade(f.instructor, plugintest.NewID(), full), 404, "not-found")
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM submissions WHERE status = 'submitted' AND graded_at IS NULL AND score IS NULL`))
	require.Len(t, f.h.Published(t, f.tenant), before, "nothing published")

	// 10 of 15 is 66%, over the assignment's pass mark of 60.
	res := f.grade(f.instructor, s.ID, full)
	require.Equal(t, http.StatusOK, res.Status, res)
	var g courses.Submission
	res.JSON(t, &g)
	require.Equal(t, "graded", g.Status)
	require.Equal(t, full, g.Levels)
	require.Equal(t, 10, g.Score)
	require.Equal(t, 15, g.MaxScore)
	require.Equal(t, 66, g.Percent)
	require.Zero(t, g.PenaltyPercent)
	require.True(t, g.Passed)
	require.Equal(t, "Clear question.", g.Feedback)
	require.Equal(t, f.instructor.UserID, g.GradedBy)
	require.False(t, g.GradedAt.IsZero())

	events := published(t, f.h, f.tenant, courses.EventSubmissionGraded)
	require.Len(t, events, 1)
	require.Equal(t, "user:"+f.instructor.UserID, events[0].Actor)
	var data courses.SubmissionGraded
	require.NoError(t, events[0].Decode(&data))
	require.Equal(t, courses.SubmissionGraded{
		SubmissionID: s.ID, AssignmentID: f.assignment.ID, CourseID: f.courseID, UserID: f.learner.UserID, Percent: 66, Passed: true,
	}, data)
	var passed, required int
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `SELECT assessments_passed, assessments_required FROM course_progress WHERE enrolment_id = $1`, f.enrolment).Scan(&passed, &required)
	}))
	require.Equal(t, []int{1, 1}, []int{passed, required}, "the grade moved the learner's progress")

	requireProblem(t, f.grade(f.instructor, s.ID, full), 409, "already_graded")
	// The admin grades any course (and reads the grade).
	res = f.h.Do(f.admin, "GET", "/api/v1/submissions/"+s.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res = f.h.Do(f.learner, "GET", "/api/v1/submissions/"+s.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	requireProblem(t, f.h.Do(f.outsider, "GET", "/api/v1/submissions/"+s.ID, nil), 404, "not-found")
	requireProblem(t, f.h.Do(plugintest.User(f.tenant, "learner"), "GET", "/api/v1/submissions/"+s.ID, nil), 404, "not-found")

	// Another institution sees none of it.
	other := newAssessFixture(t, h)
	requireProblem(t, f.grade(other.admin, s.ID, full), 404, "not-found")
	requireProblem(t, h.Do(other.admin, "GET", "/api/v1/submissions/"+s.ID, nil), 404, "not-found")
	requireProblem(t, h.Do(other.admin, "POST", "/api/v1/submissions/"+s.ID+"/appeals", map[string]any{"reason": "x"}), 404, "not-found")
}

func TestSubmissionLists(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := newGradingFixture(t, h, nil)
	// Another institution's work is never listed.
	elsewhere := newGradingFixture(t, h, nil)
	elsewhere.submit(t, elsewhere.learner, elsewhere.assignment.ID)
	// A second course, taught by another instructor.
	other := plugintest.User(f.tenant, "instructor")
	courseB, moduleB, lessonB := f.addCourse(t)
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `UPDATE course_instructors SET user_id = $2 WHERE course_id = $1`, courseB, other.UserID)
		return err
	}))
	rubricB := f.createRubricAs(t, other, courseB)
	var assignmentB courses.Assignment
	res := f.h.Do(other, "POST", "/api/v1/courses/"+courseB+"/assignments", map[string]any{"title": "B", "rubric_id": rubricB.ID, "due_at": time.Now().Add(time.Hour).Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, res.Status, res)
	res.JSON(t, &assignmentB)
	f.publishCourse(t, courseB, moduleB, lessonB)

	learner2 := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, learner2, "active")
	f.enrol(t, courseB, f.learner, "active")
	s1 := f.submit(t, f.learner, f.assignment.ID)
	s2 := f.submit(t, learner2, f.assignment.ID)
	s3 := f.submit(t, f.learner, assignmentB.ID)
	require.Equal(t, http.StatusOK, f.grade(f.instructor, s1.ID, map[string]string{f.criterion(0): f.level(0, 0), f.criterion(1): f.level(1, 0)}).Status)

	list := func(p sdk.Principal, query string) []string {
		t.Helper()
		res := f.h.Do(p, "GET", "/api/v1/submissions"+query, nil)
		require.Equal(t, http.StatusOK, res.Status, res)
		var page sdk.Page[courses.Submission]
		res.JSON(t, &page)
		ids := []string{}
		for _, s := range page.Items {
			ids = append(ids, s.ID)
		}
		return ids
	}
	// Learners: their own, oldest first.
	require.Equal(t, []string{s1.ID, s3.ID}, list(f.learner, ""))
	require.Equal(t, []string{s2.ID}, list(learner2, ""))
	// Graders: the backlog of the courses they teach.
	require.Equal(t, []string{s1.ID, s2.ID}, list(f.instructor, ""))
	require.Equal(t, []string{s2.ID}, list(f.instructor, "?status=submitted"))
	require.Equal(t, []string{s1.ID}, list(f.instructor, "?status=graded&assignment_id="+f.assignment.ID))
	require.Equal(t, []string{s3.ID}, list(other, "?status=submitted"))
	require.Empty(t, list(f.outsider, ""))
	require.Empty(t, list(f.instructor, "?scope=own"), "the instructor submitted nothing")
	// The admin: everything of the institution, page by page.
	require.Equal(t, []string{s1.ID, s2.ID, s3.ID}, list(f.admin, ""))
	require.Equal(t, []string{s2.ID, s3.ID}, list(f.admin, "?status=submitted"))
	res = f.h.Do(f.admin, "GET", "/api/v1/submissions?limit=2", nil)
	var page sdk.Page[courses.Submission]
	res.JSON(t, &page)
	require.Len(t, page.Items, 2)
	require.Equal(t, []string{s3.ID}, list(f.admin, "?limit=2&cursor="+page.NextCursor))

	requireProblem(t, f.h.Do(f.instructor, "GET", "/api/v1/submissions?course_id="+courseB, nil), 403, "not_a_grader")
	requireProblem(t, f.h.Do(f.learner, "GET", "/api/v1/submissions?scope=grading", nil), 403, "not_a_grader")
	requireProblem(t, f.h.Do(f.learner, "GET", "/api/v1/submissions?status=lost&scope=all", nil), 422, "", "status", "scope")
	requireProblem(t, f.h.Do(f.learner, "GET", "/api/v1/submissions?course_id=x", nil), 422, "", "course_id")
	requireProblem(t, f.h.Do(f.instructor, "GET", "/api/v1/submissions?course_id="+plugintest.NewID(), nil), 404, "not-found")
}
