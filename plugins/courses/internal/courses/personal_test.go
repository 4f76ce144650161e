package courses_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// The fixture person's distinctive name and email address: they reach the
// plugin's tables only through what people write (a submission, feedback,
// an appeal).
const (
	learnerName  = "Zephyrine Quillfeather"
	learnerEmail = "zephyrine.quillfeather@example.test"
)

// history is a course run: a published course with a lesson, a quiz and
// an assignment, taught in a cohort by an instructor, with a reviewer of
// appeals, a learner who did everything (progress, attempts, a submission
// graded, an appeal upheld, the certificate) and a classmate who did some.
type history struct {
	*assessFixture
	reviewer, classmate   sdk.Principal
	quiz                  courses.Quiz
	enrolment, classmates string
	submission            courses.Submission
	certificate           courses.Certificate
}

func courseRun(t *testing.T, h *plugintest.Harness) *history {
	t.Helper()
	f := &history{assessFixture: newAssessFixture(t, h)}
	f.reviewer, f.classmate = plugintest.User(f.tenant, "instructor"), plugintest.User(f.tenant, "learner")
	do(t, h, f.admin, "PUT", "/api/v1/courses/"+f.courseID+"/instructors/"+f.reviewer.UserID, nil, http.StatusOK)
	f.quiz = f.createQuiz(t, statsQuiz(nil))
	rubric := f.createRubric(t, f.courseID)
	assignment := f.createAssignment(t, rubric, time.Now().Add(48*time.Hour), nil)
	f.publish(t)
	cohort := addCohort(t, h, f.instructor, f.courseID, 10)

	f.enrolment = enrolAs(t, h, f.learner, map[string]any{"course_id": f.courseID, "cohort_id": cohort}).ID
	f.classmates = enrolAs(t, h, f.classmate, map[string]any{"course_id": f.courseID, "cohort_id": cohort}).ID
	for who, enrolment := range map[*sdk.Principal]string{&f.learner: f.enrolment, &f.classmate: f.classmates} {
		do(t, h, *who, "POST", "/api/v1/enrolments/"+enrolment+"/lessons/"+f.lessonID+"/complete", map[string]any{"time_spent_seconds": 600}, http.StatusOK)
	}
	right := map[string]any{"answers": map[string][]string{"q1": {"a"}, "q2": {"a", "b"}, "q3": {"c"}}}
	wrong := map[string]any{"answers": map[string][]string{"q1": {"b"}}}
	do(t, h, f.learner, "POST", "/api/v1/quizzes/"+f.quiz.ID+"/attempts", wrong, http.StatusCreated)
	do(t, h, f.learner, "POST", "/api/v1/quizzes/"+f.quiz.ID+"/attempts", right, http.StatusCreated)
	do(t, h, f.classmate, "POST", "/api/v1/quizzes/"+f.quiz.ID+"/attempts", right, http.StatusCreated)

	do(t, h, f.learner, "POST", "/api/v1/assignments/"+assignment.ID+"/submissions", map[string]any{
		"body": "Report by " + learnerName + " (" + learnerEmail + ").",
	}, http.StatusCreated).JSON(t, &f.submission)
	var theirs courses.Submission
	do(t, h, f.classmate, "POST", "/api/v1/assignments/"+assignment.ID+"/submissions", map[string]any{"body": "My report."}, http.StatusCreated).JSON(t, &theirs)
	low := map[string]string{rubric.Criteria[0].ID: rubric.Criteria[0].Levels[0].ID, rubric.Criteria[1].ID: rubric.Criteria[1].Levels[0].ID}
	high := map[string]string{rubric.Criteria[0].ID: rubric.Criteria[0].Levels[2].ID, rubric.Criteria[1].ID: rubric.Criteria[1].Levels[1].ID}
	do(t, h, f.instructor, "POST", "/api/v1/submissions/"+f.submission.ID+"/grade", map[string]any{"levels": low, "feedback": "Thin, " + learnerName + "."}, http.StatusOK)
	do(t, h, f.instructor, "POST", "/api/v1/submissions/"+theirs.ID+"/grade", map[string]any{"levels": high, "feedback": "Good."}, http.StatusOK)
	var ap courses.Appeal
	do(t, h, f.learner, "POST", "/api/v1/submissions/"+f.submission.ID+"/appeals", map[string]any{"reason": "Please write to " + learnerEmail}, http.StatusCreated).JSON(t, &ap)
	do(t, h, f.reviewer, "POST", "/api/v1/appeals/"+ap.ID+"/resolve", map[string]any{
		"outcome": "upheld", "resolution": "Regraded for " + learnerName + ".", "levels": high,
	}, http.StatusOK)

	// The learner completed the course: the certificate is issued.
	completed := eventsOf[courses.CourseCompleted](t, h, f.tenant, courses.EventCourseCompleted)
	var mine []courses.CourseCompleted
	for _, c := range completed {
		if c.UserID == f.learner.UserID {
			mine = append(mine, c)
		}
	}
	require.Len(t, mine, 1)
	_, err := issue(t, h, f.tenant, mine[0])
	require.NoError(t, err)
	var page sdk.Page[courses.Certificate]
	do(t, h, f.learner, "GET", "/api/v1/certificates", nil, http.StatusOK).JSON(t, &page)
	require.Len(t, page.Items, 1)
	f.certificate = page.Items[0]
	return f
}

// statistics are the course's numbers that must still add up after a
// learner's erasure.
func (f *history) statistics(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for name, q := range map[string]string{
		"enrolments":        `SELECT count(*) FROM enrolments WHERE course_id = $1`,
		"learners":          `SELECT count(DISTINCT user_id) FROM enrolments WHERE course_id = $1`,
		"completed":         `SELECT count(*) FROM course_progress WHERE course_id = $1 AND completed_at IS NOT NULL`,
		"attempts":          `SELECT count(*) FROM quiz_attempts a JOIN quizzes q ON q.id = a.quiz_id WHERE q.course_id = $1`,
		"attempt learners":  `SELECT count(DISTINCT user_id) FROM quiz_attempts a JOIN quizzes q ON q.id = a.quiz_id WHERE q.course_id = $1`,
		"passed attempts":   `SELECT count(*) FILTER (WHERE passed) FROM quiz_attempts a JOIN quizzes q ON q.id = a.quiz_id WHERE q.course_id = $1`,
		"score sum":         `SELECT coalesce(sum(percent), 0) FROM quiz_attempts a JOIN quizzes q ON q.id = a.quiz_id WHERE q.course_id = $1`,
		"graded":            `SELECT count(*) FROM submissions WHERE course_id = $1 AND graded_by IS NOT NULL AND percent IS NOT NULL`,
		"grade sum":         `SELECT coalesce(sum(percent), 0) FROM submissions WHERE course_id = $1`,
		"appeals upheld":    `SELECT count(*) FROM appeals WHERE course_id = $1 AND status = 'upheld'`,
		"certificates":      `SELECT count(*) FROM certificates WHERE course_id = $1`,
		"lessons completed": `SELECT count(*) FROM lesson_progress p JOIN enrolments e ON e.id = p.enrolment_id WHERE e.course_id = $1 AND p.completed_at IS NOT NULL`,
	} {
		out[name] = f.count(t, q, f.courseID)
	}
	return out
}

func TestExportOfALearner(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := courseRun(t, h)
	ex := h.ExportPersonalData(t, f.tenant, f.learner.UserID)

	for class, n := range map[string]int{
		"enrolments": 1, "lesson_progress": 1, "course_progress": 1, "quiz_attempts": 2,
		"submissions": 1, "appeals": 1, "appeal_grades": 1, "certificates": 1,
		"course_instructors": 0, "courses": 0,
	} {
		require.Len(t, ex.Rows(class), n, class)
	}
	require.Equal(t, f.enrolment, ex.Rows("enrolments")[0]["id"])
	require.Equal(t, "user:"+f.learner.UserID, ex.Rows("enrolments")[0]["enrolled_by"], "they enrolled themselves")
	sub := ex.Rows("submissions")[0]
	require.Contains(t, sub["body"], learnerName)
	require.Contains(t, sub["feedback"], learnerName, "what was written about them is theirs")
	require.Nil(t, sub["graded_by"], "the grader is someone else")
	require.NotContains(t, ex.Rows("appeals")[0], "original", "the appeal's original grade is exported by appeal_grades")
	require.Contains(t, ex.Rows("appeals")[0]["reason"], learnerEmail)
	require.NotContains(t, ex.Rows("appeal_grades")[0]["original"], "graded_by")
	require.Equal(t, f.certificate.SHA256, ex.Rows("certificates")[0]["sha256"])

	// Nothing of anyone else: not the classmate, not their teachers.
	for _, other := range []string{f.classmate.UserID, f.classmates, f.instructor.UserID, f.reviewer.UserID, "My report."} {
		require.NotContains(t, ex.Text(), other)
	}
	// The instructor's export: their assignment and authored content by
	// reference, the grades they gave as references, no learner's data.
	teacher := h.ExportPersonalData(t, f.tenant, f.instructor.UserID)
	require.Len(t, teacher.Rows("course_instructors"), 1)
	require.Len(t, teacher.References("courses"), 1)
	require.Len(t, teacher.References("quizzes"), 1)
	// The classmate's grade (the learner's was regraded by the reviewer):
	// its key and the grader, nothing of the classmate's work.
	require.Len(t, teacher.References("submissions"), 1)
	require.Equal(t, f.instructor.UserID, teacher.References("submissions")[0]["graded_by"])
	require.Len(t, teacher.References("submissions")[0], 2)
	require.Len(t, teacher.References("appeal_grades"), 1, "the grade appealed was theirs")
	for _, other := range []string{f.learner.UserID, f.classmate.UserID, learnerName, "My report."} {
		require.NotContains(t, teacher.Text(), other)
	}
}

func TestErasureOfALearner(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := courseRun(t, h)
	before := f.statistics(t)
	classmate := h.ExportPersonalData(t, f.tenant, f.classmate.UserID)

	dry := h.ErasePersonalDataDryRun(t, f.tenant, f.learner.UserID)
	got := h.ErasePersonalData(t, f.tenant, f.learner.UserID)
	require.Equal(t, dry, got, "the dry run counts what erasure does")
	for class, n := range map[string]int64{"enrolments": 1, "course_progress": 1, "quiz_attempts": 2, "submissions": 1, "appeals": 1, "certificates": 1} {
		require.Equal(t, n, got.Of(class).Anonymised, class)
		require.Zero(t, got.Of(class).Deleted, class)
	}
	require.Equal(t, int64(1), got.Of("appeal_grades").Anonymised, "the feedback in the appealed grade")
	require.Equal(t, int64(1), got.Of("enrolments").References, "enrolled_by named them")
	require.Equal(t, plugintest.Count{Class: "lesson_progress", Table: "lesson_progress"}, got.Of("lesson_progress"), "kept as it is, under the anonymised enrolment")

	// Anonymised, not deleted: the course's statistics add up.
	require.Equal(t, before, f.statistics(t))
	// No trace of them in any table of any institution.
	h.RequireNoTrace(t, f.learner.UserID, learnerName, learnerEmail)
	// Their certificate still verifies publicly, for its hash, and an
	// admin sees the record without its text.
	do(t, h, plugintest.Anonymous(), "GET", f.certificate.VerifyPath, nil, http.StatusOK)
	var c courses.Certificate
	do(t, h, f.admin, "GET", "/api/v1/certificates/"+f.certificate.ID, nil, http.StatusOK).JSON(t, &c)
	require.Nil(t, c.Content)
	require.Empty(t, c.Canonical)
	require.Equal(t, f.certificate.SHA256, c.SHA256)
	require.NotEqual(t, f.learner.UserID, c.UserID)
	// The grade stands, under the same pseudonym as the enrolment.
	var s courses.Submission
	do(t, h, f.admin, "GET", "/api/v1/submissions/"+f.submission.ID, nil, http.StatusOK).JSON(t, &s)
	require.NotNil(t, s.Grade)
	require.Equal(t, 100, s.Percent)
	require.Equal(t, sdk.ErasedText, s.Body)
	require.Empty(t, s.Feedback)
	require.Equal(t, c.UserID, s.UserID, "one pseudonym for the person")
	// The classmate's data is as it was.
	require.Equal(t, classmate.Text(), h.ExportPersonalData(t, f.tenant, f.classmate.UserID).Text())
}

func TestErasureOfAnInstructor(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := courseRun(t, h)
	before := f.statistics(t)
	got := h.ErasePersonalData(t, f.tenant, f.instructor.UserID)
	require.Equal(t, int64(1), got.Of("course_instructors").Deleted)
	require.Equal(t, int64(1), got.Of("courses").References)
	require.Equal(t, int64(1), got.Of("quizzes").References)
	require.Equal(t, int64(1), got.Of("cohorts").References)
	require.Equal(t, int64(1), got.Of("submissions").References, "the classmate's grade (the learner's was regraded by the reviewer)")
	require.Equal(t, int64(1), got.Of("appeal_grades").References, "the grade appealed")
	h.RequireNoTrace(t, f.instructor.UserID)

	// The course stays with the institution: readable, taught by the
	// reviewer, changed by an admin.
	require.Equal(t, "Statistics", getCourse(t, h, f.learner, f.courseID).Title)
	do(t, h, f.reviewer, "PATCH", "/api/v1/courses/"+f.courseID, map[string]any{"summary": "Kept."}, http.StatusOK)
	require.Equal(t, before, f.statistics(t))
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM course_instructors WHERE course_id = $1`, f.courseID))
}

// Erasing a member of one institution leaves their data in another.
func TestErasureIsPerInstitution(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newAssessFixture(t, h)
	b := &assessFixture{h: h, tenant: plugintest.NewTenant()}
	b.instructor, b.admin = plugintest.User(b.tenant, "instructor"), plugintest.User(b.tenant, "admin")
	b.learner = plugintest.Join(a.learner, b.tenant, "learner")
	b.courseID, b.moduleID, b.lessonID = b.addCourse(t)
	for _, f := range []*assessFixture{a, b} {
		f.publish(t)
		e := enrolAs(t, h, f.learner, map[string]any{"course_id": f.courseID})
		do(t, h, f.learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+f.lessonID+"/complete", nil, http.StatusOK)
	}
	inB := h.ExportPersonalData(t, b.tenant, b.learner.UserID)
	require.Len(t, inB.Rows("enrolments"), 1)

	h.ErasePersonalData(t, a.tenant, a.learner.UserID)
	require.Equal(t, inB.Text(), h.ExportPersonalData(t, b.tenant, b.learner.UserID).Text())
	traces := h.FindTraces(t, a.learner.UserID)
	require.NotEmpty(t, traces)
	for _, tr := range traces {
		require.Equal(t, []string{b.tenant}, tr.Tenants, "%s", tr)
	}
}

// Offboarding an institution erases everything courses holds for it, the
// hashes of its certificates included, and nothing of another's.
func TestEraseInstitution(t *testing.T) {
	t.Parallel()
	h := setup(t)
	f := courseRun(t, h)
	other := courseRun(t, h)

	dry := h.EraseTenantDryRun(t, f.tenant)
	require.Equal(t, int64(1), dry.Table("certificate_hashes").Deleted)
	require.Equal(t, int64(1), dry.Table("courses").Deleted)
	require.Equal(t, int64(2), dry.Table("enrolments").Deleted)
	require.Equal(t, int64(3), dry.Table("quiz_attempts").Deleted)
	require.Equal(t, "certificate_hashes", dry[0].Table, "before the certificates that name them")
	require.Equal(t, dry, h.EraseTenant(t, f.tenant))

	requireProblem(t, h.Do(plugintest.Anonymous(), "GET", f.certificate.VerifyPath, nil), http.StatusNotFound, "certificate_not_verified")
	do(t, h, plugintest.Anonymous(), "GET", other.certificate.VerifyPath, nil, http.StatusOK)
	require.Len(t, h.ExportPersonalData(t, other.tenant, other.learner.UserID).Rows("submissions"), 1)
	for _, tr := range h.FindTraces(t, f.learner.UserID, f.instructor.UserID, learnerName) {
		require.NotContains(t, strings.Join(tr.Tenants, ","), f.tenant, "%s", tr)
		require.NotNil(t, tr.Tenants, "%s: only the other institution's rows", tr)
	}
}
