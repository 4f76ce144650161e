package messaging

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Spaces: a feed for the whole institution, one per course and one per
// cohort. The institution's space has every member of the institution;
// course and cohort spaces have the learners the courses plugin enrolled
// (enrolment.go), the people an admin added, and their moderators.
// Admins (PermSpaceManage) see and moderate every space; a space one does
// not belong to is a 404, as if it did not exist.

// Space is a space as the API shows it.
type Space struct {
	ID        string    `json:"id" format:"uuid"`
	Kind      string    `json:"kind" enum:"institution,course,cohort"`
	Title     string    `json:"title"`
	CourseID  string    `json:"course_id,omitempty" format:"uuid"`
	CohortID  string    `json:"cohort_id,omitempty" format:"uuid"`
	CreatedAt time.Time `json:"created_at"`
	// Moderator: the caller moderates the space.
	Moderator bool `json:"moderator" doc:"The caller moderates this space (pins, locks, hides, posts announcements)."`
	// Pinned are the space's pinned posts, newest pin first (GET of one space).
	Pinned []Post `json:"pinned,omitempty" doc:"The pinned posts, newest pin first (on GET /spaces/{space_id} only)."`
}

// SpaceQuery filters the spaces listed.
type SpaceQuery struct {
	Kind     string `query:"kind" enum:"institution,course,cohort"`
	CourseID string `query:"course_id" format:"uuid"`
}

// PatchSpace renames a space.
type PatchSpace struct {
	Title string `json:"title" minLength:"1" maxLength:"200"`
}

// SpaceMember is a member of a course or cohort space.
type SpaceMember struct {
	UserID    string    `json:"user_id" format:"uuid"`
	Name      string    `json:"name"`
	Enrolled  bool      `json:"enrolled" doc:"Through an enrolment of the courses plugin."`
	Manual    bool      `json:"manual" doc:"Added by an admin."`
	Moderator bool      `json:"moderator"`
	AddedAt   time.Time `json:"added_at"`
}

func (p *Plugin) spaceRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/spaces", Permission: PermSpaceRead, Summary: "The spaces one can read: the institution's, and the course and cohort spaces one belongs to (every one, for admins)",
			Query: SpaceQuery{}, Paginated: true, Response: sdk.Page[Space]{}, Handler: p.listSpaces},
		{Method: "GET", Path: "/api/v1/spaces/{space_id}", Permission: PermSpaceRead, Summary: "A space and its pinned posts",
			Response: Space{}, Handler: p.getSpace},
		{Method: "PATCH", Path: "/api/v1/spaces/{space_id}", Permission: PermSpaceManage, Summary: "Rename a space",
			Request: PatchSpace{}, Response: Space{}, Handler: p.patchSpace},
		{Method: "GET", Path: "/api/v1/spaces/{space_id}/members", Permission: PermSpaceRead, Summary: "The members of a course or cohort space (its moderators and admins)",
			Paginated: true, Response: sdk.Page[SpaceMember]{}, Handler: p.listSpaceMembers},
		{Method: "PUT", Path: "/api/v1/spaces/{space_id}/members/{user_id}", Permission: PermSpaceManage, Summary: "Add a member of the institution to a course or cohort space",
			Response: SpaceMember{}, Handler: p.addSpaceMember},
		{Method: "DELETE", Path: "/api/v1/spaces/{space_id}/members/{user_id}", Permission: PermSpaceManage, Summary: "Remove someone an admin added (an enrolment keeps its learner)",
			Status: http.StatusNoContent, Handler: p.removeSpaceMember},
		{Method: "PUT", Path: "/api/v1/spaces/{space_id}/moderators/{user_id}", Permission: PermSpaceManage, Summary: "Make a member of the institution a moderator of a space",
			Response: SpaceMember{}, Handler: p.addModerator},
		{Method: "DELETE", Path: "/api/v1/spaces/{space_id}/moderators/{user_id}", Permission: PermSpaceManage, Summary: "Stop someone moderating a space",
			Status: http.StatusNoContent, Handler: p.removeModerator},
	}
}

const spaceColumns = `s.id::text, s.kind, s.title, coalesce(s.course_id::text, ''), coalesce(s.cohort_id::text, ''), s.created_at`

func scanSpace(row pgx.Row, s *Space) error {
	return row.Scan(&s.ID, &s.Kind, &s.Title, &s.CourseID, &s.CohortID, &s.CreatedAt)
}

// ensureInstitutionSpace creates the institution's space on first use.
func (p *Plugin) ensureInstitutionSpace(ctx context.Context, tx pgx.Tx, tenantID string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id::text FROM spaces WHERE kind = 'institution'`).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO spaces (tenant_id, id, kind, title, created_at) VALUES ($1, $2, 'institution', 'Everyone', $3)
		ON CONFLICT (tenant_id) WHERE kind = 'institution' DO NOTHING`, tenantID, newID(), p.now()); err != nil {
		return "", err
	}
	err = tx.QueryRow(ctx, `SELECT id::text FROM spaces WHERE kind = 'institution'`).Scan(&id)
	return id, err
}

// ensureCourseSpace creates the space of a course, and of a cohort of it
// when cohortID is not empty, and returns their IDs ("" for no cohort).
func (p *Plugin) ensureCourseSpace(ctx context.Context, tx pgx.Tx, tenantID, courseID, cohortID string) (course, cohort string, err error) {
	if _, err = tx.Exec(ctx, `
		INSERT INTO spaces (tenant_id, id, kind, course_id, title, created_at) VALUES ($1, $2, 'course', $3, 'Course', $4)
		ON CONFLICT (tenant_id, course_id) WHERE kind = 'course' DO NOTHING`, tenantID, newID(), courseID, p.now()); err != nil {
		return "", "", err
	}
	var title string
	if err = tx.QueryRow(ctx, `SELECT id::text, title FROM spaces WHERE kind = 'course' AND course_id = $1`, courseID).Scan(&course, &title); err != nil {
		return "", "", err
	}
	if cohortID == "" {
		return course, "", nil
	}
	if _, err = tx.Exec(ctx, `
		INSERT INTO spaces (tenant_id, id, kind, course_id, cohort_id, title, created_at) VALUES ($1, $2, 'cohort', $3, $4, $5, $6)
		ON CONFLICT (tenant_id, cohort_id) WHERE kind = 'cohort' DO NOTHING`, tenantID, newID(), courseID, cohortID, cohortTitle(title), p.now()); err != nil {
		return "", "", err
	}
	err = tx.QueryRow(ctx, `SELECT id::text FROM spaces WHERE kind = 'cohort' AND cohort_id = $1`, cohortID).Scan(&cohort)
	return course, cohort, err
}

func cohortTitle(course string) string {
	t := course + " · cohort"
	if len(t) > 200 {
		t = t[:190] + "… cohort"
	}
	return t
}

// spaceAccess is what the caller may do in a space.
type spaceAccess struct {
	Space
	member    bool // reads the space, posts in it (with PermPost)
	moderator bool
}

// loadSpace reads a space the caller can see: a member, or an admin.
// Anything else is a 404.
func loadSpace(ctx context.Context, tx pgx.Tx, req *sdk.Request, spaceID string) (spaceAccess, error) {
	var a spaceAccess
	err := scanSpace(tx.QueryRow(ctx, `SELECT `+spaceColumns+` FROM spaces s WHERE s.id = $1`, spaceID), &a.Space)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, sdk.Errorf(sdk.ErrNotFound, "no space %s", spaceID)
	}
	if err != nil {
		return a, err
	}
	admin := req.Principal.Can(PermSpaceManage)
	var enrolled, manual, moderator bool
	err = tx.QueryRow(ctx, `SELECT enrolled, manual, moderator FROM space_members WHERE space_id = $1 AND user_id = $2`,
		spaceID, req.Principal.UserID).Scan(&enrolled, &manual, &moderator)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return a, err
	}
	a.member = a.Kind == "institution" || enrolled || manual || moderator
	a.moderator = admin || (moderator && req.Principal.Can(PermModerate))
	if !a.member && !admin {
		return a, sdk.Errorf(sdk.ErrNotFound, "no space %s", spaceID)
	}
	a.member = a.member || admin
	a.Space.Moderator = a.moderator
	return a, nil
}

// spaceMemberIDs lists who belongs to a space: every active member of the
// institution for its space, else the rows of space_members.
func spaceMemberIDs(ctx context.Context, tx pgx.Tx, sp Space) ([]string, error) {
	if sp.Kind == "institution" {
		return activeMembers(ctx, tx)
	}
	rows, err := tx.Query(ctx, `SELECT user_id::text FROM space_members WHERE space_id = $1 ORDER BY user_id`, sp.ID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// isSpaceMember reports whether a person belongs to a space.
func isSpaceMember(ctx context.Context, tx pgx.Tx, sp Space, userID string) (bool, error) {
	var ok bool
	q := `SELECT EXISTS (SELECT 1 FROM space_members WHERE space_id = $1 AND user_id = $2)`
	if sp.Kind == "institution" {
		q = `SELECT EXISTS (SELECT 1 FROM members WHERE user_id = $2 AND active AND $1::uuid IS NOT NULL)`
	}
	err := tx.QueryRow(ctx, q, sp.ID, userID).Scan(&ok)
	return ok, err
}

func (p *Plugin) listSpaces(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[SpaceQuery](req)
	if err != nil {
		return nil, err
	}
	pg, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, id, after, err := pg.AfterTime()
	if err != nil {
		return nil, err
	}
	var items []Space
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := p.ensureInstitutionSpace(ctx, tx, req.Tenant()); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT `+spaceColumns+`, coalesce(m.moderator, false)
			FROM spaces s LEFT JOIN space_members m ON m.space_id = s.id AND m.user_id = $1
			WHERE ($2 OR s.kind = 'institution' OR m.user_id IS NOT NULL)
			  AND ($3 = '' OR s.kind = $3) AND ($4 = '' OR s.course_id::text = $4)
			  AND (NOT $5 OR (s.created_at, s.id) > ($6, $7::uuid))
			ORDER BY s.created_at, s.id LIMIT $8`,
			req.Principal.UserID, req.Principal.Can(PermSpaceManage), q.Kind, q.CourseID, after, at, nilUUID(id), pg.Limit+1)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Space, error) {
			var s Space
			err := r.Scan(&s.ID, &s.Kind, &s.Title, &s.CourseID, &s.CohortID, &s.CreatedAt, &s.Moderator)
			s.Moderator = req.Principal.Can(PermSpaceManage) || (s.Moderator && req.Principal.Can(PermModerate))
			return s, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, pg.Limit, func(s Space) []string { return sdk.TimeKey(s.CreatedAt, s.ID) }))
}

func (p *Plugin) getSpace(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	var a spaceAccess
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if a, err = loadSpace(ctx, tx, req, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, postSelect(`p.space_id = $2 AND p.pinned_at IS NOT NULL AND p.deleted_at IS NULL AND (p.hidden_at IS NULL OR $3)`)+
			` ORDER BY p.pinned_at DESC, p.id DESC LIMIT 20`, req.Principal.UserID, id, a.moderator)
		if err != nil {
			return err
		}
		a.Pinned, err = collectPosts(rows)
		if err != nil {
			return err
		}
		return p.fillPosts(ctx, tx, req, a.Pinned)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, a.Space)
}

func (p *Plugin) patchSpace(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	var in PatchSpace
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	title := strings.TrimSpace(in.Title)
	if title == "" {
		return nil, sdk.Invalid(sdk.FieldError{Field: "title", Message: "must not be blank"})
	}
	var a spaceAccess
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE spaces SET title = $2 WHERE id = $1`, id, title); err != nil {
			return err
		}
		a, err = loadSpace(ctx, tx, req, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, a.Space)
}

func (p *Plugin) listSpaceMembers(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	pg, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, uid, after, err := pg.AfterTime()
	if err != nil {
		return nil, err
	}
	var items []SpaceMember
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		a, err := loadSpace(ctx, tx, req, id)
		if err != nil {
			return err
		}
		if !a.moderator {
			return sdk.Errorf(sdk.ErrForbidden, "only the space's moderators and admins list its members").WithCode("not_a_moderator")
		}
		rows, err := tx.Query(ctx, `
			SELECT m.user_id::text, coalesce(p.display_name, ''), m.enrolled, m.manual, m.moderator, m.added_at
			FROM space_members m LEFT JOIN people p ON p.user_id = m.user_id
			WHERE m.space_id = $1 AND (NOT $2 OR (m.added_at, m.user_id) > ($3, $4::uuid))
			ORDER BY m.added_at, m.user_id LIMIT $5`, id, after, at, nilUUID(uid), pg.Limit+1)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SpaceMember, error) {
			var m SpaceMember
			err := r.Scan(&m.UserID, &m.Name, &m.Enrolled, &m.Manual, &m.Moderator, &m.AddedAt)
			return m, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, pg.Limit, func(m SpaceMember) []string { return sdk.TimeKey(m.AddedAt, m.UserID) }))
}

// setSpaceRole adds someone to a course or cohort space by hand (manual)
// or as a moderator, after asking the kernel they are a member.
func (p *Plugin) setSpaceRole(ctx context.Context, req *sdk.Request, column string, on bool) (*SpaceMember, error) {
	id, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	userID, ok := sdk.NormalizeUUID(req.Param("user_id"))
	if on {
		if !ok {
			return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a member of this institution"}).WithCode("not_a_member")
		}
		m, err := req.Host().Membership(ctx, req.Tenant(), userID)
		if err != nil {
			return nil, err
		}
		if !m.Member {
			return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a member of this institution"}).WithCode("not_a_member")
		}
	} else if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no such member of the space")
	}
	var out SpaceMember
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		a, err := loadSpace(ctx, tx, req, id)
		if err != nil {
			return err
		}
		if a.Kind == "institution" && column == "manual" {
			return sdk.Errorf(sdk.ErrConflict, "every member of the institution belongs to its space").WithCode("institution_space")
		}
		if on {
			// column is one of two constants, never user input.
			_, err = tx.Exec(ctx, `
				INSERT INTO space_members (tenant_id, space_id, user_id, `+column+`, added_by, added_at) VALUES ($1, $2, $3, true, $4, $5)
				ON CONFLICT (tenant_id, space_id, user_id) DO UPDATE SET `+column+` = true`,
				req.Tenant(), id, userID, req.Principal.UserID, p.now())
		} else {
			var tag pgconnTag
			tag, err = tx.Exec(ctx, `UPDATE space_members SET `+column+` = false WHERE space_id = $1 AND user_id = $2 AND `+column, id, userID)
			if err == nil && tag.RowsAffected() == 0 {
				return sdk.Errorf(sdk.ErrNotFound, "no such %s of the space", map[string]string{"manual": "member", "moderator": "moderator"}[column])
			}
			if err == nil {
				_, err = tx.Exec(ctx, `DELETE FROM space_members WHERE space_id = $1 AND user_id = $2 AND NOT (enrolled OR manual OR moderator)`, id, userID)
			}
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `
			SELECT m.user_id::text, coalesce(p.display_name, ''), m.enrolled, m.manual, m.moderator, m.added_at
			FROM space_members m LEFT JOIN people p ON p.user_id = m.user_id WHERE m.space_id = $1 AND m.user_id = $2`, id, userID).
			Scan(&out.UserID, &out.Name, &out.Enrolled, &out.Manual, &out.Moderator, &out.AddedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
		if err != nil {
			return err
		}
		action := map[bool]string{true: "added", false: "removed"}[on]
		return p.audit(ctx, req, "messaging.space."+map[string]string{"manual": "member", "moderator": "moderator"}[column]+"_"+action,
			"space", id, map[string]any{"user_id": userID})
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (p *Plugin) addSpaceMember(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	m, err := p.setSpaceRole(ctx, req, "manual", true)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, m)
}

func (p *Plugin) removeSpaceMember(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	if _, err := p.setSpaceRole(ctx, req, "manual", false); err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

func (p *Plugin) addModerator(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	m, err := p.setSpaceRole(ctx, req, "moderator", true)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, m)
}

func (p *Plugin) removeModerator(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	if _, err := p.setSpaceRole(ctx, req, "moderator", false); err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

// audit writes an audit entry of the request's institution as the last
// step of the transaction that makes the change: a failure to record it
// rolls the change back, so no moderation happens unrecorded. (A change
// whose commit then fails leaves an entry for what did not happen, the
// lesser harm.)
func (p *Plugin) audit(ctx context.Context, req *sdk.Request, action, targetType, targetID string, details map[string]any) error {
	return req.Host().Audit(ctx, sdk.AuditEntry{
		TenantID: req.Tenant(), Actor: req.Principal, Action: action,
		TargetType: targetType, TargetID: targetID, Details: details, RequestID: req.RequestID,
	})
}
