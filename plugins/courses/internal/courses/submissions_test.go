package courses_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// gradingFixture is an assessFixture with a published assignment graded
// with reportRubric, due in two days, and an enrolled learner.
type gradingFixture struct {
	*assessFixture
	rubric     courses.Rubric
	assignment courses.Assignment
	enrolment  string
}

func newGradingFixture(t *testing.T, h *plugintest.Harness, extra map[string]any) *gradingFixture {
	t.Helper()
	f := &gradingFixture{assessFixture: newAssessFixture(t, h)}
	f.rubric = f.createRubric(t, f.courseID)
	f.assignment = f.createAssignment(t, f.rubric, time.Now().Add(48*time.Hour), extra)
	f.publish(t)
	f.enrolment = f.enrol(t, f.courseID, f.learner, "active")
	return f
}

// level is the ID of a level of the rubric: criterion c, level l.
func (f *gradingFixture) level(c, l int) string { return f.rubric.Criteria[c].Levels[l].ID }

func (f *gradingFixture) criterion(c int) string { return f.rubric.Criteria[c].ID }

func (f *gradingFixture) submit(t *testing.T, learner sdk.Principal, assignmentID string) courses.Submission {
	t.Helper()
	res := f.h.Do(learner, "POST", "/api/v1/assignments/"+assignmentID+"/submissions", map[string]any{
		"body": "My report.", "assets": []map[string]any{{"url": "https://cdn.example.test/chart.png", "type": "image/png", "size_bytes": 2048, "title": "Chart"}},
	})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var s courses.Submission
	res.JSON(t, &s)
	return s
}

func (f *gradingFixture) grade(p sdk.Principal, submissionID string, levels map[string]string) *plugintest.Result {
	return f.h.Do(p, "POST", "/api/v1/submissions/"+submissionID+"/grade", map[string]any{"levels": levels, "feedback": "Clear question."})
}

// eventsOfType are the events of one type published for the institution.
func (f *assessFixture) eventsOfType(t *testing.T, eventType string) []plugintest.PublishedEvent {
	t.Helper()
	var out []plugintest.PublishedEvent
	for _, e := range f.h.Published(t, f.tenant) {
		if e.Type == eventType {
			out = append(out, e)
		}
	}
	return out
}

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
	assessProblem(t, f.h.Do(f.learner, "POST", path, map[string]any{"body": "Again."}), 409, "already_submitted")

	// Who may submit.
	stranger := plugintest.User(f.tenant, "learner")
	assessProblem(t, f.h.Do(stranger, "POST", path, map[string]any{"body": "Hi"}), 404, "not_enrolled")
	waiting := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, waiting, "waitlisted")
	assessProblem(t, f.h.Do(waiting, "POST", path, map[string]any{"body": "Hi"}), 409, "enrolment_waitlisted")
	assessProblem(t, f.h.Do(f.learner, "POST", "/api/v1/assignments/"+plugintest.NewID()+"/submissions", map[string]any{"body": "Hi"}), 404, "not-found")

	// What a submission needs.
	second := plugintest.User(f.tenant, "learner")
	f.enrol(t, f.courseID, second, "active")
	assessProblem(t, f.h.Do(second, "POST", path, map[string]any{"body": "  "}), 422, "", "body")
	assessProblem(t, f.h.Do(second, "POST", path, map[string]any{"assets": []map[string]any{{"url": "ftp://x", "type": "image/png", "size_bytes": 1}}}), 422, "", "assets[0].url")
	assessProblem(t, f.h.Do(second, "POST", path, map[string]any{"body": string(make([]byte, 100001))}), 422, "", "body")
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM submissions`), "nothing refused was written")
	res := f.h.Do(second, "POST", path, map[string]any{"assets": []map[string]any{{"url": "https://cdn.example.test/a.pdf", "type": "application/pdf", "size_bytes": 10}}})
	require.Equal(t, http.StatusCreated, res.Status, res)

	// An assignment not in the published version takes nothing yet.
	draft := f.createAssignment(t, f.rubric, time.Now().Add(time.Hour), nil)
	assessProblem(t, f.h.Do(second, "POST", "/api/v1/assignments/"+draft.ID+"/submissions", map[string]any{"body": "Early"}), 404, "not-found")
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

	assessProblem(t, f.h.Do(f.learner, "POST", "/api/v1/assignments/"+strict.ID+"/submissions", body), 409, "deadline_passed")
	assessProblem(t, f.h.Do(f.learner, "POST", "/api/v1/assignments/"+short.ID+"/submissions", body), 409, "deadline_passed")
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
	published := len(f.h.Published(t, f.tenant))
	full := map[string]string{f.criterion(0): f.level(0, 1), f.criterion(1): f.level(1, 1)}

	// Refused grades change nothing.
	p := assessProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): f.level(1, 0), f.criterion(1): f.level(1, 1)}), 422, "unknown_level", "levels."+f.criterion(0))
	require.Contains(t, p.Fields[0].Message, "is not a level of criterion \"Method\"")
	assessProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): plugintest.NewID(), "nope": f.level(1, 0)}), 422, "unknown_level", "levels."+f.criterion(0), "levels."+f.criterion(1), "levels.nope")
	assessProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): f.level(0, 0)}), 422, "missing_level", "levels."+f.criterion(1))
	assessProblem(t, f.grade(f.instructor, s.ID, map[string]string{f.criterion(0): f.level(0, 0), f.criterion(1): f.level(1, 0), "extra": "x"}), 422, "unknown_criterion", "levels.extra")
	assessProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/submissions/"+s.ID+"/grade", map[string]any{}), 422, "", "levels")
	assessProblem(t, f.grade(f.outsider, s.ID, full), 403, "not_a_grader")
	assessProblem(t, f.grade(f.learner, s.ID, full), 403, "permission-denied")
	assessProblem(t, f.grade(f.instructor, plugintest.NewID(), full), 404, "not-found")
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM submissions WHERE status = 'submitted' AND graded_at IS NULL AND score IS NULL`))
	require.Len(t, f.h.Published(t, f.tenant), published, "nothing published")

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

	events := f.eventsOfType(t, courses.EventSubmissionGraded)
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

	assessProblem(t, f.grade(f.instructor, s.ID, full), 409, "already_graded")
	// The admin grades any course (and reads the grade).
	res = f.h.Do(f.admin, "GET", "/api/v1/submissions/"+s.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res = f.h.Do(f.learner, "GET", "/api/v1/submissions/"+s.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	assessProblem(t, f.h.Do(f.outsider, "GET", "/api/v1/submissions/"+s.ID, nil), 404, "not-found")
	assessProblem(t, f.h.Do(plugintest.User(f.tenant, "learner"), "GET", "/api/v1/submissions/"+s.ID, nil), 404, "not-found")

	// Another institution sees none of it.
	other := newAssessFixture(t, h)
	assessProblem(t, f.grade(other.admin, s.ID, full), 404, "not-found")
	assessProblem(t, h.Do(other.admin, "GET", "/api/v1/submissions/"+s.ID, nil), 404, "not-found")
	assessProblem(t, h.Do(other.admin, "POST", "/api/v1/submissions/"+s.ID+"/appeals", map[string]any{"reason": "x"}), 404, "not-found")
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

	assessProblem(t, f.h.Do(f.instructor, "GET", "/api/v1/submissions?course_id="+courseB, nil), 403, "not_a_grader")
	assessProblem(t, f.h.Do(f.learner, "GET", "/api/v1/submissions?scope=grading", nil), 403, "not_a_grader")
	assessProblem(t, f.h.Do(f.learner, "GET", "/api/v1/submissions?status=lost&scope=all", nil), 422, "", "status", "scope")
	assessProblem(t, f.h.Do(f.learner, "GET", "/api/v1/submissions?course_id=x", nil), 422, "", "course_id")
	assessProblem(t, f.h.Do(f.instructor, "GET", "/api/v1/submissions?course_id="+plugintest.NewID(), nil), 404, "not-found")
}

func (f *assessFixture) createRubricAs(t *testing.T, p sdk.Principal, courseID string) courses.Rubric {
	t.Helper()
	res := f.h.Do(p, "POST", "/api/v1/courses/"+courseID+"/rubrics", reportRubric)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var r courses.Rubric
	res.JSON(t, &r)
	return r
}

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

	assessProblem(t, f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "Too low"}), 409, "not_graded")
	require.Equal(t, http.StatusOK, f.grade(f.instructor, s.ID, low).Status)
	assessProblem(t, f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": ""}), 422, "", "reason")
	assessProblem(t, f.h.Do(plugintest.User(f.tenant, "learner"), "POST", appealPath, map[string]any{"reason": "Mine?"}), 404, "not-found")

	res := f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "My method follows the textbook."})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var ap courses.Appeal
	res.JSON(t, &ap)
	require.Equal(t, "open", ap.Status)
	require.Equal(t, s.ID, ap.SubmissionID)
	require.Equal(t, 33, ap.Original.Percent)
	require.Equal(t, f.instructor.UserID, ap.Original.GradedBy)
	require.Equal(t, low, ap.Original.Levels)
	assessProblem(t, f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "Again"}), 409, "appeal_open")
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
	assessProblem(t, f.h.Do(f.learner, "GET", "/api/v1/appeals", nil), 403, "permission-denied")
	res = f.h.Do(f.learner, "GET", "/api/v1/appeals/"+ap.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	assessProblem(t, f.h.Do(f.outsider, "GET", "/api/v1/appeals/"+ap.ID, nil), 404, "not-found")

	// Appeals go back to a reviewer: never the grader.
	resolvePath := "/api/v1/appeals/" + ap.ID + "/resolve"
	upheld := map[string]any{"outcome": "upheld", "resolution": "The method is sound.", "levels": high, "feedback": "Regraded."}
	assessProblem(t, f.h.Do(f.instructor, "POST", resolvePath, upheld), 403, "reviewer_is_grader")
	assessProblem(t, f.h.Do(f.outsider, "POST", resolvePath, upheld), 403, "not_a_grader")
	assessProblem(t, f.h.Do(reviewer, "POST", resolvePath, map[string]any{"outcome": "upheld", "resolution": "Yes"}), 422, "", "levels")
	assessProblem(t, f.h.Do(reviewer, "POST", resolvePath, map[string]any{"outcome": "maybe", "resolution": ""}), 422, "", "outcome", "resolution")
	assessProblem(t, f.h.Do(reviewer, "POST", resolvePath, map[string]any{"outcome": "upheld", "resolution": "Yes", "levels": map[string]string{f.criterion(0): f.level(1, 1), f.criterion(1): f.level(1, 1)}}), 422, "unknown_level")
	require.Empty(t, f.eventsOfType(t, courses.EventSubmissionGraded)[1:], "only the first grade was published")

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
	events := f.eventsOfType(t, courses.EventSubmissionGraded)
	require.Len(t, events, 2)
	var data courses.SubmissionGraded
	require.NoError(t, events[1].Decode(&data))
	require.True(t, data.Regrade)
	require.Equal(t, 100, data.Percent)
	require.True(t, data.Passed)
	require.Equal(t, 1, f.count(t, `SELECT assessments_passed FROM course_progress WHERE enrolment_id = $1`, f.enrolment), "the regrade passed the assignment")
	assessProblem(t, f.h.Do(reviewer, "POST", resolvePath, upheld), 409, "appeal_resolved")
	require.Empty(t, listAppeals(reviewer, ""))
	require.Len(t, listAppeals(reviewer, "?status=upheld"), 1)

	// A rejected appeal leaves the grade as it was. The reviewer gave the
	// current grade, so this time the first instructor reviews.
	res = f.h.Do(f.learner, "POST", appealPath, map[string]any{"reason": "Still unsure."})
	require.Equal(t, http.StatusCreated, res.Status, res)
	res.JSON(t, &ap)
	assessProblem(t, f.h.Do(reviewer, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "No"}), 403, "reviewer_is_grader")
	assessProblem(t, f.h.Do(f.instructor, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "No", "levels": low}), 422, "", "levels")
	res = f.h.Do(f.instructor, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "The grade stands."})
	require.Equal(t, http.StatusOK, res.Status, res)
	ap = courses.Appeal{}
	res.JSON(t, &ap)
	require.Equal(t, "rejected", ap.Status)
	require.Equal(t, "graded", ap.Submission.Status)
	require.Equal(t, 100, ap.Submission.Percent)
	require.Equal(t, reviewer.UserID, ap.Submission.GradedBy)
	require.Len(t, f.eventsOfType(t, courses.EventSubmissionGraded), 2, "a rejection publishes nothing")

	// Another institution sees none of it.
	other := newAssessFixture(t, h)
	assessProblem(t, h.Do(other.admin, "GET", "/api/v1/appeals/"+ap.ID, nil), 404, "not-found")
	assessProblem(t, h.Do(other.admin, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{"outcome": "rejected", "resolution": "x"}), 404, "not-found")
	require.Empty(t, listAppeals(other.admin, "?status=rejected"))
}
