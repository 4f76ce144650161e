package courses

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Course is a course as its authors see it (GET, POST and PATCH
// /api/v1/courses...). A learner gets the same shape filled from the latest
// published version: its title and summary, no draft_revision.
type Course struct {
	ID      string `json:"id" format:"uuid"`
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Status  string `json:"status" enum:"draft,published,unpublished"`
	// SelfEnrolment and PassMark are the course's own settings; null: the
	// institution's configuration decides.
	SelfEnrolment    *bool      `json:"self_enrolment" doc:"null: the institution's setting."`
	PassMark         *int       `json:"pass_mark" minimum:"0" maximum:"100" doc:"null: the institution's default."`
	DraftRevision    int        `json:"draft_revision,omitempty" minimum:"1" doc:"Authors only; also the ETag."`
	PublishedVersion *int       `json:"published_version" minimum:"1"`
	Instructors      []string   `json:"instructors" format:"uuid"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	PublishedAt      *time.Time `json:"published_at"`
	// Content is the latest published version, when the course is published.
	Content *Content `json:"content,omitempty"`
}

// CourseItem is one course of the catalogue list.
type CourseItem struct {
	ID               string     `json:"id" format:"uuid"`
	Title            string     `json:"title"`
	Summary          string     `json:"summary"`
	Status           string     `json:"status" enum:"draft,published,unpublished"`
	PublishedVersion *int       `json:"published_version" minimum:"1"`
	Instructors      []string   `json:"instructors" format:"uuid"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	PublishedAt      *time.Time `json:"published_at"`
}

// Instructors is the answer of PUT /api/v1/courses/{course_id}/instructors/{user_id}.
type Instructors struct {
	CourseID    string   `json:"course_id" format:"uuid"`
	Instructors []string `json:"instructors" format:"uuid"`
}

// ListCoursesQuery filters GET /api/v1/courses.
type ListCoursesQuery struct {
	Status     string `query:"status" enum:"draft,published,unpublished"`
	Instructor string `query:"instructor" format:"uuid" doc:"Courses this user teaches."`
	Q          string `query:"q" maxLength:"200" doc:"Title search: each word is a prefix (\"alg intro\" finds \"Introduction to algebra\")."`
}

// CreateCourse is the body of POST /api/v1/courses.
type CreateCourse struct {
	Title         string `json:"title" minLength:"1" maxLength:"200"`
	Summary       string `json:"summary,omitempty" maxLength:"2000"`
	SelfEnrolment *bool  `json:"self_enrolment,omitempty" doc:"null or absent: the institution's setting."`
	PassMark      *int   `json:"pass_mark,omitempty" minimum:"0" maximum:"100" doc:"null or absent: the institution's default."`
}

// PatchCourse is the body of PATCH /api/v1/courses/{course_id}: absent
// fields stay as they are; null gives a setting back to the institution.
type PatchCourse struct {
	Title         sdk.Optional[string] `json:"title" minLength:"1" maxLength:"200"`
	Summary       sdk.Optional[string] `json:"summary" maxLength:"2000"`
	SelfEnrolment sdk.Optional[bool]   `json:"self_enrolment" doc:"null: the institution's setting."`
	PassMark      sdk.Optional[int]    `json:"pass_mark" minimum:"0" maximum:"100" doc:"null: the institution's default."`
}

// maxSearchWords bounds the words of a title search that reach Postgres.
const maxSearchWords = 8

func (p *Plugin) courseRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "GET", Path: "/api/v1/courses", Permission: PermCourseRead,
			Summary: "The catalogue, newest first: published courses, and those one may change",
			Query:   ListCoursesQuery{}, Paginated: true, Response: sdk.Page[CourseItem]{}, Handler: p.listCourses,
		},
		{
			Method: "POST", Path: "/api/v1/courses", Permission: PermCourseCreate,
			Summary: "Create a course (a draft); its creator becomes its first instructor", Status: http.StatusCreated,
			Request: CreateCourse{}, Response: Course{}, Handler: p.createCourse,
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}", Permission: PermCourseRead,
			Summary:  "A course: its latest published version, and for its authors its settings and draft revision",
			Response: Course{}, Handler: p.getCourse,
		},
		{
			Method: "PATCH", Path: "/api/v1/courses/{course_id}", Permission: PermCourseAuthor,
			Summary: "Change a course's title, summary, self-enrolment or pass mark (If-Match: draft_revision)",
			Request: PatchCourse{}, Response: Course{}, Handler: p.patchCourse,
		},
		{
			Method: "PUT", Path: "/api/v1/courses/{course_id}/instructors/{user_id}", Permission: PermManageAll,
			Summary:  "Assign an instructor to a course",
			Response: Instructors{}, Handler: p.addInstructor,
		},
		{
			Method: "DELETE", Path: "/api/v1/courses/{course_id}/instructors/{user_id}", Permission: PermManageAll,
			Summary: "Remove an instructor from a course (not its last one)", Status: http.StatusNoContent,
			Handler: p.removeInstructor,
		},
	}
}

// listCourses handles GET /api/v1/courses. Holders of manage_all see every
// course; authors see published courses and those they teach; everyone
// else sees published courses, with the title and summary of their
// published version.
func (p *Plugin) listCourses(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListCoursesQuery](req)
	if err != nil {
		return nil, err
	}
	var tsq string
	if q.Q != "" {
		var msg string
		if tsq, msg = titleSearchQuery(q.Q); msg != "" {
			return nil, sdk.Invalid(sdk.FieldError{Field: "q", Message: msg})
		}
	}
	afterAt, afterID, after, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	var teacher *string // instructor=, or NULL
	if q.Instructor != "" {
		id := strings.ToLower(q.Instructor)
		teacher = &id
	}
	all := req.Principal.Can(PermManageAll)
	var author *string // the user whose taught courses are visible in any status
	if !all && req.Principal.Can(PermCourseAuthor) && req.Principal.IsUser() {
		author = &req.Principal.UserID
	}
	var items []CourseItem
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		// A row the viewer may change shows its draft title and summary;
		// any other row is published and shows its published version's.
		// The text search uses the GIN index on the draft title, then
		// checks the published title of rows the viewer only reads.
		rows, err := tx.Query(ctx, `
			SELECT c.id,
			       CASE WHEN a.can_author THEN c.title ELSE coalesce(v.content->>'title', c.title) END,
			       CASE WHEN a.can_author THEN c.summary ELSE coalesce(v.content->>'summary', c.summary) END,
			       c.status, c.published_version, c.created_at, c.updated_at, c.published_at,
			       ARRAY(SELECT ci.user_id::text FROM course_instructors ci WHERE ci.course_id = c.id ORDER BY ci.added_at, ci.user_id)
			FROM courses c
			CROSS JOIN LATERAL (SELECT $1::bool OR ($2::uuid IS NOT NULL AND EXISTS (
				SELECT 1 FROM course_instructors t WHERE t.course_id = c.id AND t.user_id = $2::uuid)) AS can_author) a
			LEFT JOIN course_versions v ON v.course_id = c.id AND v.version = c.published_version
			WHERE (a.can_author OR c.status = 'published')
			  AND ($3::text = '' OR c.status = $3::text)
			  AND ($4::uuid IS NULL OR EXISTS (SELECT 1 FROM course_instructors i WHERE i.course_id = c.id AND i.user_id = $4::uuid))
			  AND ($5::text = '' OR (to_tsvector('simple', c.title) @@ to_tsquery('simple', $5::text)
			       AND (a.can_author OR to_tsvector('simple', coalesce(v.content->>'title', '')) @@ to_tsquery('simple', $5::text))))
			  AND (NOT $6::bool OR (c.created_at, c.id) < ($7::timestamptz, $8::uuid))
			ORDER BY c.created_at DESC, c.id DESC
			LIMIT $9`,
			all, author, q.Status, teacher, tsq, after, afterAt, orNull(afterID), page.Limit+1)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CourseItem, error) {
			var c CourseItem
			err := r.Scan(&c.ID, &c.Title, &c.Summary, &c.Status, &c.PublishedVersion, &c.CreatedAt, &c.UpdatedAt, &c.PublishedAt, &c.Instructors)
			return c, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(c CourseItem) []string { return sdk.TimeKey(c.CreatedAt, c.ID) }))
}

// titleSearchQuery turns a search into a tsquery in which every word is a
// prefix ("alg intro" finds "Introduction to algebra"). It keeps only runs
// of letters and digits, so nothing the user types is read as tsquery
// syntax, and at most maxSearchWords of them; msg says why the search is
// refused. The query's schema bounds its length.
func titleSearchQuery(q string) (tsq, msg string) {
	words := strings.FieldsFunc(strings.ToLower(q), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) == 0 {
		return "", "must contain a word"
	}
	if len(words) > maxSearchWords {
		words = words[:maxSearchWords]
	}
	for i, w := range words {
		words[i] = w + ":*"
	}
	return strings.Join(words, " & "), ""
}

// createCourse handles POST /api/v1/courses.
func (p *Plugin) createCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	if !req.Principal.IsUser() {
		// The creator becomes the first instructor, and instructors are people.
		return nil, sdk.Errorf(sdk.ErrForbidden, "only a person can create a course: its creator becomes its first instructor").WithCode("user_required")
	}
	var in CreateCourse
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := trimmed(&bad, "title", in.Title, true)
	summary := trimmed(&bad, "summary", in.Summary, false)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var out *Course
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO courses (title, summary, self_enrolment, pass_mark, created_by)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			title, summary, in.SelfEnrolment, in.PassMark, req.Principal.UserID).Scan(&id)
		if err != nil {
			return fmt.Errorf("creating a course: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $2)`, id, req.Principal.UserID); err != nil {
			return fmt.Errorf("adding the course's first instructor: %w", err)
		}
		out, err = courseView(ctx, tx, id, true, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusCreated, out, out.DraftRevision)
}

// getCourse handles GET /api/v1/courses/{course_id}.
func (p *Plugin) getCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var out *Course
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := loadCourse(ctx, tx, id, false)
		if err != nil {
			return err
		}
		author, err := canAuthor(ctx, tx, id, req.Principal)
		if err != nil {
			return err
		}
		if !author && c.Status != "published" {
			return sdk.Errorf(sdk.ErrNotFound, "no course %s", id)
		}
		out, err = courseView(ctx, tx, id, author, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, out.DraftRevision)
}

// courseView reads a course: for an author its draft title and summary and
// its draft revision, for anyone else (the course must be published) those
// of its latest published version. withContent adds the latest published
// version's content, when there is one.
func courseView(ctx context.Context, tx pgx.Tx, id string, author, withContent bool) (*Course, error) {
	var c Course
	err := tx.QueryRow(ctx, `
		SELECT id, title, summary, status, self_enrolment, pass_mark, draft_revision, published_version,
		       created_at, updated_at, published_at,
		       ARRAY(SELECT user_id::text FROM course_instructors WHERE course_id = courses.id ORDER BY added_at, user_id)
		FROM courses WHERE id = $1`, id).
		Scan(&c.ID, &c.Title, &c.Summary, &c.Status, &c.SelfEnrolment, &c.PassMark, &c.DraftRevision, &c.PublishedVersion,
			&c.CreatedAt, &c.UpdatedAt, &c.PublishedAt, &c.Instructors)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no course %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading course %s: %w", id, err)
	}
	if !author || (withContent && c.Status == "published") {
		content, err := publishedContent(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if withContent {
			c.Content = content
		}
		if !author {
			c.Title, c.Summary, c.DraftRevision = content.Title, content.Summary, 0
		}
	}
	return &c, nil
}

// patchCourse handles PATCH /api/v1/courses/{course_id}.
func (p *Plugin) patchCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in PatchCourse
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if !in.Title.Set() && !in.Summary.Set() && !in.SelfEnrolment.Set() && !in.PassMark.Set() {
		return nil, sdk.Errorf(sdk.ErrInvalid, "the request changes nothing: send title, summary, self_enrolment or pass_mark")
	}
	var bad []sdk.FieldError
	title := notNullText(&bad, "title", in.Title, true)
	summary := notNullText(&bad, "summary", in.Summary, false)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var out *Course
	rev, err := editDraft(ctx, req, id, func(tx pgx.Tx, _ *course) error {
		_, err := tx.Exec(ctx, `
			UPDATE courses SET
				title = coalesce($2, title),
				summary = coalesce($3, summary),
				self_enrolment = CASE WHEN $4 THEN $5 ELSE self_enrolment END,
				pass_mark = CASE WHEN $6 THEN $7 ELSE pass_mark END
			WHERE id = $1`,
			id, title, summary, in.SelfEnrolment.Set(), in.SelfEnrolment.Ptr(), in.PassMark.Set(), in.PassMark.Ptr())
		if err != nil {
			return fmt.Errorf("changing course %s: %w", id, err)
		}
		out, err = courseView(ctx, tx, id, true, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, rev)
}

// addInstructor handles PUT /api/v1/courses/{course_id}/instructors/{user_id}:
// assigning someone who already teaches the course changes nothing. The
// person must be a member of the institution who may author courses
// (422 not_an_instructor otherwise, whoever they are elsewhere).
func (p *Plugin) addInstructor(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	userID, err := req.UUIDParam("user_id")
	if err != nil {
		return nil, err
	}
	// A round trip to the kernel: before the transaction, not inside it.
	ok, err := p.memberMayAuthor(ctx, req.Tenant(), userID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, sdk.Errorf(sdk.ErrInvalid, "user %s is not a member of this institution who may author courses", userID).WithCode("not_an_instructor")
	}
	out := Instructors{CourseID: courseID}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := loadCourse(ctx, tx, courseID, true); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			courseID, userID, req.Principal.ID())
		if err != nil {
			return fmt.Errorf("assigning instructor %s: %w", userID, err)
		}
		if tag.RowsAffected() > 0 {
			if _, err := tx.Exec(ctx, `UPDATE courses SET updated_at = now() WHERE id = $1`, courseID); err != nil {
				return err
			}
		}
		out.Instructors, err = instructorsOf(ctx, tx, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// removeInstructor handles DELETE /api/v1/courses/{course_id}/instructors/{user_id}.
// A course keeps at least one instructor: someone must be able to change it
// without an admin.
func (p *Plugin) removeInstructor(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	userID, err := req.UUIDParam("user_id")
	if err != nil {
		return nil, err
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		// The course's lock serialises two removals that would each leave one.
		if _, err := loadCourse(ctx, tx, courseID, true); err != nil {
			return err
		}
		current, err := instructorsOf(ctx, tx, courseID)
		if err != nil {
			return err
		}
		if !slices.Contains(current, userID) {
			return sdk.Errorf(sdk.ErrNotFound, "user %s does not teach course %s", userID, courseID)
		}
		if len(current) == 1 {
			return sdk.Errorf(sdk.ErrConflict, "user %s is the course's last instructor: assign another first", userID).WithCode("last_instructor")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM course_instructors WHERE course_id = $1 AND user_id = $2`, courseID, userID); err != nil {
			return fmt.Errorf("removing instructor %s: %w", userID, err)
		}
		_, err = tx.Exec(ctx, `UPDATE courses SET updated_at = now() WHERE id = $1`, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

func instructorsOf(ctx context.Context, tx pgx.Tx, courseID string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT user_id::text FROM course_instructors WHERE course_id = $1 ORDER BY added_at, user_id`, courseID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string]) // never nil: an empty list
}
