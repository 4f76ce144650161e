package courses_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// completedEnrolment writes, straight to the database, a published
// one-lesson course and an enrolment that completed it: what the
// issue-certificate job starts from.
func completedEnrolment(t *testing.T, h *plugintest.Harness, tenant, userID string) courses.CourseCompleted {
	t.Helper()
	in := courses.CourseCompleted{UserID: userID, Version: 1, CompletedAt: time.Now().UTC().Truncate(time.Microsecond)}
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		ctx := t.Context()
		author := plugintest.NewID()
		if err := tx.QueryRow(ctx, `INSERT INTO courses (title, created_by, status, published_version, published_at)
			VALUES ('Statistics <& Society>', $1, 'published', 1, now()) RETURNING id`, author).Scan(&in.CourseID); err != nil {
			return err
		}
		var moduleID, lessonID string
		if err := tx.QueryRow(ctx, `INSERT INTO modules (course_id, title, position) VALUES ($1, 'One', 0) RETURNING id`, in.CourseID).Scan(&moduleID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO lessons (course_id, module_id, title, position) VALUES ($1, $2, 'Only', 0) RETURNING id`, in.CourseID, moduleID).Scan(&lessonID); err != nil {
			return err
		}
		content, _ := json.Marshal(courses.Content{CourseID: in.CourseID, Version: 1, Title: "Statistics <& Society>", Modules: []courses.ContentModule{
			{ID: moduleID, Title: "One", Lessons: []courses.ContentLesson{{ID: lessonID, Title: "Only", Required: true}}},
		}})
		if _, err := tx.Exec(ctx, `INSERT INTO course_versions (course_id, version, content, published_by) VALUES ($1, 1, $2, $3)`, in.CourseID, content, author); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO enrolments (course_id, user_id, status, source, enrolled_by, activated_at, completed_at)
			VALUES ($1, $2, 'completed', 'self', 'test', now(), $3) RETURNING id`, in.CourseID, userID, in.CompletedAt).Scan(&in.EnrolmentID)
	}))
	return in
}

func issue(t *testing.T, h *plugintest.Harness, tenant string, in courses.CourseCompleted) (string, error) {
	t.Helper()
	return h.RunJob(t, courses.JobIssueCertificate, plugintest.JobRun{
		TenantID: tenant, Event: &plugintest.Event{Type: courses.EventCourseCompleted, TenantID: tenant, Source: courses.Name, Data: in},
	})
}

func TestCertificateIssuedOnceAndVerifiedPublicly(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	h.SetTenantConfig(tenant, json.RawMessage(`{"certificate_issuer": "Demo University"}`))
	learner := plugintest.User(tenant, "learner")
	in := completedEnrolment(t, h, tenant, learner.UserID)

	out, err := issue(t, h, tenant, in)
	require.NoError(t, err)
	require.Contains(t, out, "issued certificate")
	out, err = issue(t, h, tenant, in) // a redelivered event, a retried attempt
	require.NoError(t, err)
	require.Contains(t, out, "was issued before")

	res := h.Do(learner, "GET", "/api/v1/certificates", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var list struct{ Items []courses.Certificate }
	res.JSON(t, &list)
	require.Len(t, list.Items, 1, "one certificate however often the job runs")
	c := list.Items[0]
	require.Equal(t, in.EnrolmentID, c.EnrolmentID)
	require.Equal(t, "Demo University", c.Content.Issuer)
	require.Equal(t, "Statistics <& Society>", c.Content.CourseTitle)
	require.Contains(t, c.Canonical, `"course_title":"Statistics <& Society>"`, "canonical JSON does not escape HTML")
	sum := sha256.Sum256([]byte(c.Canonical))
	require.Equal(t, hex.EncodeToString(sum[:]), c.SHA256, "the hash covers the canonical text exactly")
	require.True(t, strings.HasPrefix(c.Canonical, `{"certificate_id":`), "keys in sorted order")

	issued := h.Published(t, tenant)
	require.Len(t, issued, 1)
	require.Equal(t, courses.EventCertificateIssued, issued[0].Type)
	var ev courses.CertificateIssued
	require.NoError(t, issued[0].Decode(&ev))
	require.Equal(t, courses.CertificateIssued{CertificateID: c.ID, CourseID: in.CourseID, UserID: learner.UserID, SHA256: c.SHA256}, ev)

	// Anyone, without credentials, can check the ID and hash…
	res = h.Do(plugintest.Anonymous(), "GET", c.VerifyPath, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	require.JSONEq(t, `{"valid": true, "certificate_id": "`+c.ID+`"}`, string(res.Body), "reveals nothing else")
	// …and a forged hash, an unknown ID and a malformed hash learn nothing.
	forged := "0" + c.SHA256[1:] // one hex digit changed
	if c.SHA256[0] == '0' {
		forged = "1" + c.SHA256[1:]
	}
	for path, want := range map[string]int{
		"/api/v1/certificates/" + c.ID + "/verify?sha256=" + forged:                    http.StatusNotFound,
		"/api/v1/certificates/" + plugintest.NewID() + "/verify?sha256=" + c.SHA256:    http.StatusNotFound,
		"/api/v1/certificates/" + c.ID + "/verify?sha256=abc":                          http.StatusUnprocessableEntity,
		"/api/v1/certificates/" + c.ID + "/verify":                                     http.StatusUnprocessableEntity,
		"/api/v1/certificates/not-an-id/verify?sha256=" + c.SHA256:                     http.StatusNotFound,
		"/api/v1/certificates/" + c.ID + "/verify?sha256=" + strings.ToUpper(c.SHA256): http.StatusOK,
	} {
		res := h.Do(plugintest.Anonymous(), "GET", path, nil)
		require.Equal(t, want, res.Status, "%s: %s", path, res)
		if want == http.StatusNotFound {
			require.NotContains(t, string(res.Body), c.SHA256)
			require.NotContains(t, string(res.Body), learner.UserID)
		}
	}

	// The holder reads it; another learner and another institution do not.
	require.Equal(t, http.StatusOK, h.Do(learner, "GET", "/api/v1/certificates/"+c.ID, nil).Status)
	require.Equal(t, http.StatusNotFound, h.Do(plugintest.User(tenant, "learner"), "GET", "/api/v1/certificates/"+c.ID, nil).Status)
	require.Equal(t, http.StatusNotFound, h.Do(plugintest.User(plugintest.NewTenant(), "admin"), "GET", "/api/v1/certificates/"+c.ID, nil).Status)
	admin := plugintest.User(tenant, "admin")
	require.Equal(t, http.StatusOK, h.Do(admin, "GET", "/api/v1/certificates/"+c.ID, nil).Status)
	res = h.Do(admin, "GET", "/api/v1/certificates?user_id="+learner.UserID, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &list)
	require.Len(t, list.Items, 1)
	require.Equal(t, http.StatusForbidden, h.Do(plugintest.User(tenant, "learner"), "GET", "/api/v1/certificates?user_id="+learner.UserID, nil).Status)
}

func TestCertificateNotIssuedForUnfinishedEnrolment(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	in := completedEnrolment(t, h, tenant, plugintest.NewID())
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `UPDATE enrolments SET status = 'withdrawn', withdrawn_at = now() WHERE id = $1`, in.EnrolmentID)
		return err
	}))
	out, err := issue(t, h, tenant, in)
	require.NoError(t, err, "nothing to retry")
	require.Contains(t, out, "not completed")
	require.Empty(t, h.Published(t, tenant))

	// Malformed data is an error: retried, then dead-lettered where an
	// operator sees it.
	_, err = issue(t, h, tenant, courses.CourseCompleted{EnrolmentID: "x", CourseID: in.CourseID, UserID: in.UserID, Version: 1})
	require.Error(t, err)

	// Another institution's event cannot issue this institution's certificate.
	other := plugintest.NewTenant()
	out, err = issue(t, h, other, in)
	require.NoError(t, err)
	require.Contains(t, out, "no longer exists")
}

func TestCertificateListPages(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	learner := plugintest.User(tenant, "learner")
	for range 3 {
		_, err := issue(t, h, tenant, completedEnrolment(t, h, tenant, learner.UserID))
		require.NoError(t, err)
	}
	seen := map[string]bool{}
	path := "/api/v1/certificates?limit=2"
	for pages := 0; path != ""; pages++ {
		require.Less(t, pages, 3)
		res := h.Do(learner, "GET", path, nil)
		require.Equal(t, http.StatusOK, res.Status, res)
		var page struct {
			Items      []courses.Certificate
			NextCursor string `json:"next_cursor"`
		}
		res.JSON(t, &page)
		for _, c := range page.Items {
			require.False(t, seen[c.ID])
			seen[c.ID] = true
		}
		path = ""
		if page.NextCursor != "" {
			path = "/api/v1/certificates?limit=2&cursor=" + page.NextCursor
		}
	}
	require.Len(t, seen, 3)
	require.Equal(t, http.StatusUnprocessableEntity, h.Do(learner, "GET", "/api/v1/certificates?cursor=zzz", nil).Status)
}
