package courses_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestCourseLifecycle(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h

	// A new course is a draft its creator teaches.
	res := h.Do(b.teacher, "POST", "/api/v1/courses", map[string]any{"title": "  Algebra  ", "summary": "Numbers and letters", "pass_mark": 60})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.Equal(t, `"1"`, etag(res))
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
	do(t, h, b.teacher, "GET", path, nil, http.StatusOK)
	do(t, h, b.admin, "GET", path, nil, http.StatusOK)
	requireProblem(t, h.Do(b.learner, "GET", path, nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.otherTeacher, "GET", path, nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.otherTeacher, "PATCH", path, map[string]any{"title": "Mine"}), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.learner, "GET", path+"/draft", nil), http.StatusForbidden, "")
	outsider := plugintest.User(plugintest.NewTenant(), "admin")
	requireProblem(t, h.Do(outsider, "GET", path, nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(outsider, "POST", path+"/publish", nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.teacher, "GET", "/api/v1/courses/not-a-uuid", nil), http.StatusNotFound, "")

	// Publishing a course without lessons is refused and changes nothing.
	m := newModule(t, h, b.teacher, c.ID, "Basics")
	requireProblem(t, h.Do(b.teacher, "POST", path+"/publish", nil), http.StatusUnprocessableEntity, "course_has_no_lessons")
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.course_versions WHERE course_id = $1`, c.ID))
	require.Equal(t, "draft", getCourse(t, h, b.teacher, c.ID).Status)
	require.Empty(t, h.Published(t, b.tenant))

	// Published, learners read it; an empty module does not stop it.
	l1 := newLesson(t, h, b.teacher, c.ID, m.ID, "Variables")
	newModule(t, h, b.teacher, c.ID, "Coming soon")
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

	seen := getCourse(t, h, b.learner, c.ID)
	require.Equal(t, "published", seen.Status)
	require.Zero(t, seen.DraftRevision, "learners do not see the draft revision")
	require.Equal(t, 1, *seen.PublishedVersion)
	require.NotNil(t, seen.Content)
	require.Len(t, seen.Content.Modules, 2)
	require.Equal(t, "Variables", seen.Content.Modules[0].Lessons[0].Title)
	require.Empty(t, seen.Content.Modules[1].Lessons)

	// Published, the course is visible but still not the other instructor's to change.
	requireProblem(t, h.Do(b.otherTeacher, "PATCH", path, map[string]any{"title": "Mine"}), http.StatusForbidden, "")
	requireProblem(t, h.Do(b.otherTeacher, "GET", path+"/draft", nil), http.StatusForbidden, "")

	// An edit reaches the draft and its preview, not learners.
	var draft courses.Draft
	do(t, h, b.teacher, "GET", path+"/draft", nil, http.StatusOK).JSON(t, &draft)
	require.False(t, draft.DiffersFromPublished)
	do(t, h, b.teacher, "PATCH", path+"/lessons/"+l1.ID, map[string]any{"title": "Variables and constants"}, http.StatusOK)
	do(t, h, b.teacher, "PATCH", path, map[string]any{"title": "Algebra I"}, http.StatusOK)
	do(t, h, b.teacher, "GET", path+"/draft", nil, http.StatusOK).JSON(t, &draft)
	require.True(t, draft.DiffersFromPublished)
	require.Equal(t, "Variables and constants", draft.Content.Modules[0].Lessons[0].Title)
	require.Equal(t, "Algebra I", draft.Content.Title)
	require.Equal(t, 0, draft.Content.Version)
	var lesson courses.Lesson
	do(t, h, b.learner, "GET", path+"/lessons/"+l1.ID, nil, http.StatusOK).JSON(t, &lesson)
	require.Equal(t, "Variables", lesson.Title)
	require.Equal(t, 1, lesson.Version)
	require.Nil(t, lesson.CreatedAt)
	require.Equal(t, "Algebra", getCourse(t, h, b.learner, c.ID).Title, "learners see the published title")
	do(t, h, b.teacher, "GET", path+"/lessons/"+l1.ID, nil, http.StatusOK).JSON(t, &lesson)
	require.Equal(t, "Variables and constants", lesson.Title)
	require.NotNil(t, lesson.CreatedAt)

	// The second publish is version 2; the history keeps both.
	v2 := publish(t, h, b.admin, c.ID)
	require.Equal(t, 2, v2.Version)
	require.Equal(t, b.admin.UserID, v2.PublishedBy)
	do(t, h, b.learner, "GET", path+"/lessons/"+l1.ID, nil, http.StatusOK).JSON(t, &lesson)
	require.Equal(t, "Variables and constants", lesson.Title)
	require.Equal(t, 2, lesson.Version)
	do(t, h, b.teacher, "GET", path+"/draft", nil, http.StatusOK).JSON(t, &draft)
	require.False(t, draft.DiffersFromPublished)
	require.Equal(t, 2, *draft.PublishedVersion)

	var versions sdk.Page[courses.CourseVersion]
	do(t, h, b.teacher, "GET", path+"/versions", nil, http.StatusOK).JSON(t, &versions)
	require.Len(t, versions.Items, 2)
	require.Equal(t, []int{2, 1}, []int{versions.Items[0].Version, versions.Items[1].Version})
	require.Equal(t, "first cut", versions.Items[1].Note)
	require.Nil(t, versions.Items[0].Content, "the list has no content")
	do(t, h, b.teacher, "GET", path+"/versions?limit=1", nil, http.StatusOK).JSON(t, &versions)
	require.Len(t, versions.Items, 1)
	require.NotEmpty(t, versions.NextCursor)
	var last sdk.Page[courses.CourseVersion]
	do(t, h, b.teacher, "GET", path+"/versions?limit=1&cursor="+versions.NextCursor, nil, http.StatusOK).JSON(t, &last)
	require.Len(t, last.Items, 1)
	require.Equal(t, 1, last.Items[0].Version)
	require.Empty(t, last.NextCursor)

	var old courses.CourseVersion
	do(t, h, b.teacher, "GET", path+"/versions/1", nil, http.StatusOK).JSON(t, &old)
	require.Equal(t, "Algebra", old.Content.Title)
	require.Equal(t, "Variables", old.Content.Modules[0].Lessons[0].Title)
	require.Equal(t, 1, old.Content.Version)
	requireProblem(t, h.Do(b.teacher, "GET", path+"/versions/3", nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.teacher, "GET", path+"/versions/zero", nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.learner, "GET", path+"/versions", nil), http.StatusForbidden, "")
	require.Len(t, h.Published(t, b.tenant), 2)

	// Unpublished, learners lose it; authors keep it and its history.
	var after courses.Course
	do(t, h, b.teacher, "POST", path+"/unpublish", nil, http.StatusOK).JSON(t, &after)
	require.Equal(t, "unpublished", after.Status)
	requireProblem(t, h.Do(b.teacher, "POST", path+"/unpublish", nil), http.StatusConflict, "not_published")
	requireProblem(t, h.Do(b.learner, "GET", path, nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.learner, "GET", path+"/lessons/"+l1.ID, nil), http.StatusNotFound, "")
	do(t, h, b.teacher, "GET", path+"/versions/2", nil, http.StatusOK)

	// Publishing again makes version 3.
	require.Equal(t, 3, publish(t, h, b.teacher, c.ID).Version)
}

func TestPatchCourse(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	c := newCourse(t, h, b.teacher, "Biology")
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
	require.Equal(t, `"2"`, etag(res))
	var got courses.Course
	res.JSON(t, &got)
	require.Equal(t, "Biology 101", got.Title)
	require.Equal(t, "About Biology", got.Summary, "fields not sent stay")
	require.False(t, *got.SelfEnrolment)
	require.Equal(t, 55, *got.PassMark)
	require.Equal(t, 2, got.DraftRevision)
	require.True(t, got.UpdatedAt.After(c.UpdatedAt))

	// A change made against an older revision is refused and changes nothing.
	requireProblem(t, patch(`"1"`, map[string]any{"title": "Stale"}), http.StatusConflict, "stale_revision")
	requireProblem(t, patch("yesterday", map[string]any{"title": "Stale"}), http.StatusBadRequest, "")
	require.Equal(t, "Biology 101", getCourse(t, h, b.teacher, c.ID).Title)

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
		{name: "unknown field", body: map[string]any{"status": "published"}, status: 422, fields: []string{"status"}},
		{name: "no body", body: nil, status: 422}, // the same as {}: the schema requires no field
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := patch("", tc.body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.fields != nil {
				require.Equal(t, tc.fields, res.Problem().FieldNames())
			}
		})
	}
	require.Equal(t, "Cells", getCourse(t, h, b.teacher, c.ID).Summary)

	// Creating: title required, the creator must be a person.
	requireProblem(t, h.Do(b.teacher, "POST", "/api/v1/courses", map[string]any{"summary": "x"}), http.StatusUnprocessableEntity, "")
	requireProblem(t, h.Do(b.learner, "POST", "/api/v1/courses", map[string]any{"title": "x"}), http.StatusForbidden, "")
	key := plugintest.APIKey(b.tenant, courses.PermCourseCreate)
	requireProblem(t, h.Do(key, "POST", "/api/v1/courses", map[string]any{"title": "x"}), http.StatusForbidden, "user_required")
}

func TestList(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	// Three published courses, two drafts of the teacher's, one draft of
	// the other teacher's, one unpublished.
	algebra, _ := publishedCourse(t, h, b.teacher, "Algebra basics", "One")
	geometry, _ := publishedCourse(t, h, b.otherTeacher, "Geometry", "One")
	calculus, _ := publishedCourse(t, h, b.teacher, "Calculus for engineers", "One")
	draft1 := newCourse(t, h, b.teacher, "Statistics draft")
	draft2 := newCourse(t, h, b.teacher, "Algorithms draft")
	other := newCourse(t, h, b.otherTeacher, "Secret plans")
	gone, _ := publishedCourse(t, h, b.teacher, "Old course", "One")
	do(t, h, b.teacher, "POST", "/api/v1/courses/"+gone.ID+"/unpublish", nil, http.StatusOK)
	// The draft title changes; learners see the published one.
	do(t, h, b.teacher, "PATCH", "/api/v1/courses/"+algebra.ID, map[string]any{"title": "Algebra basics (new edition)"}, http.StatusOK)

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
			do(t, h, p, "GET", "/api/v1/courses?"+q, nil, http.StatusOK).JSON(t, &page)
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

func TestInstructors(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	c := newCourse(t, h, b.teacher, "Chemistry")
	path := "/api/v1/courses/" + c.ID + "/instructors/"

	// Only members who may author can teach: not a learner, no one, nor an
	// instructor of another institution (the kernel's "not a member").
	requireProblem(t, h.Do(b.admin, "PUT", path+b.learner.UserID, nil), http.StatusUnprocessableEntity, "not_an_instructor")
	requireProblem(t, h.Do(b.admin, "PUT", path+plugintest.NewID(), nil), http.StatusUnprocessableEntity, "not_an_instructor")
	stranger := plugintest.User(plugintest.NewTenant(), "instructor")
	requireProblem(t, h.Do(b.admin, "PUT", path+stranger.UserID, nil), http.StatusUnprocessableEntity, "not_an_instructor")
	requireProblem(t, h.Do(b.teacher, "PUT", path+b.otherTeacher.UserID, nil), http.StatusForbidden, "")
	requireProblem(t, h.Do(b.admin, "PUT", "/api/v1/courses/"+plugintest.NewID()+"/instructors/"+b.otherTeacher.UserID, nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.admin, "PUT", path+"bob", nil), http.StatusNotFound, "")

	var got courses.Instructors
	do(t, h, b.admin, "PUT", path+b.otherTeacher.UserID, nil, http.StatusOK).JSON(t, &got)
	require.Equal(t, courses.Instructors{CourseID: c.ID, Instructors: []string{b.teacher.UserID, b.otherTeacher.UserID}}, got)
	do(t, h, b.admin, "PUT", path+b.otherTeacher.UserID, nil, http.StatusOK).JSON(t, &got)
	require.Len(t, got.Instructors, 2, "assigning twice changes nothing")

	// The new instructor may change the course and sees its draft.
	do(t, h, b.otherTeacher, "PATCH", "/api/v1/courses/"+c.ID, map[string]any{"summary": "Atoms"}, http.StatusOK)
	var items sdk.Page[courses.CourseItem]
	do(t, h, b.otherTeacher, "GET", "/api/v1/courses?instructor="+b.otherTeacher.UserID, nil, http.StatusOK).JSON(t, &items)
	require.Len(t, items.Items, 1)

	do(t, h, b.admin, "DELETE", path+b.teacher.UserID, nil, http.StatusNoContent)
	requireProblem(t, h.Do(b.admin, "DELETE", path+b.teacher.UserID, nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.admin, "DELETE", path+b.otherTeacher.UserID, nil), http.StatusConflict, "last_instructor")
	require.Equal(t, []string{b.otherTeacher.UserID}, getCourse(t, h, b.admin, c.ID).Instructors)
	// The removed instructor no longer sees the draft.
	requireProblem(t, h.Do(b.teacher, "GET", "/api/v1/courses/"+c.ID, nil), http.StatusNotFound, "")
	requireProblem(t, h.Do(plugintest.User(plugintest.NewTenant(), "admin"), "DELETE", path+b.otherTeacher.UserID, nil), http.StatusNotFound, "")
}
