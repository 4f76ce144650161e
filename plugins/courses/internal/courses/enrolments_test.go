package courses_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// enrolBundle is a harness whose host knows the institutions' members:
// the default plugintest host resolves a bare user ID (what memberHolds
// asks about) without roles, so it would answer that nobody is a member.
type enrolBundle struct {
	h       *plugintest.Harness
	tenant  string
	members sync.Map // tenant + "/" + user ID → true
}

func enrolSetup(t *testing.T) *enrolBundle {
	t.Helper()
	b := &enrolBundle{tenant: plugintest.NewTenant()}
	host := plugintest.HostFuncs{
		AuthorizeFunc: func(_ context.Context, p sdk.Principal, permission string, res sdk.Resource) (bool, error) {
			_, member := b.members.Load(p.TenantID + "/" + p.UserID)
			return member && permission == courses.PermEnrolSelf && res.TenantID == p.TenantID, nil
		},
		TenantConfigFunc: func(context.Context, string) (json.RawMessage, bool, error) {
			return json.RawMessage("{}"), true, nil
		},
	}
	b.h = setup(t, plugintest.WithHost(host))
	return b
}

// member is a new member of the institution with the given roles.
func (b *enrolBundle) member(tenant string, roles ...string) sdk.Principal {
	p := plugintest.User(tenant, roles...)
	b.members.Store(tenant+"/"+p.UserID, true)
	return p
}

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

// requireCode checks an error answer's status and code.
func mustCode(t *testing.T, res *plugintest.Result, status int, code string) plugintest.Problem {
	t.Helper()
	require.Equal(t, status, res.Status, res)
	p := res.Problem()
	require.Equal(t, code, p.Code, res)
	return p
}

// published lists the events of one type the plugin published for the
// institution, decoded.
func eventsOf[T any](t *testing.T, h *plugintest.Harness, tenant, eventType string) []T {
	t.Helper()
	var out []T
	for _, e := range h.Published(t, tenant) {
		if e.Type == eventType {
			var v T
			require.NoError(t, e.Decode(&v))
			out = append(out, v)
		}
	}
	return out
}

func rowCount(t *testing.T, h *plugintest.Harness, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}

func TestSelfEnrol(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{title: "Statistics"})

	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID})
	require.Equal(t, "active", e.Status)
	require.Equal(t, "self", e.Source)
	require.Equal(t, learner.UserID, e.UserID)
	require.Equal(t, "Statistics", e.CourseTitle)
	require.Equal(t, "user:"+learner.UserID, e.EnrolledBy)
	require.NotNil(t, e.ActivatedAt)
	require.Nil(t, e.WaitlistedAt)
	require.NotNil(t, e.Progress, "an active enrolment has its snapshot")
	require.Equal(t, 0, e.Progress.Percent)
	require.Equal(t, 2, e.Progress.LessonsRequired)

	created := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentCreated)
	require.Equal(t, []courses.EnrolmentChanged{{EnrolmentID: e.ID, CourseID: c.ID, UserID: learner.UserID, Status: "active", Source: "self"}}, created)

	res := h.Do(learner, "GET", "/api/v1/enrolments/"+e.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Enrolment
	res.JSON(t, &got)
	require.Equal(t, e, got)

	// Enrolling twice writes nothing and publishes nothing.
	events := len(h.Published(t, tenant))
	p := mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": strings.ToUpper(c.ID)}), http.StatusConflict, "already_enrolled")
	require.Contains(t, p.Detail, e.ID)
	require.Equal(t, 1, rowCount(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE course_id = $1`, c.ID))
	require.Len(t, h.Published(t, tenant), events)

	// After withdrawing, the learner may enrol again: a new enrolment.
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	again := enrolAs(t, h, learner, map[string]any{"course_id": c.ID})
	require.NotEqual(t, e.ID, again.ID)
}

func TestEnrolValidation(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	draft := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{draft: true})
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		fields []string
	}{
		{name: "no course", body: map[string]any{}, status: 422, fields: []string{"course_id"}},
		{name: "everything malformed", body: map[string]any{"course_id": "x", "cohort_id": "y", "user_id": "z"}, status: 422, fields: []string{"course_id", "cohort_id", "user_id"}},
		{name: "unknown field", body: map[string]any{"course_id": c.ID, "seat": 1}, status: 400},
		{name: "not JSON", body: "enrol me", status: 400},
		{name: "no such course", body: map[string]any{"course_id": plugintest.NewID()}, status: 404, code: "not-found"},
		{name: "draft course", body: map[string]any{"course_id": draft.ID}, status: 409, code: "course_not_published"},
		{name: "cohort of no course", body: map[string]any{"course_id": c.ID, "cohort_id": plugintest.NewID()}, status: 422, fields: []string{"cohort_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(learner, "POST", "/api/v1/enrolments", tc.body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.code != "" {
				require.Equal(t, tc.code, res.Problem().Code)
			}
			if tc.fields != nil {
				require.ElementsMatch(t, tc.fields, res.Problem().FieldNames())
			}
		})
	}
	require.Zero(t, rowCount(t, h, `SELECT count(*) FROM plugin_courses.enrolments`))
	require.Empty(t, h.Published(t, tenant))
}

func TestSelfEnrolmentSwitch(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	open := true
	closedByConfig := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	openByCourse := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{selfEnrolment: &open})
	h.SetTenantConfig(tenant, json.RawMessage(`{"self_enrolment": false}`))

	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": closedByConfig.ID}), http.StatusForbidden, "self_enrolment_closed")
	// The course's own setting wins over the institution's.
	enrolAs(t, h, learner, map[string]any{"course_id": openByCourse.ID})
	// An admin still enrols the learner.
	e := enrolAs(t, h, admin, map[string]any{"course_id": closedByConfig.ID, "user_id": learner.UserID})
	require.Equal(t, "admin", e.Source)
	require.Equal(t, "active", e.Status)

	closed := false
	closedByCourse := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{selfEnrolment: &closed})
	h.SetTenantConfig(tenant, json.RawMessage(`{"self_enrolment": true}`))
	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": closedByCourse.ID}), http.StatusForbidden, "self_enrolment_closed")
}

func TestAdminEnrol(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	draft := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{draft: true})
	other := plugintest.NewTenant()
	outsider := b.member(other, "learner")

	// Without courses.enrolment.manage, naming someone else is refused.
	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": admin.UserID}), http.StatusForbidden, "forbidden")
	mustCode(t, h.Do(teacher, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": learner.UserID}), http.StatusForbidden, "forbidden")
	// Someone who is not a member: no one, or another institution's.
	mustCode(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": plugintest.NewID()}), http.StatusUnprocessableEntity, "not_a_member")
	mustCode(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": outsider.UserID}), http.StatusUnprocessableEntity, "not_a_member")
	// Publication still counts.
	mustCode(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": draft.ID, "user_id": learner.UserID}), http.StatusConflict, "course_not_published")
	// An API key enrols someone, never itself.
	key := plugintest.APIKey(tenant, courses.PermEnrolSelf)
	res := h.Do(key, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID})
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	require.Equal(t, []string{"user_id"}, res.Problem().FieldNames())
	require.Zero(t, rowCount(t, h, `SELECT count(*) FROM plugin_courses.enrolments`))

	e := enrolAs(t, h, admin, map[string]any{"course_id": c.ID, "user_id": strings.ToUpper(learner.UserID)})
	require.Equal(t, learner.UserID, e.UserID)
	require.Equal(t, "admin", e.Source)
	require.Equal(t, "user:"+admin.UserID, e.EnrolledBy)
	mustCode(t, h.Do(admin, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID, "user_id": learner.UserID}), http.StatusConflict, "already_enrolled")
	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID}), http.StatusConflict, "already_enrolled")

	// The learner sees it as their own; the admin may withdraw it.
	res = h.Do(learner, "GET", "/api/v1/enrolments/"+e.ID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res = h.Do(admin, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	withdrawn := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn)
	require.Equal(t, []courses.EnrolmentChanged{{EnrolmentID: e.ID, CourseID: c.ID, UserID: learner.UserID, Status: "withdrawn", Source: "admin"}}, withdrawn)
}

func TestEnrolPrerequisites(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin")
	basics := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	intro := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	advanced := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{prerequisites: []string{basics.ID, intro.ID}})

	p := mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": advanced.ID}), http.StatusConflict, "prerequisites_incomplete")
	require.Contains(t, p.Detail, basics.ID)
	require.Contains(t, p.Detail, intro.ID)
	require.Len(t, p.Fields, 2)

	// Completing one (through the lessons) leaves the other missing.
	e := enrolAs(t, h, learner, map[string]any{"course_id": basics.ID})
	res := h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+basics.Lessons[0]+"/complete", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	p = mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": advanced.ID}), http.StatusConflict, "prerequisites_incomplete")
	require.NotContains(t, p.Detail, basics.ID)
	require.Equal(t, []string{"prerequisites.0"}, p.FieldNames())
	require.Equal(t, intro.ID, p.Fields[0].Message)

	// Merely enrolled in the other is not enough; completed is.
	e = enrolAs(t, h, learner, map[string]any{"course_id": intro.ID})
	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments", map[string]any{"course_id": advanced.ID}), http.StatusConflict, "prerequisites_incomplete")
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+intro.Lessons[0]+"/complete", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	enrolAs(t, h, learner, map[string]any{"course_id": advanced.ID})

	// An admin's enrolment is the admin's decision.
	newcomer := b.member(tenant, "learner")
	enrolAs(t, h, admin, map[string]any{"course_id": advanced.ID, "user_id": newcomer.UserID})
}

func TestWithdraw(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner, other := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{lessons: 1})
	unlimited := addCohort(t, h, teacher, c.ID, nil)
	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID, "cohort_id": unlimited})

	// Someone else's enrolment does not exist for them.
	mustCode(t, h.Do(other, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusNotFound, "not-found")
	mustCode(t, h.Do(other, "GET", "/api/v1/enrolments/"+e.ID, nil), http.StatusNotFound, "not-found")
	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments/not-an-id/withdraw", nil), http.StatusNotFound, "not-found")

	res := h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var got courses.Enrolment
	res.JSON(t, &got)
	require.Equal(t, "withdrawn", got.Status)
	require.NotNil(t, got.WithdrawnAt)
	// A cohort without a limit frees no seat anyone waits for.
	w := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn)
	require.Len(t, w, 1)
	require.False(t, w[0].FreedSeat)
	require.Equal(t, unlimited, w[0].CohortID)

	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusConflict, "already_withdrawn")
	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+c.Lessons[0]+"/complete", nil), http.StatusConflict, "enrolment_withdrawn")

	// A completed course stays completed.
	e = enrolAs(t, h, learner, map[string]any{"course_id": c.ID, "cohort_id": unlimited})
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/lessons/"+c.Lessons[0]+"/complete", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	mustCode(t, h.Do(learner, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusConflict, "enrolment_completed")
	require.Len(t, eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentWithdrawn), 1)
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner, admin, classmate := b.member(tenant, "instructor"), b.member(tenant, "learner"), b.member(tenant, "admin"), b.member(tenant, "learner")
	var ids []string
	var shared enrolCourse
	for i := range 5 {
		c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{title: fmt.Sprintf("Course %d", i)})
		ids = append(ids, enrolAs(t, h, learner, map[string]any{"course_id": c.ID}).ID)
		shared = c
	}
	enrolAs(t, h, classmate, map[string]any{"course_id": shared.ID})
	res := h.Do(learner, "POST", "/api/v1/enrolments/"+ids[1]+"/withdraw", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res = h.Do(learner, "POST", "/api/v1/enrolments/"+ids[0]+"/lessons/"+publishedLessonOf(t, h, tenant, ids[0])+"/time", map[string]any{"seconds": 90})
	require.Equal(t, http.StatusOK, res.Status, res)

	// Newest first, two at a time, with titles and progress.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		path := "/api/v1/enrolments?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := h.Do(learner, "GET", path, nil)
		require.Equal(t, http.StatusOK, res.Status, res)
		var page sdk.Page[courses.Enrolment]
		res.JSON(t, &page)
		for _, e := range page.Items {
			seen = append(seen, e.ID)
			require.Equal(t, learner.UserID, e.UserID)
			require.True(t, strings.HasPrefix(e.CourseTitle, "Course "))
			require.NotNil(t, e.Progress)
			require.Zero(t, e.WaitlistPosition, "lists stay one query")
			if e.ID == ids[0] {
				require.EqualValues(t, 90, e.Progress.TimeSpentSeconds)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen)

	list := func(p sdk.Principal, query string) []courses.Enrolment {
		t.Helper()
		res := h.Do(p, "GET", "/api/v1/enrolments"+query, nil)
		require.Equal(t, http.StatusOK, res.Status, res)
		var page sdk.Page[courses.Enrolment]
		res.JSON(t, &page)
		return page.Items
	}
	require.Len(t, list(learner, "?status=active"), 4)
	withdrawn := list(learner, "?status=withdrawn")
	require.Len(t, withdrawn, 1)
	require.Equal(t, ids[1], withdrawn[0].ID)
	require.Len(t, list(learner, "?course_id="+shared.ID), 1, "one's own in a course")
	require.Len(t, list(learner, "?user_id="+learner.UserID), 5)
	require.Empty(t, list(admin, ""), "an admin's own dashboard")
	require.Len(t, list(admin, "?user_id="+learner.UserID), 5)
	require.Len(t, list(admin, "?course_id="+shared.ID), 2, "everyone in the course")
	require.Len(t, list(admin, "?course_id="+shared.ID+"&user_id="+classmate.UserID), 1)

	mustCode(t, h.Do(learner, "GET", "/api/v1/enrolments?user_id="+classmate.UserID, nil), http.StatusForbidden, "forbidden")
	for _, q := range []string{"?status=lost", "?user_id=bob", "?course_id=1", "?cursor=nope", "?limit=0"} {
		res := h.Do(learner, "GET", "/api/v1/enrolments"+q, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status, q)
	}
}

// publishedLessonOf is the first lesson of an enrolment's course.
func publishedLessonOf(t *testing.T, h *plugintest.Harness, tenant, enrolmentID string) string {
	t.Helper()
	var id string
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `
			SELECT l.id FROM lessons l JOIN enrolments e ON e.course_id = l.course_id
			WHERE e.id = $1 ORDER BY l.position LIMIT 1`, enrolmentID).Scan(&id)
	}))
	return id
}

// Another institution's IDs are 404s, and its members are not members here.
func TestEnrolmentsOfAnotherInstitution(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, learner := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	cohort := addCohort(t, h, teacher, c.ID, 5)
	e := enrolAs(t, h, learner, map[string]any{"course_id": c.ID, "cohort_id": cohort})

	other := plugintest.NewTenant()
	theirAdmin, theirLearner := b.member(other, "admin"), b.member(other, "learner")
	theirs := publishEnrolCourse(t, h, other, b.member(other, "instructor").UserID, enrolCourseSpec{})

	mustCode(t, h.Do(theirLearner, "POST", "/api/v1/enrolments", map[string]any{"course_id": c.ID}), http.StatusNotFound, "not-found")
	mustCode(t, h.Do(theirAdmin, "POST", "/api/v1/enrolments", map[string]any{"course_id": theirs.ID, "user_id": learner.UserID}), http.StatusUnprocessableEntity, "not_a_member")
	res := h.Do(theirLearner, "POST", "/api/v1/enrolments", map[string]any{"course_id": theirs.ID, "cohort_id": cohort})
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	require.Equal(t, []string{"cohort_id"}, res.Problem().FieldNames())
	for _, path := range []string{"/api/v1/enrolments/" + e.ID, "/api/v1/enrolments/" + e.ID + "/progress", "/api/v1/cohorts/" + cohort, "/api/v1/cohorts/" + cohort + "/waitlist", "/api/v1/courses/" + c.ID + "/cohorts"} {
		mustCode(t, h.Do(theirAdmin, "GET", path, nil), http.StatusNotFound, "not-found")
	}
	mustCode(t, h.Do(theirAdmin, "POST", "/api/v1/enrolments/"+e.ID+"/withdraw", nil), http.StatusNotFound, "not-found")
	mustCode(t, h.Do(theirAdmin, "PATCH", "/api/v1/cohorts/"+cohort, map[string]any{"seat_limit": 1}), http.StatusNotFound, "not-found")
	mustCode(t, h.Do(theirAdmin, "POST", "/api/v1/courses/"+c.ID+"/cohorts", map[string]any{"name": "x", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-02-01T00:00:00Z"}), http.StatusNotFound, "not-found")
	var page sdk.Page[courses.Enrolment]
	res = h.Do(theirAdmin, "GET", "/api/v1/enrolments?user_id="+learner.UserID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &page)
	require.Empty(t, page.Items)
}

func orderEvent(tenant string, data any) plugintest.Event {
	return plugintest.Event{ID: plugintest.NewEventID(), Type: courses.EventOrderPaid, TenantID: tenant, Source: "commerce", Data: data}
}

// A paid order enrols its buyer once, however often it arrives.
func TestOrderPaidEnrolsOnce(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher, buyer := b.member(tenant, "instructor"), b.member(tenant, "learner")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	draft := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{draft: true})
	elsewhere := publishEnrolCourse(t, h, plugintest.NewTenant(), teacher.UserID, enrolCourseSpec{})
	ev := orderEvent(tenant, map[string]any{"order_id": "ord_1", "user_id": buyer.UserID, "currency": "EUR", "items": []map[string]any{
		{"course_id": c.ID, "price": 4900},
		{"sku": "a-mug"},                  // not a course
		{"course_id": plugintest.NewID()}, // no such course: skipped
		{"course_id": draft.ID},           // not published: skipped
		{"course_id": elsewhere.ID},       // another institution's: skipped
	}})
	require.NoError(t, h.Deliver(t, ev))
	require.NoError(t, h.Deliver(t, ev), "a redelivery")
	again := orderEvent(tenant, ev.Data)
	require.NoError(t, h.Deliver(t, again), "the same order in a new event")

	require.Equal(t, 1, rowCount(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE user_id = $1`, buyer.UserID))
	var page sdk.Page[courses.Enrolment]
	res := h.Do(buyer, "GET", "/api/v1/enrolments", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	e := page.Items[0]
	require.Equal(t, "order", e.Source)
	require.Equal(t, "ord_1", *e.OrderID)
	require.Equal(t, "active", e.Status)
	require.Equal(t, "event:"+ev.ID, e.EnrolledBy)
	require.NotNil(t, e.Progress)
	created := eventsOf[courses.EnrolmentChanged](t, h, tenant, courses.EventEnrolmentCreated)
	require.Equal(t, []courses.EnrolmentChanged{{EnrolmentID: e.ID, CourseID: c.ID, UserID: buyer.UserID, Status: "active", Source: "order"}}, created)

	// Enrolled already (here by themselves): the order changes nothing.
	self := b.member(tenant, "learner")
	enrolAs(t, h, self, map[string]any{"course_id": c.ID})
	require.NoError(t, h.Deliver(t, orderEvent(tenant, map[string]any{"order_id": "ord_2", "user_id": self.UserID, "items": []map[string]any{{"course_id": c.ID}}})))
	require.Equal(t, 1, rowCount(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE user_id = $1`, self.UserID))
	require.Equal(t, 0, rowCount(t, h, `SELECT count(*) FROM plugin_courses.enrolments WHERE order_id = 'ord_2'`))
}

func TestOrderPaidCohorts(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	teacher := b.member(tenant, "instructor")
	c := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	small := addCohort(t, h, teacher, c.ID, 1)
	enrolAs(t, h, b.member(tenant, "learner"), map[string]any{"course_id": c.ID, "cohort_id": small})
	buy := func(order string, item map[string]any) courses.Enrolment {
		t.Helper()
		buyer := b.member(tenant, "learner")
		require.NoError(t, h.Deliver(t, orderEvent(tenant, map[string]any{"order_id": order, "user_id": buyer.UserID, "items": []map[string]any{item}})))
		var page sdk.Page[courses.Enrolment]
		res := h.Do(buyer, "GET", "/api/v1/enrolments", nil)
		res.JSON(t, &page)
		require.Len(t, page.Items, 1, order)
		return page.Items[0]
	}

	// A full cohort waitlists the buyer.
	e := buy("ord_full", map[string]any{"course_id": c.ID, "cohort_id": small})
	require.Equal(t, "waitlisted", e.Status)
	require.Equal(t, small, *e.CohortID)
	// No cohort named: the soonest with a free seat (here none, so the
	// soonest, waitlisted)...
	e = buy("ord_any", map[string]any{"course_id": c.ID})
	require.Equal(t, small, *e.CohortID)
	require.Equal(t, "waitlisted", e.Status)
	// ... and with a cohort with free seats, that one.
	roomy := addCohort(t, h, teacher, c.ID, 10)
	e = buy("ord_roomy", map[string]any{"course_id": c.ID})
	require.Equal(t, roomy, *e.CohortID)
	require.Equal(t, "active", e.Status)
	// A cohort of another course is not joined.
	otherCourse := publishEnrolCourse(t, h, tenant, teacher.UserID, enrolCourseSpec{})
	e = buy("ord_mixed", map[string]any{"course_id": otherCourse.ID, "cohort_id": roomy})
	require.Nil(t, e.CohortID)
	require.Equal(t, "active", e.Status)
}

// Data the plugin cannot read fails the delivery (retried, then
// dead-lettered); it writes nothing.
func TestOrderPaidMalformed(t *testing.T) {
	t.Parallel()
	b := enrolSetup(t)
	h, tenant := b.h, b.tenant
	c := publishEnrolCourse(t, h, tenant, b.member(tenant, "instructor").UserID, enrolCourseSpec{})
	user := plugintest.NewID()
	for _, tc := range []struct {
		name string
		data any
	}{
		{"no user", map[string]any{"order_id": "o", "items": []map[string]any{{"course_id": c.ID}}}},
		{"user not a UUID", map[string]any{"order_id": "o", "user_id": "bob", "items": []map[string]any{{"course_id": c.ID}}}},
		{"no order", map[string]any{"user_id": user, "items": []map[string]any{{"course_id": c.ID}}}},
		{"course not a UUID", map[string]any{"order_id": "o", "user_id": user, "items": []map[string]any{{"course_id": "intro-101"}}}},
		{"cohort not a UUID", map[string]any{"order_id": "o", "user_id": user, "items": []map[string]any{{"course_id": c.ID, "cohort_id": 7}}}},
		{"items not a list", map[string]any{"order_id": "o", "user_id": user, "items": "all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, h.Deliver(t, orderEvent(tenant, tc.data)))
		})
	}
	require.Zero(t, rowCount(t, h, `SELECT count(*) FROM plugin_courses.enrolments`))
	require.Empty(t, h.Published(t, tenant))
}
