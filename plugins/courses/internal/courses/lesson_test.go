package courses_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestModulesAndLessons(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	h := b.h
	c := newCourse(t, h, b.teacher, "Physics")
	base := "/api/v1/courses/" + c.ID
	m1 := newModule(t, h, b.teacher, c.ID, "Mechanics")
	m2 := newModule(t, h, b.teacher, c.ID, "Waves")
	require.Equal(t, []int{0, 1}, []int{m1.Position, m2.Position})
	var m0 courses.Module
	do(t, h, b.teacher, "POST", base+"/modules", map[string]any{"title": "Units", "position": 0}, http.StatusCreated).JSON(t, &m0)
	require.Equal(t, 0, m0.Position)
	modules := func() []string {
		var d courses.Draft
		do(t, h, b.teacher, "GET", base+"/draft", nil, http.StatusOK).JSON(t, &d)
		out := []string{}
		for i, m := range d.Content.Modules {
			require.Equal(t, i, m.Position, "positions stay 0..n-1")
			out = append(out, m.Title)
		}
		return out
	}
	require.Equal(t, []string{"Units", "Mechanics", "Waves"}, modules())
	requireProblem(t, h.Do(b.teacher, "POST", base+"/modules", map[string]any{"title": "Far", "position": 4}), http.StatusUnprocessableEntity, "")
	requireProblem(t, h.Do(b.teacher, "POST", base+"/modules", map[string]any{"title": ""}), http.StatusUnprocessableEntity, "")

	var moved courses.Module
	do(t, h, b.teacher, "PATCH", base+"/modules/"+m0.ID, map[string]any{"position": 2, "title": "Units and measures"}, http.StatusOK).JSON(t, &moved)
	require.Equal(t, 2, moved.Position)
	require.Equal(t, []string{"Mechanics", "Waves", "Units and measures"}, modules())
	requireProblem(t, h.Do(b.teacher, "PATCH", base+"/modules/"+m0.ID, map[string]any{"position": 3}), http.StatusUnprocessableEntity, "")
	requireProblem(t, h.Do(b.teacher, "PATCH", base+"/modules/"+m0.ID, map[string]any{}), http.StatusUnprocessableEntity, "")
	requireProblem(t, h.Do(b.teacher, "PATCH", base+"/modules/"+plugintest.NewID(), map[string]any{"title": "x"}), http.StatusNotFound, "")

	// Lessons: appended, or inserted at a position.
	a := newLesson(t, h, b.teacher, c.ID, m1.ID, "Forces")
	bb := newLesson(t, h, b.teacher, c.ID, m1.ID, "Energy")
	var first courses.Lesson
	do(t, h, b.teacher, "POST", base+"/modules/"+m1.ID+"/lessons", map[string]any{
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
		do(t, h, b.teacher, "GET", base+"/draft", nil, http.StatusOK).JSON(t, &d)
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
	do(t, h, b.teacher, "PATCH", base+"/lessons/"+a.ID, map[string]any{"module_id": strings.ToUpper(m2.ID)}, http.StatusOK).JSON(t, &l)
	require.Equal(t, m2.ID, l.ModuleID)
	require.Equal(t, 0, l.Position)
	require.Equal(t, []string{"Motion", "Energy"}, lessons(m1.ID))
	require.Equal(t, []string{"Forces"}, lessons(m2.ID))
	do(t, h, b.teacher, "PATCH", base+"/lessons/"+bb.ID, map[string]any{"module_id": m2.ID, "position": 0}, http.StatusOK)
	require.Equal(t, []string{"Energy", "Forces"}, lessons(m2.ID))
	do(t, h, b.teacher, "PATCH", base+"/lessons/"+bb.ID, map[string]any{"position": 1}, http.StatusOK)
	require.Equal(t, []string{"Forces", "Energy"}, lessons(m2.ID))
	require.Equal(t, []string{"Motion"}, lessons(m1.ID))

	other := newCourse(t, h, b.teacher, "Other")
	otherModule := newModule(t, h, b.teacher, other.ID, "Elsewhere")
	res := h.Do(b.teacher, "PATCH", base+"/lessons/"+a.ID, map[string]any{"module_id": otherModule.ID})
	requireProblem(t, res, http.StatusUnprocessableEntity, "")
	require.Equal(t, []string{"module_id"}, res.Problem().FieldNames())
	requireProblem(t, h.Do(b.teacher, "POST", "/api/v1/courses/"+other.ID+"/modules/"+m1.ID+"/lessons", map[string]any{"title": "x"}), http.StatusNotFound, "")
	requireProblem(t, h.Do(b.teacher, "GET", "/api/v1/courses/"+other.ID+"/lessons/"+a.ID, nil), http.StatusNotFound, "")

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
		{"asset url", map[string]any{"title": "x", "assets": []map[string]any{{"url": "ftp://x", "type": "video/mp4", "size_bytes": 1}}}, []string{"assets.0.url"}},
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
	do(t, h, b.teacher, "POST", base+"/modules/"+m1.ID+"/lessons",
		map[string]any{"title": "Scripts", "body": "Write `<script>` tags like this: <script>", "body_format": "plain"}, http.StatusCreated).JSON(t, &code)
	// ... but switching such a body to html is checked.
	requireProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+code.ID, map[string]any{"body_format": "html"}), http.StatusUnprocessableEntity, "")
	requireProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+first.ID, map[string]any{"body": "<b onclick = 'x()'>b</b>"}), http.StatusUnprocessableEntity, "")
	requireProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+first.ID, map[string]any{"required": nil}), http.StatusUnprocessableEntity, "")
	requireProblem(t, h.Do(b.teacher, "PATCH", base+"/lessons/"+first.ID, map[string]any{}), http.StatusUnprocessableEntity, "")

	// Deleting a lesson renumbers its module; deleting a module takes its lessons.
	do(t, h, b.teacher, "DELETE", base+"/lessons/"+code.ID, nil, http.StatusNoContent)
	requireProblem(t, h.Do(b.teacher, "DELETE", base+"/lessons/"+code.ID, nil), http.StatusNotFound, "")
	require.Equal(t, []string{"Motion"}, lessons(m1.ID))
	do(t, h, b.teacher, "DELETE", base+"/modules/"+m2.ID, nil, http.StatusNoContent)
	require.Equal(t, []string{"Mechanics", "Units and measures"}, modules())
	requireProblem(t, h.Do(b.teacher, "GET", base+"/lessons/"+a.ID, nil), http.StatusNotFound, "")
	require.Zero(t, count(t, h, `SELECT count(*) FROM plugin_courses.lessons WHERE module_id = $1`, m2.ID))
	requireProblem(t, h.Do(b.teacher, "DELETE", base+"/modules/"+m2.ID, nil), http.StatusNotFound, "")

	// Every change bumped the draft revision; If-Match guards lessons too.
	rev := getCourse(t, h, b.teacher, c.ID).DraftRevision
	require.Greater(t, rev, 10)
	res = h.DoRequest(plugintest.Request{Principal: b.teacher, Method: "PATCH", Path: base + "/lessons/" + first.ID,
		Body: map[string]any{"title": "Motion!"}, Header: http.Header{"If-Match": {fmt.Sprintf(`"%d"`, rev-1)}}})
	requireProblem(t, res, http.StatusConflict, "stale_revision")
	res = h.DoRequest(plugintest.Request{Principal: b.teacher, Method: "PATCH", Path: base + "/lessons/" + first.ID,
		Body: map[string]any{"title": "Motion!"}, Header: http.Header{"If-Match": {fmt.Sprintf(`"%d"`, rev)}}})
	require.Equal(t, http.StatusOK, res.Status, res)
	require.Equal(t, fmt.Sprintf(`"%d"`, rev+1), etag(res))

	// Learners cannot author.
	requireProblem(t, h.Do(b.learner, "POST", base+"/modules", map[string]any{"title": "x"}), http.StatusForbidden, "")
	requireProblem(t, h.Do(b.otherTeacher, "POST", base+"/modules", map[string]any{"title": "x"}), http.StatusNotFound, "")
}
