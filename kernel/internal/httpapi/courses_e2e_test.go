package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
)

// The feature plugins as they ship: their own modules, built as they are.
var (
	coursesPlugin      = variant{name: "courses", version: "0.5.0", module: "plugins/courses"}
	gamificationPlugin = variant{name: "gamification", version: "0.4.0", module: "examples/gamification"}
)

// TestCoursesEndToEnd walks the courses plugin's whole path through the
// kernel, with the real plugin binaries: an instructor authors and
// publishes a course with a quiz and an assignment; a learner enrols,
// completes the lessons, passes the quiz and submits; the instructor grades
// with the rubric; the course completes; the issue-certificate job issues a
// certificate that verifies publicly; the gamification plugin awarded
// points for the lessons; another institution sees none of it; and
// disabling the plugin for the institution makes its routes 404 and stops
// its event deliveries.
func TestCoursesEndToEnd(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: coursesPlugin}, pluginBlock{variant: gamificationPlugin})
	a := b.institution("uni")
	other := b.institution("elsewhere")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}

	// The instructor authors a course: two lessons, a quiz, an assignment.
	course := ok(b.do("POST", "/api/v1/courses", a.instructor, map[string]any{"title": "Practical Statistics", "summary": "Numbers you can trust."}), 201).str("id")
	// Authoring answers the draft revision as an ETag, for If-Match.
	rev := ok(b.do("PATCH", "/api/v1/courses/"+course, a.instructor, map[string]any{"summary": "Numbers you can trust, and why."}), 200).Header.Get("ETag")
	require.NotEmpty(t, rev)
	requireProblem(t, b.do("PATCH", "/api/v1/courses/"+course, a.instructor, map[string]any{"summary": "Stale."}, "If-Match", `"1"`), 409, "stale_revision")
	module := ok(b.do("POST", "/api/v1/courses/"+course+"/modules", a.instructor, map[string]any{"title": "Basics"}), 201).str("id")
	var lessons []string
	for i, title := range []string{"Means", "Spread"} {
		r := ok(b.do("POST", "/api/v1/courses/"+course+"/modules/"+module+"/lessons", a.instructor, map[string]any{
			"title": title, "body": fmt.Sprintf("# %s\n\nLesson %d.", title, i+1), "estimated_minutes": 10,
			"assets": []map[string]any{{"url": "https://cdn.example.test/l" + fmt.Sprint(i) + ".mp4", "type": "video/mp4", "size_bytes": 1000}},
		}), 201)
		lessons = append(lessons, r.str("id"))
	}
	quiz := ok(b.do("POST", "/api/v1/courses/"+course+"/quizzes", a.instructor, map[string]any{
		"title": "Check", "lesson_id": lessons[0], "pass_mark": 50,
		"questions": []map[string]any{
			{"id": "q1", "prompt": "Mean of 1, 2, 3?", "kind": "single", "options": []map[string]any{{"id": "a", "text": "2"}, {"id": "b", "text": "3"}}, "correct": []string{"a"}},
			{"id": "q2", "prompt": "Measures of spread?", "kind": "multiple", "options": []map[string]any{{"id": "a", "text": "IQR"}, {"id": "b", "text": "SD"}, {"id": "c", "text": "Mode"}}, "correct": []string{"a", "b"}},
		},
	}), 201).str("id")
	rubric := ok(b.do("POST", "/api/v1/courses/"+course+"/rubrics", a.instructor, map[string]any{
		"title": "Report", "criteria": []map[string]any{
			{"title": "Method", "levels": []map[string]any{{"title": "Weak", "points": 0}, {"title": "Sound", "points": 10}}},
		},
	}), 201)
	criterion := rubric.str("criteria", "0", "id")
	topLevel := rubric.str("criteria", "0", "levels", "1", "id")
	assignment := ok(b.do("POST", "/api/v1/courses/"+course+"/assignments", a.instructor, map[string]any{
		"title": "A small report", "rubric_id": rubric.str("id"), "due_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339),
	}), 201).str("id")

	// The learner cannot see the draft; publishing makes it visible.
	requireProblem(t, b.do("GET", "/api/v1/courses/"+course, a.learner, nil), 404, "not-found")
	ok(b.do("POST", "/api/v1/courses/"+course+"/publish", a.instructor, map[string]any{"note": "First run"}), 201)
	r := ok(b.do("GET", "/api/v1/courses/"+course, a.learner, nil), 200)
	require.Contains(t, string(r.Raw), "Spread")
	require.NotContains(t, string(r.Raw), `"correct"`, "learners never see the answers")

	// The learner enrols, learns, passes the quiz and submits.
	enrolment := ok(b.do("POST", "/api/v1/enrolments", a.learner, map[string]any{"course_id": course}), 201)
	require.Equal(t, "active", enrolment.str("status"))
	eid := enrolment.str("id")
	requireProblem(t, b.do("POST", "/api/v1/enrolments", a.learner, map[string]any{"course_id": course}), 409, "already_enrolled")
	for _, l := range lessons {
		ok(b.do("POST", "/api/v1/enrolments/"+eid+"/lessons/"+l+"/complete", a.learner, map[string]any{"time_spent_seconds": 300}), 200)
	}
	r = ok(b.do("POST", "/api/v1/quizzes/"+quiz+"/attempts", a.learner, map[string]any{"answers": map[string]any{"q1": []string{"a"}, "q2": []string{"a", "b"}}}), 201)
	require.Equal(t, true, r.get("passed"), "%s", r.Raw)
	submission := ok(b.do("POST", "/api/v1/assignments/"+assignment+"/submissions", a.learner, map[string]any{"body": "My report."}), 201).str("id")
	r = ok(b.do("GET", "/api/v1/enrolments/"+eid, a.learner, nil), 200)
	require.Equal(t, "active", r.str("status"), "the assignment is not graded yet")

	// The instructor finds it in the grading backlog and grades it.
	r = ok(b.do("GET", "/api/v1/submissions?status=submitted", a.instructor, nil), 200)
	require.Len(t, r.items(), 1)
	requireProblem(t, b.do("POST", "/api/v1/submissions/"+submission+"/grade", a.instructor, map[string]any{"levels": map[string]string{criterion: uuid.NewString()}}), 422, "unknown_level")
	r = ok(b.do("POST", "/api/v1/submissions/"+submission+"/grade", a.instructor, map[string]any{"levels": map[string]string{criterion: topLevel}, "feedback": "Sound method."}), 200)
	require.Equal(t, true, r.get("passed"), "%s", r.Raw)

	// Every required lesson and assessment is done: the course completed.
	r = ok(b.do("GET", "/api/v1/enrolments/"+eid, a.learner, nil), 200)
	require.Equal(t, "completed", r.str("status"), "%s", r.Raw)

	// The issue-certificate job issues the certificate; it verifies publicly.
	var cert map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		items := b.do("GET", "/api/v1/certificates", a.learner, nil).items()
		if assert.Len(c, items, 1) {
			cert = items[0]
		}
	}, eventually, 50*time.Millisecond)
	verify, _ := cert["verify_path"].(string)
	require.NotEmpty(t, verify)
	r = ok(b.do("GET", verify, "", nil), 200)
	require.Equal(t, true, r.get("valid"))
	require.Equal(t, 404, b.do("GET", "/api/v1/certificates/"+cert["id"].(string)+"/verify?sha256="+fmt.Sprintf("%064x", 1), "", nil).Status, "a forged hash does not verify")
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.job_runs WHERE plugin = 'courses' AND job = 'issue-certificate' AND tenant_id = $1", a.id))

	// The gamification plugin awarded points for the two lessons.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := b.do("GET", "/api/v1/leaderboard/users/"+a.learnerID, a.learner, nil)
		assert.Equal(c, 200, r.Status)
		assert.EqualValues(c, 20, r.get("points"), "%s", r.Raw)
	}, eventually, 50*time.Millisecond)

	// Another institution's learner sees none of it.
	r = ok(b.do("GET", "/api/v1/courses", other.learner, nil), 200)
	require.Empty(t, r.items())
	for _, path := range []string{
		"/api/v1/courses/" + course, "/api/v1/enrolments/" + eid, "/api/v1/quizzes/" + quiz,
		"/api/v1/assignments/" + assignment, "/api/v1/submissions/" + submission, "/api/v1/certificates/" + cert["id"].(string),
	} {
		require.Equal(t, 404, b.do("GET", path, other.admin, nil).Status, path)
	}
	requireProblem(t, b.do("POST", "/api/v1/enrolments", other.learner, map[string]any{"course_id": course}), 404, "not-found")
	r = ok(b.do("GET", "/api/v1/certificates", other.admin, nil), 200)
	require.Empty(t, r.items())

	// A member who leaves the institution gives up their seats: the
	// kernel's tenancy.member.removed.v1 reaches the plugin.
	member := func(email string) (token, id string) {
		u, err := app.CreateUser(context.Background(), b.pool, app.UserSpec{Email: email, Name: email, Password: password, Tenant: a.slug, Roles: []string{"learner"}})
		require.NoError(t, err)
		return b.login(email, a.slug), u.ID.String()
	}
	leaverToken, leaver := member("leaver@uni.test")
	stayerToken, stayer := member("stayer@uni.test")
	ok(b.do("POST", "/api/v1/enrolments", leaverToken, map[string]any{"course_id": course}), 201)
	ok(b.do("POST", "/api/v1/enrolments", stayerToken, map[string]any{"course_id": course}), 201)
	enrolmentStatus := func(user string) string {
		var s string
		require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT status FROM plugin_courses.enrolments WHERE user_id = $1", user).Scan(&s))
		return s
	}
	ok(b.do("DELETE", "/api/v1/tenant/members/"+leaver, a.admin, nil), 204)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, "withdrawn", enrolmentStatus(leaver))
	}, eventually, 50*time.Millisecond)

	// Disabled for the institution: its routes are 404 and it gets no more
	// deliveries.
	ok(b.do("PUT", "/api/v1/tenant/plugins/courses", a.admin, map[string]any{"enabled": false}), 200)
	for _, path := range []string{"/api/v1/courses", "/api/v1/courses/" + course, "/api/v1/enrolments", "/api/v1/certificates"} {
		require.Equal(t, 404, b.do("GET", path, a.learner, nil).Status, path)
	}
	// The member removals the courses plugin's cursor has passed.
	passed := func(tenant string) int {
		return b.count(`SELECT count(*) FROM kernel.events e, kernel.event_cursors c
			WHERE c.subscriber = 'courses' AND c.kind = 'live' AND e.seq <= c.position AND e.type = 'tenancy.member.removed.v1' AND e.tenant_id = $1`, tenant)
	}
	elsewhere := passed(other.id)
	ok(b.do("DELETE", "/api/v1/tenant/members/"+stayer, a.admin, nil), 204)
	// Still enabled in the other institution: delivered there after the
	// first removal, which shows delivery went past it.
	ok(b.do("DELETE", "/api/v1/tenant/members/"+other.learnerID, other.admin, nil), 204)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, elsewhere+1, passed(other.id))
	}, eventually, 50*time.Millisecond)
	require.Zero(t, b.count("SELECT count(*) FROM kernel.deliveries WHERE subscriber = 'courses'"), "nothing failed or waits")
	require.Equal(t, "active", enrolmentStatus(stayer), "the plugin heard nothing while disabled")
}
