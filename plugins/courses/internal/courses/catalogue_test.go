package courses_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// catBundle is one institution with an admin, two instructors and a
// learner, and a host that knows which members may author courses (the
// default host knows no one, so memberHolds would refuse everyone).
type catBundle struct {
	h                       *plugintest.Harness
	tenant                  string
	admin, teacher, learner sdk.Principal
	otherTeacher            sdk.Principal // an instructor who does not teach the bundle's courses
	authors                 *sync.Map     // "tenant/user" of members who may author
}

func catSetup(t *testing.T) *catBundle {
	t.Helper()
	authors := &sync.Map{}
	host := plugintest.HostFuncs{AuthorizeFunc: func(_ context.Context, p sdk.Principal, permission string, res sdk.Resource) (bool, error) {
		_, ok := authors.Load(p.TenantID + "/" + p.UserID)
		return ok && permission == courses.PermCourseAuthor && res.TenantID == p.TenantID, nil
	}}
	tenant := plugintest.NewTenant()
	b := &catBundle{
		h: setup(t, plugintest.WithHost(host)), tenant: tenant, authors: authors,
		admin: plugintest.User(tenant, "admin"), teacher: plugintest.User(tenant, "instructor"),
		otherTeacher: plugintest.User(tenant, "instructor"), learner: plugintest.User(tenant, "learner"),
	}
	for _, p := range []sdk.Principal{b.admin, b.teacher, b.otherTeacher} {
		authors.Store(tenant+"/"+p.UserID, true)
	}
	return b
}

// catDo sends a request and requires the status.
func catDo(t *testing.T, h *plugintest.Harness, p sdk.Principal, method, path string, body any, status int) *plugintest.Result {
	t.Helper()
	res := h.Do(p, method, path, body)
	require.Equal(t, status, res.Status, "%s %s: %s", method, path, res)
	return res
}

// catProblem requires an error answer with the status and code.
func catProblem(t *testing.T, res *plugintest.Result, status int, code string) plugintest.Problem {
	t.Helper()
	require.Equal(t, status, res.Status, res)
	pr := res.Problem()
	if code != "" {
		require.Equal(t, code, pr.Code, res)
	}
	return pr
}

func catCourse(t *testing.T, h *plugintest.Harness, p sdk.Principal, title string) courses.Course {
	t.Helper()
	var c courses.Course
	catDo(t, h, p, "POST", "/api/v1/courses", map[string]any{"title": title, "summary": "About " + title}, http.StatusCreated).JSON(t, &c)
	return c
}

func catModule(t *testing.T, h *plugintest.Harness, p sdk.Principal, courseID, title string) courses.Module {
	t.Helper()
	var m courses.Module
	catDo(t, h, p, "POST", "/api/v1/courses/"+courseID+"/modules", map[string]any{"title": title}, http.StatusCreated).JSON(t, &m)
	return m
}

func catLesson(t *testing.T, h *plugintest.Harness, p sdk.Principal, courseID, moduleID, title string) courses.Lesson {
	t.Helper()
	var l courses.Lesson
	catDo(t, h, p, "POST", "/api/v1/courses/"+courseID+"/modules/"+moduleID+"/lessons",
		map[string]any{"title": title, "body": "# " + title}, http.StatusCreated).JSON(t, &l)
	return l
}

func catPublish(t *testing.T, h *plugintest.Harness, p sdk.Principal, courseID string) courses.CourseVersion {
	t.Helper()
	var v courses.CourseVersion
	catDo(t, h, p, "POST", "/api/v1/courses/"+courseID+"/publish", nil, http.StatusCreated).JSON(t, &v)
	return v
}

// catPublishedCourse is a published course with one module of the given lessons.
func catPublishedCourse(t *testing.T, h *plugintest.Harness, p sdk.Principal, title string, lessons ...string) (courses.Course, []courses.Lesson) {
	t.Helper()
	c := catCourse(t, h, p, title)
	m := catModule(t, h, p, c.ID, "Module 1")
	var out []courses.Lesson
	for _, l := range lessons {
		out = append(out, catLesson(t, h, p, c.ID, m.ID, l))
	}
	catPublish(t, h, p, c.ID)
	return c, out
}

// catETag reads the ETag the kernel would send.
func catETag(res *plugintest.Result) string { return res.Header.Get("ETag") }

func catCount(t *testing.T, h *plugintest.Harness, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}

func TestCatalogueCourseLifecycle(t *testing.T) {
	t.Parallel()
	b := catSetup(t)
	h := b.h

	// A new course is a draft its creator teaches.
	res := h.Do(b.teacher, "POST", "/api/v1/courses", map[string]any{"title": "  Algebra  ", "summary": "Numbers and letters", "pass_mark": 60})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.Equal(t, `"1"`, catETag(res))
	var c courses.Course
	res.JSON(t, &c)
	require.Equal(t, "Algebra", c.Title, "titles are trimmed")
	require.Equal(t, "draft", c.Status)
	require.Equal(t, []string{b.teacher.UserID}, c.Instructors)
	require.Equal(t, 1, c.DraftRevision)
	require.Nil(t, c.PublishedVersion)
	require.Nil(t, c.SelfEnrolment)
	require.Equal(t, 60, *c.PassMark)
	path := "/api/v1/courses/" + c.ID

	// Who sees the draft: its instructor and the admin; not a learner, an
	// instructor who does not teach it, or anyone of another institution.
	catDo(t, h, b.teacher, "GET", path, nil, http.StatusOK)
	catDo(t, h, b.admin, "GET", path, nil, http.StatusOK)
	catProblem(t, h.Do(b.learner, "GET", path, nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.otherTeacher, "GET", path, nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.otherTeacher, "PATCH", path, map[string]any{"title": "Mine"}), http.StatusNotFound, "")
	catProblem(t, h.Do(b.learner, "GET", path+"/draft", nil), http.StatusForbidden, "")
	outsider := plugintest.User(plugintest.NewTenant(), "admin")
	catProblem(t, h.Do(outsider, "GET", path, nil), http.StatusNotFound, "")
	catProblem(t, h.Do(outsider, "POST", path+"/publish", nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.teacher, "GET", "/api/v1/courses/not-a-uuid", nil), http.StatusNotFound, "")

	// Publishing a course without lessons is refused and changes nothing.
	m := catModule(t, h, b.teacher, c.ID, "Basics")
	catProblem(t, h.Do(b.teacher, "POST", path+"/publish", nil), http.StatusUnprocessableEntity, "course_has_no_lessons")
	require.Zero(t, catCount(t, h, `SELECT count(*) FROM plugin_courses.course_versions WHERE course_id = $1`, c.ID))
	require.Equal(t, "draft", catGetCourse(t, h, b.teacher, c.ID).Status)
	require.Empty(t, h.Published(t, b.tenant))

	// Published, learners read it; an empty module does not stop it.
	l1 := catLesson(t, h, b.teacher, c.ID, m.ID, "Variables")
	catModule(t, h, b.teacher, c.ID, "Coming soon")
	res = h.DoRequest(plugintest.Request{Principal: b.teacher, Method: "POST", Path: path + "/publish", Body: map[string]any{"note": "first cut"}, RequestID: "req-pub"})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var v1 courses.CourseVersion
	res.JSON(t, &v1)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, "first cut", v1.Note)
	require.Equal(t, b.teacher.UserID, v1.PublishedBy)

	pub := h.Published(t, b.tenant)
	require.Len(t, pub, 1)
	require.Equal(t, courses.EventCoursePublished, pub[0].Type)
	require.Equal(t, "user:"+b.teacher.UserID, pub[0].Actor)
	require.Equal(t, "req-pub", pub[0].RequestID)
	var data courses.CoursePublished
	require.NoError(t, pub[0].Decode(&data))
	require.Equal(t, courses.CoursePublished{CourseID: c.ID, Version: 1, Title: "Algebra"}, data)

	seen := catGetCourse(t, h, b.learner, c.ID)
	require.Equal(t, "published", seen.Status)
	require.Zero(t, seen.DraftRevision, "learners do not see the draft revision")
	require.Equal(t, 1, *seen.PublishedVersion)
	require.NotNil(t, seen.Content)
	require.Len(t, seen.Content.Modules, 2)
	require.Equal(t, "Variables", seen.Content.Modules[0].Lessons[0].Title)
	require.Empty(t, seen.Content.Modules[1].Lessons)

	// Published, the course is visible but still not the other instructor's to change.
	catProblem(t, h.Do(b.otherTeacher, "PATCH", path, map[string]any{"title": "Mine"}), http.StatusForbidden, "")
	catProblem(t, h.Do(b.otherTeacher, "GET", path+"/draft", nil), http.StatusForbidden, "")

	// An edit reaches the draft and its preview, not learners.
	var draft courses.Draft
	catDo(t, h, b.teacher, "GET", path+"/draft", nil, http.StatusOK).JSON(t, &draft)
	require.False(t, draft.DiffersFromPublished)
	catDo(t, h, b.teacher, "PATCH", path+"/lessons/"+l1.ID, map[string]any{"title": "Variables and constants"}, http.StatusOK)
	catDo(t, h, b.teacher, "PATCH", path, map[string]any{"title": "Algebra I"}, http.StatusOK)
	catDo(t, h, b.teacher, "GET", path+"/draft", nil, http.StatusOK).JSON(t, &draft)
	require.True(t, draft.DiffersFromPublished)
	require.Equal(t, "Variables and constants", draft.Content.Modules[0].Lessons[0].Title)
	require.Equal(t, "Algebra I", draft.Content.Title)
	require.Equal(t, 0, draft.Content.Version)
	var lesson courses.Lesson
	catDo(t, h, b.learner, "GET", path+"/lessons/"+l1.ID, nil, http.StatusOK).JSON(t, &lesson)
	require.Equal(t, "Variables", lesson.Title)
	require.Equal(t, 1, lesson.Version)
	require.Nil(t, lesson.CreatedAt)
	require.Equal(t, "Algebra", catGetCourse(t, h, b.learner, c.ID).Title, "learners see the published title")
	catDo(t, h, b.teacher, "GET", path+"/lessons/"+l1.ID, nil, http.StatusOK).JSON(t, &lesson)
	require.Equal(t, "Variables and constants", lesson.Title)
	require.NotNil(t, lesson.CreatedAt)

	// The second publish is version 2; the history keeps both.
	v2 := catPublish(t, h, b.admin, c.ID)
	require.Equal(t, 2, v2.Version)
	require.Equal(t, b.admin.UserID, v2.PublishedBy)
	catDo(t, h, b.learner, "GET", path+"/lessons/"+l1.ID, nil, http.StatusOK).JSON(t, &lesson)
	require.Equal(t, "Variables and constants", lesson.Title)
	require.Equal(t, 2, lesson.Version)
	catDo(t, h, b.teacher, "GET", path+"/draft", nil, http.StatusOK).JSON(t, &draft)
	require.False(t, draft.DiffersFromPublished)
	require.Equal(t, 2, *draft.PublishedVersion)

	var versions sdk.Page[courses.CourseVersion]
	catDo(t, h, b.teacher, "GET", path+"/versions", nil, http.StatusOK).JSON(t, &versions)
	require.Len(t, versions.Items, 2)
	require.Equal(t, []int{2, 1}, []int{versions.Items[0].Version, versions.Items[1].Version})
	require.Equal(t, "first cut", versions.Items[1].Note)
	require.Nil(t, versions.Items[0].Content, "the list has no content")
	catDo(t, h, b.teacher, "GET", path+"/versions?limit=1", nil, http.StatusOK).JSON(t, &versions)
	require.Len(t, versions.Items, 1)
	require.NotEmpty(t, versions.NextCursor)
	var last sdk.Page[courses.CourseVersion]
	catDo(t, h, b.teacher, "GET", path+"/versions?limit=1&cursor="+versions.NextCursor, nil, http.StatusOK).JSON(t, &last)
	require.Len(t, last.Items, 1)
	require.Equal(t, 1, last.Items[0].Version)
	require.Empty(t, last.NextCursor)

	var old courses.CourseVersion
	catDo(t, h, b.teacher, "GET", path+"/versions/1", nil, http.StatusOK).JSON(t, &old)
	require.Equal(t, "Algebra", old.Content.Title)
	require.Equal(t, "Variables", old.Content.Modules[0].Lessons[0].Title)
	require.Equal(t, 1, old.Content.Version)
	catProblem(t, h.Do(b.teacher, "GET", path+"/versions/3", nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.teacher, "GET", path+"/versions/zero", nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.learner, "GET", path+"/versions", nil), http.StatusForbidden, "")
	require.Len(t, h.Published(t, b.tenant), 2)

	// Unpublished, learners lose it; authors keep it and its history.
	var after courses.Course
	catDo(t, h, b.teacher, "POST", path+"/unpublish", nil, http.StatusOK).JSON(t, &after)
	require.Equal(t, "unpublished", after.Status)
	catProblem(t, h.Do(b.teacher, "POST", path+"/unpublish", nil), http.StatusConflict, "not_published")
	catProblem(t, h.Do(b.learner, "GET", path, nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.learner, "GET", path+"/lessons/"+l1.ID, nil), http.StatusNotFound, "")
	catDo(t, h, b.teacher, "GET", path+"/versions/2", nil, http.StatusOK)

	// Publishing again makes version 3.
	require.Equal(t, 3, catPublish(t, h, b.teacher, c.ID).Version)
}

func catGetCourse(t *testing.T, h *plugintest.Harness, p sdk.Principal, id string) courses.Course {
	t.Helper()
	var c courses.Course
	catDo(t, h, p, "GET", "/api/v1/courses/"+id, nil, http.StatusOK).JSON(t, &c)
	return c
}

func TestCataloguePatchCourse(t *testing.T) {
	t.Parallel()
	b := catSetup(t)
	h := b.h
	c := catCourse(t, h, b.teacher, "Biology")
	path := "/api/v1/courses/" + c.ID
	patch := func(ifMatch string, body any) *plugintest.Result {
		req := plugintest.Request{Principal: b.teacher, Method: "PATCH", Path: path, Body: body}
		if ifMatch != "" {
			req.Header = http.Header{"If-Match": {ifMatch}}
		}
		return h.DoRequest(req)
	}

	res := patch(`"1"`, map[string]any{"title": "Biology 101", "self_enrolment": false, "pass_mark": 55})
	require.Equal(t, http.StatusOK, res.Status, res)
	require.Equal(t, `"2"`, catETag(res))
	var got courses.Course
	res.JSON(t, &got)
	require.Equal(t, "Biology 101", got.Title)
	require.Equal(t, "About Biology", got.Summary, "fields not sent stay")
	require.False(t, *got.SelfEnrolment)
	require.Equal(t, 55, *got.PassMark)
	require.Equal(t, 2, got.DraftRevision)
	require.True(t, got.UpdatedAt.After(c.UpdatedAt))

	// A change made against an older revision is refused and changes nothing.
	catProblem(t, patch(`"1"`, map[string]any{"title": "Stale"}), http.StatusConflict, "stale_revision")
	catProblem(t, patch("yesterday", map[string]any{"title": "Stale"}), http.StatusBadRequest, "")
	require.Equal(t, "Biology 101", catGetCourse(t, h, b.teacher, c.ID).Title)

	// null gives a setting back to the institution; W/ and bare revisions match too.
	res = patch(`W/"2"`, map[string]any{"pass_mark": nil, "self_enrolment": nil})
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &got)
	require.Nil(t, got.PassMark)
	require.Nil(t, got.SelfEnrolment)
	require.Equal(t, http.StatusOK, patch("3", map[string]any{"summary": ""}).Status)
	require.Equal(t, http.StatusOK, patch("*", map[string]any{"summary": "Cells"}).Status)

	for _, tc := range []struct {
		name   string
		body   any
		status int
		fields []string
	}{
		{name: "nothing", body: map[string]any{}, status: 422},
		{name: "null title", body: map[string]any{"title": nil}, status: 422, fields: []string{"title"}},
		{name: "blank title", body: map[string]any{"title": "   "}, status: 422, fields: []string{"title"}},
		{name: "long title", body: map[string]any{"title": strings.Repeat("é", 201)}, status: 422, fields: []string{"title"}},
		{name: "long summary", body: map[string]any{"summary": strings.Repeat("x", 2001)}, status: 422, fields: []string{"summary"}},
		{name: "pass mark", body: map[string]any{"pass_mark": 101}, status: 422, fields: []string{"pass_mark"}},
		{name: "pass mark type", body: map[string]any{"pass_mark": "high"}, status: 422, fields: []string{"pass_mark"}},
		{name: "unknown field", body: map[string]any{"status": "published"}, status: 400},
		{name: "no body", body: nil, status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := patch("", tc.body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.fields != nil {
				require.Equal(t, tc.fields, res.Problem().FieldNames())
			}
		})
	}
	require.Equal(t, "Cells", catGetCourse(t, h, b.teacher, c.ID).Summary)

	// Creating: title required, the creator must be a person.
	catProblem(t, h.Do(b.teacher, "POST", "/api/v1/courses", map[string]any{"summary": "x"}), http.StatusUnprocessableEntity, "")
	catProblem(t, h.Do(b.learner, "POST", "/api/v1/courses", map[string]any{"title": "x"}), http.StatusForbidden, "")
	key := plugintest.APIKey(b.tenant, courses.PermCourseCreate)
	catProblem(t, h.Do(key, "POST", "/api/v1/courses", map[string]any{"title": "x"}), http.StatusForbidden, "user_required")
}

func TestCatalogueList(t *testing.T) {
	t.Parallel()
	b := catSetup(t)
	h := b.h
	// Three published courses, two drafts of the teacher's, one draft of
	// the other teacher's, one unpublished.
	algebra, _ := catPublishedCourse(t, h, b.teacher, "Algebra basics", "One")
	geometry, _ := catPublishedCourse(t, h, b.otherTeacher, "Geometry", "One")
	calculus, _ := catPublishedCourse(t, h, b.teacher, "Calculus for engineers", "One")
	draft1 := catCourse(t, h, b.teacher, "Statistics draft")
	draft2 := catCourse(t, h, b.teacher, "Algorithms draft")
	other := catCourse(t, h, b.otherTeacher, "Secret plans")
	gone, _ := catPublishedCourse(t, h, b.teacher, "Old course", "One")
	catDo(t, h, b.teacher, "POST", "/api/v1/courses/"+gone.ID+"/unpublish", nil, http.StatusOK)
	// The draft title changes; learners see the published one.
	catDo(t, h, b.teacher, "PATCH", "/api/v1/courses/"+algebra.ID, map[string]any{"title": "Algebra basics (new edition)"}, http.StatusOK)

	list := func(p sdk.Principal, query string) []courses.CourseItem {
		t.Helper()
		var all []courses.CourseItem
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 20, "pagination does not end")
			q := "limit=2&" + query
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			var page sdk.Page[courses.CourseItem]
			catDo(t, h, p, "GET", "/api/v1/courses?"+q, nil, http.StatusOK).JSON(t, &page)
			require.LessOrEqual(t, len(page.Items), 2)
			for _, c := range page.Items {
				require.False(t, seen[c.ID], "course %s on two pages", c.ID)
				seen[c.ID] = true
				all = append(all, c)
			}
			if page.NextCursor == "" {
				return all
			}
			cursor = page.NextCursor
		}
	}
	ids := func(items []courses.CourseItem) []string {
		out := []string{}
		for _, c := range items {
			out = append(out, c.ID)
		}
		return out
	}

	// Newest first, every page walked once.
	require.Equal(t, []string{gone.ID, other.ID, draft2.ID, draft1.ID, calculus.ID, geometry.ID, algebra.ID}, ids(list(b.admin, "")))
	require.Equal(t, []string{gone.ID, draft2.ID, draft1.ID, calculus.ID, geometry.ID, algebra.ID}, ids(list(b.teacher, "")),
		"an instructor sees published courses and the unpublished ones they teach")
	learnerView := list(b.learner, "")
	require.Equal(t, []string{calculus.ID, geometry.ID, algebra.ID}, ids(learnerView))
	require.Equal(t, "Algebra basics", learnerView[2].Title, "learners see the published title")
	require.Equal(t, []string{b.teacher.UserID}, learnerView[2].Instructors)
	require.Equal(t, 1, *learnerView[2].PublishedVersion)
	require.NotNil(t, learnerView[2].PublishedAt)
	require.Equal(t, "Algebra basics (new edition)", list(b.teacher, "q=edition")[0].Title)
	require.Empty(t, list(plugintest.User(plugintest.NewTenant(), "admin"), ""), "another institution sees none of them")

	// Filters.
	require.Equal(t, []string{other.ID, draft2.ID, draft1.ID}, ids(list(b.admin, "status=draft")))
	require.Equal(t, []string{gone.ID}, ids(list(b.admin, "status=unpublished")))
	require.Empty(t, list(b.learner, "status=draft"))
	require.Equal(t, []string{geometry.ID}, ids(list(b.learner, "instructor="+b.otherTeacher.UserID)))
	require.Equal(t, []string{other.ID, geometry.ID}, ids(list(b.admin, "instructor="+strings.ToUpper(b.otherTeacher.UserID))))
	require.Equal(t, []string{draft2.ID, algebra.ID}, ids(list(b.admin, "q=alg")), "words are prefixes")
	require.Equal(t, []string{calculus.ID}, ids(list(b.learner, "q=ENGINEERS+calc")))
	require.Empty(t, list(b.learner, "q=calc+geometry"), "every word must match")
	require.Equal(t, []string{algebra.ID}, ids(list(b.learner, "q="+url.QueryEscape("alg'):* | !(&"))), "tsquery syntax is not read")
	require.Empty(t, list(b.learner, "q=statistics"), "a learner does not find drafts")
	require.Equal(t, []string{draft1.ID}, ids(list(b.teacher, "q=statistics&status=draft")))

	for _, tc := range []struct{ query, field string }{
		{"status=archived", "status"},
		{"instructor=bob", "instructor"},
		{"q=" + url.QueryEscape("!!!"), "q"},
		{"q=" + strings.Repeat("a", 201), "q"},
		{"cursor=bogus", "cursor"},
		{"limit=0", "limit"},
	} {
		res := h.Do(b.admin, "GET", "/api/v1/courses?"+tc.query, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status, "%s: %s", tc.query, res)
		require.Equal(t, []string{tc.field}, res.Problem().FieldNames(), tc.query)
	}
}

func TestCatalogueInstructors(t *testing.T) {
	t.Parallel()
	b := catSetup(t)
	h := b.h
	c := catCourse(t, h, b.teacher, "Chemistry")
	path := "/api/v1/courses/" + c.ID + "/instructors/"

	// Only members who may author can teach.
	catProblem(t, h.Do(b.admin, "PUT", path+b.learner.UserID, nil), http.StatusUnprocessableEntity, "not_an_instructor")
	stranger := plugintest.User(plugintest.NewTenant(), "instructor")
	b.authors.Store(stranger.TenantID+"/"+stranger.UserID, true)
	catProblem(t, h.Do(b.admin, "PUT", path+stranger.UserID, nil), http.StatusUnprocessableEntity, "not_an_instructor")
	catProblem(t, h.Do(b.teacher, "PUT", path+b.otherTeacher.UserID, nil), http.StatusForbidden, "")
	catProblem(t, h.Do(b.admin, "PUT", "/api/v1/courses/"+plugintest.NewID()+"/instructors/"+b.otherTeacher.UserID, nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.admin, "PUT", path+"bob", nil), http.StatusNotFound, "")

	var got courses.Instructors
	catDo(t, h, b.admin, "PUT", path+b.otherTeacher.UserID, nil, http.StatusOK).JSON(t, &got)
	require.Equal(t, courses.Instructors{CourseID: c.ID, Instructors: []string{b.teacher.UserID, b.otherTeacher.UserID}}, got)
	catDo(t, h, b.admin, "PUT", path+b.otherTeacher.UserID, nil, http.StatusOK).JSON(t, &got)
	require.Len(t, got.Instructors, 2, "assigning twice changes nothing")

	// The new instructor may change the course and sees its draft.
	catDo(t, h, b.otherTeacher, "PATCH", "/api/v1/courses/"+c.ID, map[string]any{"summary": "Atoms"}, http.StatusOK)
	var items sdk.Page[courses.CourseItem]
	catDo(t, h, b.otherTeacher, "GET", "/api/v1/courses?instructor="+b.otherTeacher.UserID, nil, http.StatusOK).JSON(t, &items)
	require.Len(t, items.Items, 1)

	catDo(t, h, b.admin, "DELETE", path+b.teacher.UserID, nil, http.StatusNoContent)
	catProblem(t, h.Do(b.admin, "DELETE", path+b.teacher.UserID, nil), http.StatusNotFound, "")
	catProblem(t, h.Do(b.admin, "DELETE", path+b.otherTeacher.UserID, nil), http.StatusConflict, "last_instructor")
	require.Equal(t, []string{b.otherTeacher.UserID}, catGetCourse(t, h, b.admin, c.ID).Instructors)
	// The removed instructor no longer sees the draft.
	catProblem(t, h.Do(b.teacher, "GET", "/api/v1/courses/"+c.ID, nil), http.StatusNotFound, "")
	catProblem(t, h.Do(plugintest.User(plugintest.NewTenant(), "admin"), "DELETE", path+b.otherTeacher.UserID, nil), http.StatusNotFound, "")
}

func TestCatalogueModulesAndLessons(t *testing.T) {
	t.Parallel()
	b := catSetup(t)
	h := b.h
	c := catCourse(t, h, b.teacher, "Physics")
	base := "/api/v1/courses/" + c.ID
	m1 := catModule(t, h, b.teacher, c.ID, "Mechanics")
	m2 := catModule(t, h, b.teacher, c.ID, "Waves")
	require.Equal(t, []int{0, 1}, []int{m1.Position, m2.Position})
	var m0 courses.Module
	catDo(t, h, b.teacher, "POST", base+"/modules", map[string]any{"title": "Units", "position": 0}, http.StatusCreated).JSON(t, &m0)
	require.Equal(t, 0, m0.Position)
	modules := func() []string {
		var d courses.Draft
		catDo(t, h, b.teacher, "GET", base+"/draft", nil, http.StatusOK).JSON(t, &d)
		out := []string{}
		for i, m := range d.Content.Modules {
			require.Equal(t, i, m.Position, "positions stay 0..n-1")
			out = append(out, m.Title)
		}
		return out
	}
	require.Equal(t, []string{"Units", "Mechanics", "Waves"}, modules())
	catProblem(t, h.Do(b.teacher, "POST", base+"/modules", map[string]any{"title": "Far", "position": 4}), http.StatusUnprocessableEntity, "")
	catProblem(t, h.Do(b.teacher, "POST", base+"/modules", map[string]any{"title": ""}), http.StatusUnprocessableEntity, "")

	var moved courses.Module
	catDo(t, h, b.teacher, "PATCH", base+"/modules/"+m0.ID, map[string]any{"position": 2, "title": "Units and measures"}, http.StatusOK).JSON(t, &moved)
	require.Equal(t, 2, moved.Position)
	require.Equal(t, []string{"Mechanics", "Waves", "Units and measures"}, modules())
	catProblem(t, h.Do(b.teacher, "PATCH", base+"/modules/"+m0.ID, map[string]any{"position": 3}), http.StatusUnprocessableEntity, "")
	catProblem(t, h.Do(b.teacher, "PATCH", base+"/modules/"+m0.ID, map[string]any{}), http.StatusUnprocessableEntity, "")
	catProblem(t, h.Do(b.teacher, "PATCH", base+"/modules/"+plugintest.NewID(), map[string]any{"title": "x"}), http.StatusNotFound, "")

	// Lessons: appended, or inserted at a position.
	a := catLesson(t, h, b.teacher, c.ID, m1.ID, "Forces")
	bb := catLesson(t, h, b.teacher, c.ID, m1.ID, "Energy")
	var first courses.Lesson
	catDo(t, h, b.teacher, "POST", base+"/modules/"+m1.ID+"/lessons", map[string]any{
		"title": "Motion", "position": 0, "body": "<p>Speed</p>", "body_format": "html", "estimated_minutes": 15, "required": false,
		"assets": []map[string]any{{"url": "https://cdn.example/motion.mp4", "type": "video/mp4", "size_bytes": 1024, "title": "Clip"}},
	}, http.StatusCreated).JSON(t, &first)
	require.Equal(t, 0, first.Position)
	require.False(t, first.Required)
	require.Equal(t, "html", first.BodyFormat)
	require.Equal(t, []courses.Asset{{URL: "https://cdn.example/motion.mp4", Type: "video/mp4", SizeBytes: 1024, Title: "Clip"}}, first.Assets)
	require.Equal(t, []string{}, first.Prerequisites)
	lessons := func(moduleID string) []string {
		var d courses.Draft
		catDo(t, h, b.teacher, "GET", base+"/draft", nil, http.StatusOK).JSON(t, &d)
		out := []string{}
		for _, m := range d.Content.Modules {
			if m.ID != moduleID {
				continue
			}
			for i, l := range m.Lessons {
				require.Equal(t, i, l.Position, "positions stay 0..n-1")
				out = append(out, l.Title)
			}
		}
		return out
	}
	require.Equal(t, []string{"Motion", "Forces", "Energy"}, lessons(m1.ID))

	// Moving a lesson to another module renumbers both.
	var l courses.Lesson
	catDo(t, h, b.teacher, "PATCH", base+"/lessons/"+a.ID, map[string]any{"module_id": strings.ToUpper(m2.ID)}, http.StatusOK).JSON(t, &l)
	require.Equal(t, m2.ID, l.ModuleID)
	require.Equal(t, 0, l.Position)
	require.Equal(t, []string{"Motion", "Energy"}, lessons(m1.ID))
	require.Equal(t, []string{"Forces"}, lessons(m2.ID))
	catDo(t, h, b.teacher, "PATCH", base+"/lessons/"+bb.ID, map[string]any{"module_id": m2.ID, "position": 0}, http.StatusOK)
	require.Equal(t, []string{"Energy", "Forces"}, lessons(m2.ID))
	catDo(t, h, b.teacher, "PATCH", base+"/lessons/"+bb.ID, map[string]any{"position": 1}, http.StatusOK)
	require.Equal(t, []string{"Forces", "Energy"}, lessons(m2.ID))
	require.Equal(t, []string{"Motion"}, lessons(m1.ID))

	other := catCourse(t, h, b.teacher, "Other")
	otherModule := catModule(t, h, b.teacher, other.ID, "Elsewhere")
	res := h.Do(b.teacher, "PATCH", base+"/lessons/"+a.ID, map[string]any{"module_id": otherModule.ID})
	catProblem(t, res, http.StatusUnprocessableEntity, "")
	require.Equal(t, []string{"module_id"}, res.Problem().FieldNames())
	catProblem(t, h.Do(b.teacher, "POST", "/api/v1/courses/"+other.ID+"/modules/"+m1.ID+"/lessons", map[string]any{"title": "x"}), http.StatusNotFound, "")
	catProblem(t, h.Do(b.teacher, "GET", "/api/v1/courses/"+other.ID+"/lessons/"+a.ID, nil), http.StatusNotFound, "")

	// Bodies that would run script, and other bad fields.
	for _, tc := range []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"script", map[string]any{"title": "x", "body_format": "html", "body": "<p>hi</p><SCRIPT>alert(1)</script>"}, []string{"body"}},
		{"event handler", map[string]any{"title": "x", "body_format": "html", "body": `<img src="a.png" onerror="alert(1)">`}, []string{"body"}},
		{"event handler after slash", map[string]any{"title": "x", "body_format": "html", "body": `<svg/onload=alert(1)>`}, []string{"body"}},
		{"javascript url", map[string]any{"title": "x", "body_format": "html", "body": `<a href="JavaScript:alert(1)">x</a>`}, []string{"body"}},
		{"escaped javascript url", map[string]any{"title": "x", "body_format": "html", "body": `<a href="java&#x09;script&#58;alert(1)">x</a>`}, []string{"body"}},
		{"html data url", map[string]any{"title": "x", "body_format": "html", "body": `<iframe src="data:text/html;base64,PHNjcmlwdD4="></iframe>`}, []string{"body"}},
		{"format", map[string]any{"title": "x", "body_format": "pdf"}, []string{"body_format"}},
		{"minutes", map[string]any{"title": "x", "estimated_minutes": -1}, []string{"estimated_minutes"}},
		{"asset url", map[string]any{"title": "x", "assets": []map[string]any{{"url": "ftp://x", "type": "video/mp4", "size_bytes": 1}}}, []string{"assets[0].url"}},
		{"position", map[string]any{"title": "x", "position": -1}, []string{"position"}},
		{"no title", map[string]any{"body": "x"}, []string{"title"}},
		{"module in body", map[string]any{"title": "x", "module_id": m2.ID}, []string{"module_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(b.teacher, "POST", base+"/modules/"+m1.ID+"/lessons", tc.body)
			require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
			require.Equal(t, tc.fields, res.Problem().FieldNames())
		})
	}
	// Markdown and plain bodies are not HTML: a lesson about script may show it.
	var code courses.Lesson
	catDo(t, h, b.teacher, "POST", base+"/modules/"+m1.ID+"/lessons",
		map[string]any{"title": "Scripts", "body": "Write `<script>` tags like this: <script>", "body_format": "plain"}, http.StatusCreated).JSON(t, &code)
	// ... but switching such a body to html is checked.
	catProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+code.ID, map[string]any{"body_format": "html"}), http.StatusUnprocessableEntity, "")
	catProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+first.ID, map[string]any{"body": "<b onclick = 'x()'>b</b>"}), http.StatusUnprocessableEntity, "")
	catProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+first.ID, map[string]any{"required": nil}), http.StatusUnprocessableEntity, "")
	catProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+first.ID, map[string]any{}), http.StatusUnprocessableEntity, "")

	// Deleting a lesson renumbers its module; deleting a module takes its lessons.
	catDo(t, h, b.teacher, "DELETE", base+"/lessons/"+code.ID, nil, http.StatusNoContent)
	catProblem(t, h.Do(b.teacher, "DELETE", base+"/lessons/"+code.ID, nil), http.StatusNotFound, "")
	require.Equal(t, []string{"Motion"}, lessons(m1.ID))
	catDo(t, h, b.teacher, "DELETE", base+"/modules/"+m2.ID, nil, http.StatusNoContent)
	require.Equal(t, []string{"Mechanics", "Units and measures"}, modules())
	catProblem(t, h.Do(b.teacher, "GET", base+"/lessons/"+a.ID, nil), http.StatusNotFound, "")
	require.Zero(t, catCount(t, h, `SELECT count(*) FROM plugin_courses.lessons WHERE module_id = $1`, m2.ID))
	catProblem(t, h.Do(b.teacher, "DELETE", base+"/modules/"+m2.ID, nil), http.StatusNotFound, "")

	// Every change bumped the draft revision; If-Match guards lessons too.
	rev := catGetCourse(t, h, b.teacher, c.ID).DraftRevision
	require.Greater(t, rev, 10)
	res = h.DoRequest(plugintest.Request{Principal: b.teacher, Method: "PATCH", Path: base + "/lessons/" + first.ID,
		Body: map[string]any{"title": "Motion!"}, Header: http.Header{"If-Match": {fmt.Sprintf(`"%d"`, rev-1)}}})
	catProblem(t, res, http.StatusConflict, "stale_revision")
	res = h.DoRequest(plugintest.Request{Principal: b.teacher, Method: "PATCH", Path: base + "/lessons/" + first.ID,
		Body: map[string]any{"title": "Motion!"}, Header: http.Header{"If-Match": {fmt.Sprintf(`"%d"`, rev)}}})
	require.Equal(t, http.StatusOK, res.Status, res)
	require.Equal(t, fmt.Sprintf(`"%d"`, rev+1), catETag(res))

	// Learners cannot author.
	catProblem(t, h.Do(b.learner, "POST", base+"/modules", map[string]any{"title": "x"}), http.StatusForbidden, "")
	catProblem(t, h.Do(b.otherTeacher, "POST", base+"/modules", map[string]any{"title": "x"}), http.StatusNotFound, "")
}

// A publish moves the progress snapshot of every active enrolment to the
// new version, in its transaction.
func TestCataloguePublishRefreshesProgress(t *testing.T) {
	t.Parallel()
	b := catSetup(t)
	h := b.h
	c, ls := catPublishedCourse(t, h, b.teacher, "Music", "Rhythm")
	var active, waiting string
	require.NoError(t, h.InTenant(b.tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(t.Context(), `
			INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, activated_at)
			VALUES ($1, $2, 'active', 'self', $3, now()) RETURNING id`, c.ID, b.learner.UserID, b.learner.UserID).Scan(&active)
		if err != nil {
			return err
		}
		err = tx.QueryRow(t.Context(), `
			INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, waitlisted_at)
			VALUES ($1, $2, 'waitlisted', 'self', 'someone', now()) RETURNING id`, c.ID, plugintest.NewID()).Scan(&waiting)
		if err != nil {
			return err
		}
		_, err = tx.Exec(t.Context(), `INSERT INTO lesson_progress (enrolment_id, lesson_id, time_spent_seconds, completed_at) VALUES ($1, $2, 60, now())`, active, ls[0].ID)
		return err
	}))

	m := catModule(t, h, b.teacher, c.ID, "More")
	catLesson(t, h, b.teacher, c.ID, m.ID, "Harmony")
	catPublish(t, h, b.teacher, c.ID)

	var version, done, required, percent int
	require.NoError(t, h.DB().QueryRow(t.Context(), `
		SELECT version, lessons_completed, lessons_required, percent FROM plugin_courses.course_progress WHERE enrolment_id = $1`, active).
		Scan(&version, &done, &required, &percent))
	require.Equal(t, []int{2, 1, 2, 50}, []int{version, done, required, percent})
	require.Zero(t, catCount(t, h, `SELECT count(*) FROM plugin_courses.course_progress WHERE enrolment_id = $1`, waiting))

	// A version that asks for less completes the enrolment, with its event.
	var d courses.Draft
	catDo(t, h, b.teacher, "GET", "/api/v1/courses/"+c.ID+"/draft", nil, http.StatusOK).JSON(t, &d)
	catDo(t, h, b.teacher, "DELETE", "/api/v1/courses/"+c.ID+"/modules/"+m.ID, nil, http.StatusNoContent)
	catPublish(t, h, b.teacher, c.ID)
	var status string
	require.NoError(t, h.DB().QueryRow(t.Context(), `SELECT status FROM plugin_courses.enrolments WHERE id = $1`, active).Scan(&status))
	require.Equal(t, "completed", status)
	var completed []string
	for _, ev := range h.Published(t, b.tenant) {
		if ev.Type == courses.EventCourseCompleted {
			var data map[string]any
			require.NoError(t, json.Unmarshal(ev.Data, &data))
			completed = append(completed, data["enrolment_id"].(string))
		}
	}
	require.Equal(t, []string{active}, completed)
}
