package courses_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// The helpers every test file of the package shares: the harness, requests
// and their answers, counting rows, published events, and the fixtures
// (an institution of people, courses written through the API or straight
// to the database, the assessment fixtures).

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

// setup provisions the plugin in a fresh database, as the kernel would.
func setup(t *testing.T, opts ...plugintest.Option) *plugintest.Harness {
	t.Helper()
	return plugintest.New(t, courses.New(), opts...)
}

// do sends a request and requires the status.
func do(t *testing.T, h *plugintest.Harness, p sdk.Principal, method, path string, body any, status int) *plugintest.Result {
	t.Helper()
	res := h.Do(p, method, path, body)
	require.Equal(t, status, res.Status, "%s %s: %s", method, path, res)
	return res
}

// requireProblem requires an error answer with the status and, when not
// empty, the code and the fields it names (in any order).
func requireProblem(t *testing.T, res *plugintest.Result, status int, code string, fields ...string) plugintest.Problem {
	t.Helper()
	require.Equal(t, status, res.Status, res)
	p := res.Problem()
	if code != "" {
		require.Equal(t, code, p.Code, res)
	}
	if fields != nil {
		require.ElementsMatch(t, fields, p.FieldNames(), res)
	}
	return p
}

// count runs a count query as the database's admin, across institutions
// (tables by their schema: plugin_courses.enrolments).
func count(t *testing.T, h *plugintest.Harness, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}

// countIn runs a count query as the plugin, in an institution.
func countIn(t *testing.T, h *plugintest.Harness, tenant, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), q, args...).Scan(&n)
	}))
	return n
}

// published lists the events of one type the plugin published for the
// institution.
func published(t *testing.T, h *plugintest.Harness, tenant, eventType string) []plugintest.PublishedEvent {
	t.Helper()
	var out []plugintest.PublishedEvent
	for _, e := range h.Published(t, tenant) {
		if e.Type == eventType {
			out = append(out, e)
		}
	}
	return out
}

// eventsOf is published, decoded.
func eventsOf[T any](t *testing.T, h *plugintest.Harness, tenant, eventType string) []T {
	t.Helper()
	var out []T
	for _, e := range published(t, h, tenant, eventType) {
		var v T
		require.NoError(t, e.Decode(&v))
		out = append(out, v)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// bundle is a harness with one institution and its people: an admin, an
// instructor (teacher), another instructor who teaches none of the
// bundle's courses, and a learner. plugintest's host knows them as
// members with those roles, as the kernel would.
type bundle struct {
	h                       *plugintest.Harness
	tenant                  string
	admin, teacher, learner sdk.Principal
	otherTeacher            sdk.Principal
}

func newBundle(t *testing.T) *bundle {
	t.Helper()
	tenant := plugintest.NewTenant()
	return &bundle{
		h: setup(t), tenant: tenant,
		admin: plugintest.User(tenant, "admin"), teacher: plugintest.User(tenant, "instructor"),
		otherTeacher: plugintest.User(tenant, "instructor"), learner: plugintest.User(tenant, "learner"),
	}
}

// member is a new member of an institution with the given roles.
func (b *bundle) member(tenant string, roles ...string) sdk.Principal {
	return plugintest.User(tenant, roles...)
}

// Courses through the API.

func newCourse(t *testing.T, h *plugintest.Harness, p sdk.Principal, title string) courses.Course {
	t.Helper()
	var c courses.Course
	do(t, h, p, "POST", "/api/v1/courses", map[string]any{"title": title, "summary": "About " + title}, http.StatusCreated).JSON(t, &c)
	return c
}

func newModule(t *testing.T, h *plugintest.Harness, p sdk.Principal, courseID, title string) courses.Module {
	t.Helper()
	var m courses.Module
	do(t, h, p, "POST", "/api/v1/courses/"+courseID+"/modules", map[string]any{"title": title}, http.StatusCreated).JSON(t, &m)
	return m
}

func newLesson(t *testing.T, h *plugintest.Harness, p sdk.Principal, courseID, moduleID, title string) courses.Lesson {
	t.Helper()
	var l courses.Lesson
	do(t, h, p, "POST", "/api/v1/courses/"+courseID+"/modules/"+moduleID+"/lessons",
		map[string]any{"title": title, "body": "# " + title}, http.StatusCreated).JSON(t, &l)
	return l
}

func publish(t *testing.T, h *plugintest.Harness, p sdk.Principal, courseID string) courses.CourseVersion {
	t.Helper()
	var v courses.CourseVersion
	do(t, h, p, "POST", "/api/v1/courses/"+courseID+"/publish", nil, http.StatusCreated).JSON(t, &v)
	return v
}

// publishedCourse is a published course with one module of the given lessons.
func publishedCourse(t *testing.T, h *plugintest.Harness, p sdk.Principal, title string, lessons ...string) (courses.Course, []courses.Lesson) {
	t.Helper()
	c := newCourse(t, h, p, title)
	m := newModule(t, h, p, c.ID, "Module 1")
	var out []courses.Lesson
	for _, l := range lessons {
		out = append(out, newLesson(t, h, p, c.ID, m.ID, l))
	}
	publish(t, h, p, c.ID)
	return c, out
}

func getCourse(t *testing.T, h *plugintest.Harness, p sdk.Principal, id string) courses.Course {
	t.Helper()
	var c courses.Course
	do(t, h, p, "GET", "/api/v1/courses/"+id, nil, http.StatusOK).JSON(t, &c)
	return c
}

// etag reads the ETag the kernel would send.
func etag(res *plugintest.Result) string { return res.Header.Get("ETag") }

// Courses straight to the database, and enrolments through the API.

// enrolCourseSpec describes a course publishEnrolCourse writes.
type enrolCourseSpec struct {
	title         string
	lessons       int           // 2 when zero
	prerequisites []string      // course IDs to complete first
	lessonPrereqs map[int][]int // lesson index → indexes of the lessons it requires
	selfEnrolment *bool
	draft         bool // never published
}

type enrolCourse struct {
	ID       string
	ModuleID string
	Lessons  []string
}

// publishEnrolCourse writes a course taught by instructorID straight to
// the database, as publishing leaves it: the draft (a module and its
// lessons) and version 1 built with the same Content the plugin reads.
func publishEnrolCourse(t *testing.T, h *plugintest.Harness, tenant, instructorID string, spec enrolCourseSpec) enrolCourse {
	t.Helper()
	if spec.lessons == 0 {
		spec.lessons = 2
	}
	if spec.title == "" {
		spec.title = "Course " + plugintest.NewID()[:8]
	}
	var c enrolCourse
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		ctx := t.Context()
		status, version := "published", any(1)
		if spec.draft {
			status, version = "draft", nil
		}
		err := tx.QueryRow(ctx, `INSERT INTO courses (title, created_by, status, self_enrolment, published_version, published_at)
			VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 = 'published' THEN now() END) RETURNING id`,
			spec.title, instructorID, status, spec.selfEnrolment, version).Scan(&c.ID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $2)`, c.ID, instructorID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO modules (course_id, title, position) VALUES ($1, 'Module', 0) RETURNING id`, c.ID).Scan(&c.ModuleID); err != nil {
			return err
		}
		content := courses.Content{CourseID: c.ID, Version: 1, Title: spec.title, Prerequisites: spec.prerequisites,
			Modules: []courses.ContentModule{{ID: c.ModuleID, Title: "Module"}}}
		if content.Prerequisites == nil {
			content.Prerequisites = []string{}
		}
		for i := range spec.lessons {
			var id string
			if err := tx.QueryRow(ctx, `INSERT INTO lessons (course_id, module_id, title, position) VALUES ($1, $2, $3, $4) RETURNING id`,
				c.ID, c.ModuleID, fmt.Sprintf("Lesson %d", i+1), i).Scan(&id); err != nil {
				return err
			}
			c.Lessons = append(c.Lessons, id)
		}
		for i, id := range c.Lessons {
			l := courses.ContentLesson{ID: id, Title: fmt.Sprintf("Lesson %d", i+1), BodyFormat: "markdown", Required: true, Position: i, Prerequisites: []string{}, Assets: []courses.Asset{}}
			for _, j := range spec.lessonPrereqs[i] {
				l.Prerequisites = append(l.Prerequisites, c.Lessons[j])
				if _, err := tx.Exec(ctx, `INSERT INTO lesson_prerequisites (lesson_id, requires_lesson_id) VALUES ($1, $2)`, id, c.Lessons[j]); err != nil {
					return err
				}
			}
			content.Modules[0].Lessons = append(content.Modules[0].Lessons, l)
		}
		for _, req := range spec.prerequisites {
			if _, err := tx.Exec(ctx, `INSERT INTO course_prerequisites (course_id, requires_course_id) VALUES ($1, $2)`, c.ID, req); err != nil {
				return err
			}
		}
		if spec.draft {
			return nil
		}
		raw, err := json.Marshal(content)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO course_versions (course_id, version, content, published_by) VALUES ($1, 1, $2, $3)`, c.ID, raw, instructorID)
		return err
	}))
	return c
}

// addCohort schedules a cohort through the API, answering its ID.
func addCohort(t *testing.T, h *plugintest.Harness, author sdk.Principal, courseID string, seatLimit any) string {
	t.Helper()
	res := h.Do(author, "POST", "/api/v1/courses/"+courseID+"/cohorts", map[string]any{
		"name": "Cohort", "starts_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		"ends_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339), "seat_limit": seatLimit,
	})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var c courses.Cohort
	res.JSON(t, &c)
	return c.ID
}

// enrolAs enrols through the API and decodes a 201.
func enrolAs(t *testing.T, h *plugintest.Harness, p sdk.Principal, body map[string]any) courses.Enrolment {
	t.Helper()
	res := h.Do(p, "POST", "/api/v1/enrolments", body)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var e courses.Enrolment
	res.JSON(t, &e)
	return e
}

func fetchEnrolment(t *testing.T, h *plugintest.Harness, p sdk.Principal, id string) courses.Enrolment {
	t.Helper()
	res := h.Do(p, "GET", "/api/v1/enrolments/"+id, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var e courses.Enrolment
	res.JSON(t, &e)
	return e
}

// The assessment fixtures.

// assessFixture is an institution with a course (one module, one required
// lesson) taught by instructor, another instructor who does not teach it,
// an admin and a learner. The catalogue and enrolment routes are tested
// elsewhere: the fixture writes courses, versions and enrolments directly,
// as those routes would.
type assessFixture struct {
	h          *plugintest.Harness
	tenant     string
	instructor sdk.Principal // teaches the course
	outsider   sdk.Principal // an instructor of the institution who does not
	admin      sdk.Principal
	learner    sdk.Principal
	courseID   string
	moduleID   string
	lessonID   string
}

func newAssessFixture(t *testing.T, h *plugintest.Harness) *assessFixture {
	t.Helper()
	tenant := plugintest.NewTenant()
	f := &assessFixture{
		h: h, tenant: tenant,
		instructor: plugintest.User(tenant, "instructor"), outsider: plugintest.User(tenant, "instructor"),
		admin: plugintest.User(tenant, "admin"), learner: plugintest.User(tenant, "learner"),
	}
	f.courseID, f.moduleID, f.lessonID = f.addCourse(t)
	return f
}

// addCourse writes a draft course taught by f.instructor with one module
// and one required lesson.
func (f *assessFixture) addCourse(t *testing.T) (courseID, moduleID, lessonID string) {
	t.Helper()
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		if err := tx.QueryRow(t.Context(), `INSERT INTO courses (title, created_by) VALUES ('Statistics', $1) RETURNING id`, f.instructor.UserID).Scan(&courseID); err != nil {
			return err
		}
		if _, err := tx.Exec(t.Context(), `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $2)`, courseID, f.instructor.UserID); err != nil {
			return err
		}
		if err := tx.QueryRow(t.Context(), `INSERT INTO modules (course_id, title, position) VALUES ($1, 'Basics', 0) RETURNING id`, courseID).Scan(&moduleID); err != nil {
			return err
		}
		return tx.QueryRow(t.Context(), `INSERT INTO lessons (course_id, module_id, title, position) VALUES ($1, $2, 'Means', 0) RETURNING id`, courseID, moduleID).Scan(&lessonID)
	}))
	return courseID, moduleID, lessonID
}

// publish publishes the course's draft as its next version, as the
// catalogue's publish does: the lesson and every quiz and assignment the
// course has now.
func (f *assessFixture) publish(t *testing.T) {
	t.Helper()
	f.publishCourse(t, f.courseID, f.moduleID, f.lessonID)
}

func (f *assessFixture) publishCourse(t *testing.T, courseID, moduleID, lessonID string) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		c := courses.Content{
			CourseID: courseID, Title: "Statistics", Prerequisites: []string{},
			Modules: []courses.ContentModule{{ID: moduleID, Title: "Basics", Lessons: []courses.ContentLesson{
				{ID: lessonID, Title: "Means", BodyFormat: "markdown", Assets: []courses.Asset{}, Required: true, Prerequisites: []string{}},
			}}},
		}
		for _, q := range []struct {
			sql string
			out *[]courses.AssessmentRef
		}{
			{`SELECT id, title, coalesce(lesson_id::text, ''), required FROM quizzes WHERE course_id = $1 ORDER BY created_at`, &c.Quizzes},
			{`SELECT id, title, coalesce(lesson_id::text, ''), required FROM assignments WHERE course_id = $1 ORDER BY due_at`, &c.Assignments},
		} {
			rows, _ := tx.Query(ctx, q.sql, courseID)
			refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (courses.AssessmentRef, error) {
				var a courses.AssessmentRef
				return a, r.Scan(&a.ID, &a.Title, &a.LessonID, &a.Required)
			})
			if err != nil {
				return err
			}
			*q.out = append([]courses.AssessmentRef{}, refs...)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) + 1 FROM course_versions WHERE course_id = $1`, courseID).Scan(&c.Version); err != nil {
			return err
		}
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO course_versions (course_id, version, content, published_by) VALUES ($1, $2, $3, $4)`,
			courseID, c.Version, raw, f.instructor.UserID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE courses SET status = 'published', published_version = $2, published_at = now() WHERE id = $1`, courseID, c.Version)
		return err
	}))
}

// enrol writes an enrolment of user in the course with the given status.
func (f *assessFixture) enrol(t *testing.T, courseID string, user sdk.Principal, status string) string {
	t.Helper()
	var id string
	require.NoError(t, f.h.InTenant(f.tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `
			INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, activated_at)
			VALUES ($1, $2, $3, 'admin', 'test', CASE WHEN $3 = 'active' THEN now() END) RETURNING id`,
			courseID, user.UserID, status).Scan(&id)
	}))
	return id
}

// count runs a count query as the plugin, in the fixture's institution.
func (f *assessFixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return countIn(t, f.h, f.tenant, sql, args...)
}

func (f *assessFixture) draftRevision(t *testing.T) int {
	t.Helper()
	return f.count(t, `SELECT draft_revision FROM courses WHERE id = $1`, f.courseID)
}

// createQuiz creates a quiz through the API and returns it.
func (f *assessFixture) createQuiz(t *testing.T, body map[string]any) courses.Quiz {
	t.Helper()
	res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/quizzes", body)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var q courses.Quiz
	res.JSON(t, &q)
	return q
}

// statsQuiz: q1 single (1 point, a), q2 multiple (2 points, a and b), q3
// single (1 point, c).
func statsQuiz(extra map[string]any) map[string]any {
	body := map[string]any{
		"title": "Check",
		"questions": []map[string]any{
			{"id": "q1", "prompt": "Mean of 1, 2, 3?", "kind": "single", "options": []map[string]any{{"id": "a", "text": "2"}, {"id": "b", "text": "3"}}, "correct": []string{"a"}},
			{"id": "q2", "prompt": "Measures of spread?", "kind": "multiple", "points": 2, "options": []map[string]any{{"id": "a", "text": "IQR"}, {"id": "b", "text": "SD"}, {"id": "c", "text": "Mode"}}, "correct": []string{"b", "a"}},
			{"id": "q3", "prompt": "Median of 1, 5, 9?", "kind": "single", "options": []map[string]any{{"id": "a", "text": "1"}, {"id": "b", "text": "9"}, {"id": "c", "text": "5"}}, "correct": []string{"c"}},
		},
	}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// reportRubric: Method (0, 5, 10) and Writing (0, 5); at best 15 points.
var reportRubric = map[string]any{
	"title": "Report",
	"criteria": []map[string]any{
		{"title": "Method", "description": "Is the method sound?", "levels": []map[string]any{
			{"title": "Weak", "points": 0}, {"title": "Fair", "points": 5}, {"title": "Sound", "points": 10}}},
		{"title": "Writing", "levels": []map[string]any{{"title": "Poor", "points": 0}, {"title": "Good", "points": 5}}},
	},
}

// createRubric creates reportRubric for a course through the API.
func (f *assessFixture) createRubric(t *testing.T, courseID string) courses.Rubric {
	t.Helper()
	res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+courseID+"/rubrics", reportRubric)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var r courses.Rubric
	res.JSON(t, &r)
	return r
}

// createAssignment creates an assignment of the fixture's course graded
// with rubric, due at due, with the given extra fields.
func (f *assessFixture) createAssignment(t *testing.T, rubric courses.Rubric, due time.Time, extra map[string]any) courses.Assignment {
	t.Helper()
	body := map[string]any{"title": "A small report", "instructions": "Ask one question.", "rubric_id": rubric.ID, "due_at": due.UTC().Format(time.RFC3339)}
	for k, v := range extra {
		body[k] = v
	}
	res := f.h.Do(f.instructor, "POST", "/api/v1/courses/"+f.courseID+"/assignments", body)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a courses.Assignment
	res.JSON(t, &a)
	return a
}

func (f *assessFixture) createRubricAs(t *testing.T, p sdk.Principal, courseID string) courses.Rubric {
	t.Helper()
	res := f.h.Do(p, "POST", "/api/v1/courses/"+courseID+"/rubrics", reportRubric)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var r courses.Rubric
	res.JSON(t, &r)
	return r
}

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
