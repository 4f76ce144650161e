package courses

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

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
	if !p.IsUser() {
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
	if err := mayAuthor(ctx, tx, req, c, "change course "+courseID); err != nil {
		return nil, err
	}
	return c, nil
}

// readAsAuthor is authorCourse without the row lock, for reads: 404 when
// the caller cannot see the course, 403 when it may read but not change it.
func readAsAuthor(ctx context.Context, tx pgx.Tx, req *sdk.Request, id string) (*course, error) {
	c, err := loadCourse(ctx, tx, id, false)
	if err != nil {
		return nil, err
	}
	if err := mayAuthor(ctx, tx, req, c, "see its drafts and versions"); err != nil {
		return nil, err
	}
	return c, nil
}

// mayAuthor refuses a principal who may not change the course: a 404 for a
// course it cannot see (not published), else a 403 saying what it may not do.
func mayAuthor(ctx context.Context, tx pgx.Tx, req *sdk.Request, c *course, what string) error {
	ok, err := canAuthor(ctx, tx, c.ID, req.Principal)
	switch {
	case err != nil:
		return err
	case ok:
		return nil
	case c.Status != "published":
		return sdk.Errorf(sdk.ErrNotFound, "no course %s", c.ID)
	}
	return sdk.Errorf(sdk.ErrForbidden, "only the course's instructors and the institution's admins may %s", what)
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

// courseStaff reports whether the principal may change or grade the course.
func courseStaff(ctx context.Context, tx pgx.Tx, courseID string, p sdk.Principal) (bool, error) {
	ok, err := canAuthor(ctx, tx, courseID, p)
	if err != nil || ok {
		return ok, err
	}
	return canGrade(ctx, tx, courseID, p)
}

// enrolledIn reports whether the principal has an enrolment in the course
// that is not withdrawn (waitlisted included).
func enrolledIn(ctx context.Context, tx pgx.Tx, courseID string, p sdk.Principal) (bool, error) {
	if !p.IsUser() {
		return false, nil
	}
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM enrolments WHERE course_id = $1 AND user_id = $2 AND status <> 'withdrawn')`,
		courseID, p.UserID).Scan(&ok)
	return ok, err
}

// learnerUserID is the user ID of a principal acting as a learner: API
// keys do not learn.
func learnerUserID(p sdk.Principal, what string) (string, error) {
	if !p.IsUser() || p.UserID == "" {
		return "", sdk.Errorf(sdk.ErrForbidden, "only members %s; an API key cannot", what)
	}
	return p.UserID, nil
}

// membership asks the kernel whether userID is a member of the
// institution, before the plugin stores that person's ID. Someone of
// another institution, or no one, is not a member. It is a round trip to
// the kernel: call it before opening a transaction.
func (p *Plugin) membership(ctx context.Context, tenantID, userID string) (sdk.Membership, error) {
	m, err := p.env.Host.Membership(ctx, tenantID, userID)
	if err != nil {
		return sdk.Membership{}, fmt.Errorf("asking the kernel about member %s: %w", userID, err)
	}
	return m, nil
}

// memberMayAuthor reports whether userID is a member of the institution
// whose roles there grant courses.course.author: someone who may teach.
// The membership comes first: the kernel decides permissions for members
// only.
func (p *Plugin) memberMayAuthor(ctx context.Context, tenantID, userID string) (bool, error) {
	m, err := p.membership(ctx, tenantID, userID)
	if err != nil || !m.Member {
		return false, err
	}
	ok, err := p.env.Host.Authorize(ctx, sdk.Principal{Kind: sdk.User, UserID: userID, TenantID: tenantID, Roles: m.Roles},
		PermCourseAuthor, sdk.Resource{TenantID: tenantID})
	if err != nil {
		return false, fmt.Errorf("asking the kernel whether member %s may author courses: %w", userID, err)
	}
	return ok, nil
}
