package courses

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// publishFunc publishes an event in a transaction: req.Publish, ev.Publish
// and run.Publish all have this shape, so code shared by requests, event
// handlers and jobs takes one.
type publishFunc func(ctx context.Context, tx pgx.Tx, eventType string, data any) error

// course is a course's row, as the access checks need it.
type course struct {
	ID               string
	Title            string
	Status           string
	SelfEnrolment    *bool
	PassMark         *int
	PublishedVersion *int
	DraftRevision    int
}

// loadCourse reads a course of the transaction's institution, locking it
// for the rest of the transaction when lock is set (every change to a
// course and its content takes this lock first, so concurrent edits,
// publishes and prerequisite changes serialise). Another institution's
// course, or none, is a 404.
func loadCourse(ctx context.Context, tx pgx.Tx, courseID string, lock bool) (*course, error) {
	q := `SELECT id, title, status, self_enrolment, pass_mark, published_version, draft_revision FROM courses WHERE id = $1`
	if lock {
		q += " FOR UPDATE"
	}
	var c course
	err := tx.QueryRow(ctx, q, courseID).Scan(&c.ID, &c.Title, &c.Status, &c.SelfEnrolment, &c.PassMark, &c.PublishedVersion, &c.DraftRevision)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no course %s", courseID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading course %s: %w", courseID, err)
	}
	return &c, nil
}

// teaches reports whether the principal is one of the course's instructors.
func teaches(ctx context.Context, tx pgx.Tx, courseID string, p sdk.Principal) (bool, error) {
	if p.Kind != "user" {
		return false, nil
	}
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM course_instructors WHERE course_id = $1 AND user_id = $2)`, courseID, p.UserID).Scan(&ok)
	return ok, err
}

// canAuthor reports whether the principal may change the course: it holds
// courses.course.manage_all (tenant admins), or it holds
// courses.course.author and teaches the course.
func canAuthor(ctx context.Context, tx pgx.Tx, courseID string, p sdk.Principal) (bool, error) {
	if p.Can(PermManageAll) {
		return true, nil
	}
	if !p.Can(PermCourseAuthor) {
		return false, nil
	}
	return teaches(ctx, tx, courseID, p)
}

// authorCourse loads (and locks) a course the principal may change: 404
// when it cannot see the course at all (another institution's, or a draft
// it does not teach), 403 when it can read it but not change it.
func authorCourse(ctx context.Context, tx pgx.Tx, req *sdk.Request, courseID string) (*course, error) {
	c, err := loadCourse(ctx, tx, courseID, true)
	if err != nil {
		return nil, err
	}
	ok, err := canAuthor(ctx, tx, courseID, req.Principal)
	if err != nil {
		return nil, err
	}
	if !ok {
		if c.Status != "published" {
			return nil, sdk.Errorf(sdk.ErrNotFound, "no course %s", courseID)
		}
		return nil, sdk.Errorf(sdk.ErrForbidden, "only the course's instructors and the institution's admins may change course %s", courseID)
	}
	return c, nil
}

// canGrade reports whether the principal may grade the course's work:
// courses.submission.grade and teaching it, or courses.course.manage_all.
func canGrade(ctx context.Context, tx pgx.Tx, courseID string, p sdk.Principal) (bool, error) {
	if p.Can(PermManageAll) {
		return true, nil
	}
	if !p.Can(PermGrade) {
		return false, nil
	}
	return teaches(ctx, tx, courseID, p)
}

// memberHolds asks the kernel whether userID is a member of the
// institution holding permission (used to check the people an admin names:
// instructors to assign, learners to enrol). Someone of another
// institution, or no one, holds nothing there. It is a round trip to the
// kernel: call it before opening a transaction.
func (p *Plugin) memberHolds(ctx context.Context, tenantID, userID, permission string) (bool, error) {
	ok, err := p.env.Host.Authorize(ctx, sdk.Principal{Kind: "user", UserID: userID, TenantID: tenantID}, permission, sdk.Resource{TenantID: tenantID})
	if err != nil {
		return false, fmt.Errorf("asking the kernel about member %s: %w", userID, err)
	}
	return ok, nil
}

// text checks a required or optional text field's length in characters,
// appending a FieldError when it is out of range.
func text(bad *[]sdk.FieldError, field, value string, minLen, maxLen int) string {
	v := strings.TrimSpace(value)
	n := utf8.RuneCountInString(v)
	switch {
	case !utf8.ValidString(value):
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "must be valid UTF-8"})
	case n < minLen && minLen == 1:
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "is required"})
	case n < minLen:
		*bad = append(*bad, sdk.FieldError{Field: field, Message: fmt.Sprintf("must be at least %d characters", minLen)})
	case n > maxLen:
		*bad = append(*bad, sdk.FieldError{Field: field, Message: fmt.Sprintf("must be at most %d characters", maxLen)})
	}
	return v
}

// checkAssets validates asset references: an http(s) URL, a MIME type, a
// size; at most 50.
func checkAssets(bad *[]sdk.FieldError, field string, assets []Asset) []Asset {
	if len(assets) > 50 {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "at most 50 assets"})
		return nil
	}
	out := make([]Asset, 0, len(assets))
	for i, a := range assets {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !(strings.HasPrefix(a.URL, "https://") || strings.HasPrefix(a.URL, "http://")) || len(a.URL) > 2000 || strings.ContainsAny(a.URL, " \t\r\n"):
			*bad = append(*bad, sdk.FieldError{Field: f + ".url", Message: "must be an http(s) URL of at most 2000 characters"})
		case !strings.Contains(a.Type, "/") || len(a.Type) > 100:
			*bad = append(*bad, sdk.FieldError{Field: f + ".type", Message: "must be a MIME type such as video/mp4"})
		case a.SizeBytes < 0 || a.SizeBytes > 50<<30:
			*bad = append(*bad, sdk.FieldError{Field: f + ".size_bytes", Message: "must be between 0 and 50 GiB"})
		case utf8.RuneCountInString(a.Title) > 200:
			*bad = append(*bad, sdk.FieldError{Field: f + ".title", Message: "must be at most 200 characters"})
		}
		out = append(out, a)
	}
	return out
}
