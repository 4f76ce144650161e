package courses

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Course is a course as its authors see it (GET, POST and PATCH
// /api/v1/courses...). A learner gets the same shape filled from the latest
// published version: its title and summary, no draft_revision.
type Course struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Status  string `json:"status"` // draft, published, unpublished
	// SelfEnrolment and PassMark are the course's own settings; null: the
	// institution's configuration decides.
	SelfEnrolment    *bool      `json:"self_enrolment"`
	PassMark         *int       `json:"pass_mark"`
	DraftRevision    int        `json:"draft_revision,omitempty"` // authors only
	PublishedVersion *int       `json:"published_version"`
	Instructors      []string   `json:"instructors"` // user IDs
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	PublishedAt      *time.Time `json:"published_at"`
	// Content is the latest published version, when the course is published.
	Content *Content `json:"content,omitempty"`
}

// CourseItem is one course of the catalogue list.
type CourseItem struct {
	ID               string     `json:"id"`
	Title            string     `json:"title"`
	Summary          string     `json:"summary"`
	Status           string     `json:"status"`
	PublishedVersion *int       `json:"published_version"`
	Instructors      []string   `json:"instructors"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	PublishedAt      *time.Time `json:"published_at"`
}

// Instructors is the answer of PUT /api/v1/courses/{course_id}/instructors/{user_id}.
type Instructors struct {
	CourseID    string   `json:"course_id"`
	Instructors []string `json:"instructors"`
}

// Module is a module of a course's draft.
type Module struct {
	ID        string    `json:"id"`
	CourseID  string    `json:"course_id"`
	Title     string    `json:"title"`
	Position  int       `json:"position"`
	CreatedAt time.Time `json:"created_at"`
}

// Lesson is a lesson: for authors the draft lesson, for learners the lesson
// of the latest published version (Version set, no timestamps).
type Lesson struct {
	ID               string     `json:"id"`
	CourseID         string     `json:"course_id"`
	ModuleID         string     `json:"module_id"`
	Title            string     `json:"title"`
	Body             string     `json:"body"`
	BodyFormat       string     `json:"body_format"`
	Assets           []Asset    `json:"assets"`
	EstimatedMinutes int        `json:"estimated_minutes"`
	Required         bool       `json:"required"`
	Position         int        `json:"position"`
	Prerequisites    []string   `json:"prerequisites"`
	Version          int        `json:"version,omitempty"` // learners: the published version it comes from
	CreatedAt        *time.Time `json:"created_at,omitempty"`
	UpdatedAt        *time.Time `json:"updated_at,omitempty"`
}

// Draft is the preview of a course's draft: what learners would see if it
// were published now.
type Draft struct {
	Content          *Content `json:"content"`
	DraftRevision    int      `json:"draft_revision"`
	PublishedVersion *int     `json:"published_version"`
	// DiffersFromPublished: publishing now would change what learners see
	// (always true for a course never published).
	DiffersFromPublished bool `json:"differs_from_published"`
}

// CourseVersion is one published version of a course; Content only when
// one version is asked for.
type CourseVersion struct {
	CourseID    string    `json:"course_id"`
	Version     int       `json:"version"`
	Note        string    `json:"note"`
	PublishedBy string    `json:"published_by"`
	PublishedAt time.Time `json:"published_at"`
	Content     *Content  `json:"content,omitempty"`
}

// catalogueUUID is a UUID in its canonical form (any case).
var catalogueUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var courseStatuses = []string{"draft", "published", "unpublished"}

var bodyFormats = []string{"markdown", "html", "plain"}

// Limits of the authoring tables' CHECK constraints, checked first so that
// a client gets a 422 naming the field rather than a database error.
const (
	maxTitle        = 200
	maxSummary      = 2000
	maxBody         = 200000
	maxMinutes      = 10000
	maxNote         = 500
	maxSearchLength = 200
	maxSearchWords  = 8
)

func (p *Plugin) catalogueRoutes() []sdk.Route {
	routes := []sdk.Route{
		{
			Method: "GET", Path: "/api/v1/courses", Permission: PermCourseRead,
			Summary: "The catalogue, newest first: published courses, and those one may change",
			Query:   []string{"status", "instructor", "q", "limit", "cursor"}, Response: catalogueCourseListSchema,
			Handler: sdk.HandlerFunc(p.listCourses),
		},
		{
			Method: "POST", Path: "/api/v1/courses", Permission: PermCourseCreate,
			Summary: "Create a course (a draft); its creator becomes its first instructor", Status: http.StatusCreated,
			Request: catalogueCreateCourseSchema, Response: catalogueCourseSchema, Handler: sdk.HandlerFunc(p.createCourse),
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}", Permission: PermCourseRead,
			Summary:  "A course: its latest published version, and for its authors its settings and draft revision",
			Response: catalogueCourseSchema, Handler: sdk.HandlerFunc(p.getCourse),
		},
		{
			Method: "PATCH", Path: "/api/v1/courses/{course_id}", Permission: PermCourseAuthor,
			Summary: "Change a course's title, summary, self-enrolment or pass mark (If-Match: draft_revision)",
			Request: cataloguePatchCourseSchema, Response: catalogueCourseSchema, Handler: sdk.HandlerFunc(p.patchCourse),
		},
		{
			Method: "PUT", Path: "/api/v1/courses/{course_id}/instructors/{user_id}", Permission: PermManageAll,
			Summary:  "Assign an instructor to a course",
			Response: catalogueInstructorsSchema, Handler: sdk.HandlerFunc(p.addInstructor),
		},
		{
			Method: "DELETE", Path: "/api/v1/courses/{course_id}/instructors/{user_id}", Permission: PermManageAll,
			Summary: "Remove an instructor from a course (not its last one)", Status: http.StatusNoContent,
			Handler: sdk.HandlerFunc(p.removeInstructor),
		},
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/modules", Permission: PermCourseAuthor,
			Summary: "Add a module to a course's draft (at the end unless a position is given)", Status: http.StatusCreated,
			Request: catalogueCreateModuleSchema, Response: catalogueModuleSchema, Handler: sdk.HandlerFunc(p.createModule),
		},
		{
			Method: "PATCH", Path: "/api/v1/courses/{course_id}/modules/{module_id}", Permission: PermCourseAuthor,
			Summary: "Rename or move a module",
			Request: cataloguePatchModuleSchema, Response: catalogueModuleSchema, Handler: sdk.HandlerFunc(p.patchModule),
		},
		{
			Method: "DELETE", Path: "/api/v1/courses/{course_id}/modules/{module_id}", Permission: PermCourseAuthor,
			Summary: "Delete a module and its lessons from the draft", Status: http.StatusNoContent,
			Handler: sdk.HandlerFunc(p.deleteModule),
		},
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/modules/{module_id}/lessons", Permission: PermCourseAuthor,
			Summary: "Add a lesson to a module (at the end unless a position is given)", Status: http.StatusCreated,
			Request: catalogueCreateLessonSchema, Response: catalogueLessonSchema, Handler: sdk.HandlerFunc(p.createLesson),
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/lessons/{lesson_id}", Permission: PermCourseRead,
			Summary:  "A lesson: from the latest published version, or for authors from the draft",
			Response: catalogueLessonSchema, Handler: sdk.HandlerFunc(p.getLesson),
		},
		{
			Method: "PATCH", Path: "/api/v1/courses/{course_id}/lessons/{lesson_id}", Permission: PermCourseAuthor,
			Summary: "Change a lesson, or move it within or between modules",
			Request: cataloguePatchLessonSchema, Response: catalogueLessonSchema, Handler: sdk.HandlerFunc(p.patchLesson),
		},
		{
			Method: "DELETE", Path: "/api/v1/courses/{course_id}/lessons/{lesson_id}", Permission: PermCourseAuthor,
			Summary: "Delete a lesson from the draft", Status: http.StatusNoContent,
			Handler: sdk.HandlerFunc(p.deleteLesson),
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/draft", Permission: PermCourseAuthor,
			Summary:  "Preview the draft as learners would see it once published",
			Response: catalogueDraftSchema, Handler: sdk.HandlerFunc(p.getDraft),
		},
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/publish", Permission: PermCourseAuthor,
			Summary: "Publish the draft as the course's next version", Status: http.StatusCreated,
			Request: cataloguePublishSchema, Response: catalogueVersionSchema, Handler: sdk.HandlerFunc(p.publishCourse),
		},
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/unpublish", Permission: PermCourseAuthor,
			Summary:  "Take a course out of the catalogue and close it to new enrolments",
			Response: catalogueCourseSchema, Handler: sdk.HandlerFunc(p.unpublishCourse),
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/versions", Permission: PermCourseAuthor,
			Summary: "A course's published versions, newest first",
			Query:   []string{"limit", "cursor"}, Response: catalogueVersionListSchema, Handler: sdk.HandlerFunc(p.listVersions),
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/versions/{version}", Permission: PermCourseAuthor,
			Summary:  "One published version of a course, with its content",
			Response: catalogueVersionSchema, Handler: sdk.HandlerFunc(p.getVersion),
		},
	}
	return append(routes, p.nextRoutes()...)
}

// ---- The catalogue -------------------------------------------------------

// listCourses handles GET /api/v1/courses. Holders of manage_all see every
// course; authors see published courses and those they teach; everyone
// else sees published courses, with the title and summary of their
// published version.
func (p *Plugin) listCourses(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	status := req.Query.Get("status")
	if status != "" && !slices.Contains(courseStatuses, status) {
		bad = append(bad, sdk.FieldError{Field: "status", Message: "must be draft, published or unpublished"})
	}
	instructor, err := req.QueryUUID("instructor")
	if err != nil {
		bad = append(bad, sdk.FieldError{Field: "instructor", Message: "must be a UUID"})
	}
	var tsq string
	if q := req.Query.Get("q"); q != "" {
		var msg string
		if tsq, msg = titleSearchQuery(q); msg != "" {
			bad = append(bad, sdk.FieldError{Field: "q", Message: msg})
		}
	}
	var afterAt *time.Time
	var afterID *string
	if page.After != nil {
		at, id, ok := courseCursor(page.After)
		if !ok {
			bad = append(bad, sdk.FieldError{Field: "cursor", Message: "is not a cursor returned by this API"})
		}
		afterAt, afterID = &at, &id
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}

	var teacher *string // instructor=, or NULL
	if instructor != "" {
		teacher = &instructor
	}
	all := req.Principal.Can(PermManageAll)
	var author *string // the user whose taught courses are visible in any status
	if !all && req.Principal.Can(PermCourseAuthor) && req.Principal.Kind == "user" {
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
			  AND ($6::timestamptz IS NULL OR (c.created_at, c.id) < ($6::timestamptz, $7::uuid))
			ORDER BY c.created_at DESC, c.id DESC
			LIMIT $8`,
			all, author, status, teacher, tsq, afterAt, afterID, page.Limit+1)
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
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(c CourseItem) []string {
		return []string{c.CreatedAt.Format(time.RFC3339Nano), c.ID}
	}))
}

// titleSearchQuery turns a search into a tsquery in which every word is a
// prefix ("alg intro" finds "Introduction to algebra"). It keeps only runs
// of letters and digits, so nothing the user types is read as tsquery
// syntax; msg says why the search is refused.
func titleSearchQuery(q string) (tsq, msg string) {
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > maxSearchLength {
		return "", fmt.Sprintf("must be at most %d characters", maxSearchLength)
	}
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

// courseCursor reads a cursor of [created_at, id].
func courseCursor(after []string) (time.Time, string, bool) {
	if len(after) != 2 {
		return time.Time{}, "", false
	}
	at, err := time.Parse(time.RFC3339Nano, after[0])
	if err != nil {
		return time.Time{}, "", false
	}
	if !catalogueUUID.MatchString(after[1]) {
		return time.Time{}, "", false
	}
	return at, strings.ToLower(after[1]), true
}

// ---- Courses -------------------------------------------------------------

type createCourseRequest struct {
	Title         string `json:"title"`
	Summary       string `json:"summary"`
	SelfEnrolment *bool  `json:"self_enrolment"`
	PassMark      *int   `json:"pass_mark"`
}

// createCourse handles POST /api/v1/courses.
func (p *Plugin) createCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	if req.Principal.Kind != "user" {
		// The creator becomes the first instructor, and instructors are people.
		return nil, sdk.Errorf(sdk.ErrForbidden, "only a person can create a course: its creator becomes its first instructor").WithCode("user_required")
	}
	var in createCourseRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := text(&bad, "title", in.Title, 1, maxTitle)
	summary := text(&bad, "summary", in.Summary, 0, maxSummary)
	checkPassMark(&bad, in.PassMark)
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

type patchCourseRequest struct {
	Title         patchField[string] `json:"title"`
	Summary       patchField[string] `json:"summary"`
	SelfEnrolment patchField[bool]   `json:"self_enrolment"`
	PassMark      patchField[int]    `json:"pass_mark"`
}

// patchCourse handles PATCH /api/v1/courses/{course_id}.
func (p *Plugin) patchCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in patchCourseRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if !in.Title.Set && !in.Summary.Set && !in.SelfEnrolment.Set && !in.PassMark.Set {
		return nil, sdk.Errorf(sdk.ErrInvalid, "the request changes nothing: send title, summary, self_enrolment or pass_mark")
	}
	var bad []sdk.FieldError
	var title, summary *string
	if v, ok := fieldValue(&bad, "title", in.Title); ok {
		v = text(&bad, "title", v, 1, maxTitle)
		title = &v
	}
	if v, ok := fieldValue(&bad, "summary", in.Summary); ok {
		v = text(&bad, "summary", v, 0, maxSummary)
		summary = &v
	}
	checkPassMark(&bad, in.PassMark.Value)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var out *Course
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, id)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE courses SET
				title = coalesce($2, title),
				summary = coalesce($3, summary),
				self_enrolment = CASE WHEN $4 THEN $5 ELSE self_enrolment END,
				pass_mark = CASE WHEN $6 THEN $7 ELSE pass_mark END
			WHERE id = $1`,
			id, title, summary, in.SelfEnrolment.Set, in.SelfEnrolment.Value, in.PassMark.Set, in.PassMark.Value)
		if err != nil {
			return fmt.Errorf("changing course %s: %w", id, err)
		}
		if _, err := touchDraft(ctx, tx, id); err != nil {
			return err
		}
		out, err = courseView(ctx, tx, id, true, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, out.DraftRevision)
}

func checkPassMark(bad *[]sdk.FieldError, v *int) {
	if v != nil && (*v < 0 || *v > 100) {
		*bad = append(*bad, sdk.FieldError{Field: "pass_mark", Message: "must be between 0 and 100"})
	}
}

// ---- Instructors ---------------------------------------------------------

// addInstructor handles PUT /api/v1/courses/{course_id}/instructors/{user_id}:
// assigning someone who already teaches the course changes nothing.
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
	ok, err := p.memberHolds(ctx, req.Principal.TenantID, userID, PermCourseAuthor)
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
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if out == nil {
		out = []string{}
	}
	return out, err
}

// ---- Modules -------------------------------------------------------------

type createModuleRequest struct {
	Title    string `json:"title"`
	Position *int   `json:"position"`
}

// createModule handles POST /api/v1/courses/{course_id}/modules.
func (p *Plugin) createModule(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in createModuleRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := text(&bad, "title", in.Title, 1, maxTitle)
	if in.Position != nil && *in.Position < 0 {
		bad = append(bad, sdk.FieldError{Field: "position", Message: "must be 0 or more"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var m Module
	var rev int
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, courseID)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		ids, err := positionSiblings(ctx, tx, "modules", courseID)
		if err != nil {
			return err
		}
		pos := len(ids)
		if in.Position != nil {
			if *in.Position > len(ids) {
				return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d (the course has %d modules)", len(ids), len(ids))})
			}
			pos = *in.Position
		}
		err = tx.QueryRow(ctx, `INSERT INTO modules (course_id, title, position) VALUES ($1, $2, $3) RETURNING id, created_at`,
			courseID, title, pos).Scan(&m.ID, &m.CreatedAt)
		if err != nil {
			return fmt.Errorf("adding a module: %w", err)
		}
		if err := renumberPositions(ctx, tx, "modules", slices.Insert(ids, pos, m.ID)); err != nil {
			return err
		}
		m.CourseID, m.Title, m.Position = courseID, title, pos
		rev, err = touchDraft(ctx, tx, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusCreated, m, rev)
}

type patchModuleRequest struct {
	Title    patchField[string] `json:"title"`
	Position patchField[int]    `json:"position"`
}

// patchModule handles PATCH /api/v1/courses/{course_id}/modules/{module_id}:
// moving a module renumbers its positionSiblings, so positions stay 0..n-1.
func (p *Plugin) patchModule(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	moduleID, err := req.UUIDParam("module_id")
	if err != nil {
		return nil, err
	}
	var in patchModuleRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if !in.Title.Set && !in.Position.Set {
		return nil, sdk.Errorf(sdk.ErrInvalid, "the request changes nothing: send title or position")
	}
	var bad []sdk.FieldError
	var title *string
	if v, ok := fieldValue(&bad, "title", in.Title); ok {
		v = text(&bad, "title", v, 1, maxTitle)
		title = &v
	}
	if v, ok := fieldValue(&bad, "position", in.Position); ok && v < 0 {
		bad = append(bad, sdk.FieldError{Field: "position", Message: "must be 0 or more"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var m Module
	var rev int
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, courseID)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT id, course_id, title, position, created_at FROM modules WHERE id = $1 AND course_id = $2`, moduleID, courseID).
			Scan(&m.ID, &m.CourseID, &m.Title, &m.Position, &m.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrNotFound, "course %s has no module %s", courseID, moduleID)
		}
		if err != nil {
			return err
		}
		if title != nil {
			if _, err := tx.Exec(ctx, `UPDATE modules SET title = $2 WHERE id = $1`, moduleID, *title); err != nil {
				return err
			}
			m.Title = *title
		}
		if in.Position.Set {
			ids, err := positionSiblings(ctx, tx, "modules", courseID)
			if err != nil {
				return err
			}
			pos := *in.Position.Value
			if pos > len(ids)-1 {
				return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d (the course has %d modules)", len(ids)-1, len(ids))})
			}
			if err := renumberPositions(ctx, tx, "modules", movePosition(ids, moduleID, pos)); err != nil {
				return err
			}
			m.Position = pos
		}
		rev, err = touchDraft(ctx, tx, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, m, rev)
}

// deleteModule handles DELETE /api/v1/courses/{course_id}/modules/{module_id};
// its lessons go with it (ON DELETE CASCADE).
func (p *Plugin) deleteModule(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	moduleID, err := req.UUIDParam("module_id")
	if err != nil {
		return nil, err
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var rev int
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, courseID)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM modules WHERE id = $1 AND course_id = $2`, moduleID, courseID)
		if err != nil {
			return fmt.Errorf("deleting module %s: %w", moduleID, err)
		}
		if tag.RowsAffected() == 0 {
			return sdk.Errorf(sdk.ErrNotFound, "course %s has no module %s", courseID, moduleID)
		}
		ids, err := positionSiblings(ctx, tx, "modules", courseID)
		if err != nil {
			return err
		}
		if err := renumberPositions(ctx, tx, "modules", ids); err != nil {
			return err
		}
		rev, err = touchDraft(ctx, tx, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusNoContent, nil, rev)
}

// positionSiblingQueries list, in order, a course's modules or a module's lessons.
// The table names are constants, never user input.
var positionSiblingQueries = map[string]string{
	"modules": `SELECT id::text FROM modules WHERE course_id = $1 ORDER BY position, created_at, id`,
	"lessons": `SELECT id::text FROM lessons WHERE module_id = $1 ORDER BY position, created_at, id`,
}

var renumberPositionQueries = map[string]string{
	"modules": `UPDATE modules t SET position = x.n - 1 FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n) WHERE t.id = x.id AND t.position <> x.n - 1`,
	"lessons": `UPDATE lessons t SET position = x.n - 1 FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n) WHERE t.id = x.id AND t.position <> x.n - 1`,
}

func positionSiblings(ctx context.Context, tx pgx.Tx, table, parentID string) ([]string, error) {
	rows, err := tx.Query(ctx, positionSiblingQueries[table], parentID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// renumberPositions sets the positions of ids (all the positionSiblings, in their new
// order) to 0..n-1.
func renumberPositions(ctx context.Context, tx pgx.Tx, table string, ids []string) error {
	if _, err := tx.Exec(ctx, renumberPositionQueries[table], ids); err != nil {
		return fmt.Errorf("renumbering %s: %w", table, err)
	}
	return nil
}

// movePosition moves id to position pos of ids.
func movePosition(ids []string, id string, pos int) []string {
	out := slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == id })
	pos = min(pos, len(out))
	return slices.Insert(out, pos, id)
}

// ---- Lessons -------------------------------------------------------------

type lessonRequest struct {
	Title            patchField[string]  `json:"title"`
	Body             patchField[string]  `json:"body"`
	BodyFormat       patchField[string]  `json:"body_format"`
	Assets           patchField[[]Asset] `json:"assets"`
	EstimatedMinutes patchField[int]     `json:"estimated_minutes"`
	Required         patchField[bool]    `json:"required"`
	Position         patchField[int]     `json:"position"`
	ModuleID         patchField[string]  `json:"module_id"` // PATCH only: move to another module
}

// apply checks the fields that are set and writes them over l; a new
// lesson has every unset field at its default already.
func (in *lessonRequest) apply(l *Lesson) []sdk.FieldError {
	var bad []sdk.FieldError
	if v, ok := fieldValue(&bad, "title", in.Title); ok {
		l.Title = text(&bad, "title", v, 1, maxTitle)
	}
	if v, ok := fieldValue(&bad, "body", in.Body); ok {
		l.Body = v
		if utf8.RuneCountInString(v) > maxBody || !utf8.ValidString(v) {
			bad = append(bad, sdk.FieldError{Field: "body", Message: fmt.Sprintf("must be valid UTF-8 of at most %d characters", maxBody)})
		}
	}
	if v, ok := fieldValue(&bad, "body_format", in.BodyFormat); ok {
		l.BodyFormat = v
		if !slices.Contains(bodyFormats, v) {
			bad = append(bad, sdk.FieldError{Field: "body_format", Message: "must be markdown, html or plain"})
		}
	}
	if v, ok := fieldValue(&bad, "assets", in.Assets); ok {
		l.Assets = checkAssets(&bad, "assets", v)
	}
	if v, ok := fieldValue(&bad, "estimated_minutes", in.EstimatedMinutes); ok {
		l.EstimatedMinutes = v
		if v < 0 || v > maxMinutes {
			bad = append(bad, sdk.FieldError{Field: "estimated_minutes", Message: fmt.Sprintf("must be between 0 and %d", maxMinutes)})
		}
	}
	if v, ok := fieldValue(&bad, "required", in.Required); ok {
		l.Required = v
	}
	if v, ok := fieldValue(&bad, "position", in.Position); ok && v < 0 {
		bad = append(bad, sdk.FieldError{Field: "position", Message: "must be 0 or more"})
	}
	if v, ok := fieldValue(&bad, "module_id", in.ModuleID); ok {
		if !catalogueUUID.MatchString(v) {
			bad = append(bad, sdk.FieldError{Field: "module_id", Message: "must be a UUID"})
		} else {
			*in.ModuleID.Value = strings.ToLower(v)
		}
	}
	// Checked on the result, so that switching a body to html is checked too.
	if l.BodyFormat == "html" && (in.Body.Set || in.BodyFormat.Set) {
		if msg := unsafeHTML(l.Body); msg != "" {
			bad = append(bad, sdk.FieldError{Field: "body", Message: msg})
		}
	}
	return bad
}

var (
	scriptTag   = regexp.MustCompile(`(?i)<\s*/?\s*script`)
	eventAttr   = regexp.MustCompile(`(?i)<[a-z][^>]*[\s/"']on[a-z]+\s*=`)
	urlControls = regexp.MustCompile(`[\x00-\x20]+`)
)

// unsafeHTML says what in an html body could run script in a reader's
// browser, or "". Lesson bodies are stored for clients to render; the
// plugin refuses the obvious vectors rather than keep them: script
// elements, on* event attributes, and javascript:, vbscript: and
// data:text/html URLs (also when written with character references or
// split by whitespace, which browsers ignore in a URL's scheme).
func unsafeHTML(body string) string {
	if scriptTag.MatchString(body) {
		return "must not contain <script> elements"
	}
	if eventAttr.MatchString(body) {
		return "must not contain on* event handler attributes"
	}
	flat := strings.ToLower(urlControls.ReplaceAllString(html.UnescapeString(body), ""))
	for _, scheme := range []string{"javascript:", "vbscript:", "data:text/html"} {
		if strings.Contains(flat, scheme) {
			return "must not contain javascript:, vbscript: or data:text/html URLs"
		}
	}
	return ""
}

// createLesson handles POST /api/v1/courses/{course_id}/modules/{module_id}/lessons.
func (p *Plugin) createLesson(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	moduleID, err := req.UUIDParam("module_id")
	if err != nil {
		return nil, err
	}
	var in lessonRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	l := Lesson{CourseID: courseID, ModuleID: moduleID, BodyFormat: "markdown", Assets: []Asset{}, Required: true, Prerequisites: []string{}}
	bad := in.apply(&l)
	if !in.Title.Set {
		bad = append([]sdk.FieldError{{Field: "title", Message: "is required"}}, bad...)
	}
	if in.ModuleID.Set {
		bad = append(bad, sdk.FieldError{Field: "module_id", Message: "is given by the path when creating a lesson"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var out *Lesson
	var rev int
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, courseID)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		if err := moduleOf(ctx, tx, courseID, moduleID, ""); err != nil {
			return err
		}
		ids, err := positionSiblings(ctx, tx, "lessons", moduleID)
		if err != nil {
			return err
		}
		pos := len(ids)
		if in.Position.Set {
			if *in.Position.Value > len(ids) {
				return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d (the module has %d lessons)", len(ids), len(ids))})
			}
			pos = *in.Position.Value
		}
		assets, err := json.Marshal(l.Assets)
		if err != nil {
			return err
		}
		var id string
		err = tx.QueryRow(ctx, `
			INSERT INTO lessons (course_id, module_id, title, body, body_format, assets, estimated_minutes, required, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			courseID, moduleID, l.Title, l.Body, l.BodyFormat, assets, l.EstimatedMinutes, l.Required, pos).Scan(&id)
		if err != nil {
			return fmt.Errorf("adding a lesson: %w", err)
		}
		if err := renumberPositions(ctx, tx, "lessons", slices.Insert(ids, pos, id)); err != nil {
			return err
		}
		if rev, err = touchDraft(ctx, tx, courseID); err != nil {
			return err
		}
		out, err = draftLesson(ctx, tx, courseID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusCreated, out, rev)
}

// moduleOf checks that moduleID is a module of the course: a 404 when the
// module is the path's, a 422 naming field when it is the body's.
func moduleOf(ctx context.Context, tx pgx.Tx, courseID, moduleID, field string) error {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM modules WHERE id = $1 AND course_id = $2)`, moduleID, courseID).Scan(&ok); err != nil {
		return err
	}
	switch {
	case ok:
		return nil
	case field != "":
		return sdk.Invalid(sdk.FieldError{Field: field, Message: fmt.Sprintf("course %s has no module %s", courseID, moduleID)})
	default:
		return sdk.Errorf(sdk.ErrNotFound, "course %s has no module %s", courseID, moduleID)
	}
}

// getLesson handles GET /api/v1/courses/{course_id}/lessons/{lesson_id}.
func (p *Plugin) getLesson(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	lessonID, err := req.UUIDParam("lesson_id")
	if err != nil {
		return nil, err
	}
	var out *Lesson
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := loadCourse(ctx, tx, courseID, false); err != nil {
			return err
		}
		author, err := canAuthor(ctx, tx, courseID, req.Principal)
		if err != nil {
			return err
		}
		if author {
			out, err = draftLesson(ctx, tx, courseID, lessonID)
			return err
		}
		content, err := publishedContent(ctx, tx, courseID)
		if err != nil {
			return err
		}
		out, err = publishedLesson(content, lessonID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// publishedLesson is a lesson of a published version.
func publishedLesson(c *Content, lessonID string) (*Lesson, error) {
	for _, m := range c.Modules {
		for _, l := range m.Lessons {
			if l.ID == lessonID {
				return &Lesson{
					ID: l.ID, CourseID: c.CourseID, ModuleID: m.ID, Title: l.Title, Body: l.Body, BodyFormat: l.BodyFormat,
					Assets: l.Assets, EstimatedMinutes: l.EstimatedMinutes, Required: l.Required, Position: l.Position,
					Prerequisites: l.Prerequisites, Version: c.Version,
				}, nil
			}
		}
	}
	return nil, sdk.Errorf(sdk.ErrNotFound, "course %s has no lesson %s", c.CourseID, lessonID)
}

// draftLesson reads a lesson of the course's draft.
func draftLesson(ctx context.Context, tx pgx.Tx, courseID, lessonID string) (*Lesson, error) {
	l := Lesson{}
	var assets []byte
	var created, updated time.Time
	err := tx.QueryRow(ctx, `
		SELECT l.id, l.course_id, l.module_id, l.title, l.body, l.body_format, l.assets, l.estimated_minutes, l.required, l.position,
		       l.created_at, l.updated_at,
		       ARRAY(SELECT requires_lesson_id::text FROM lesson_prerequisites WHERE lesson_id = l.id ORDER BY 1)
		FROM lessons l WHERE l.id = $1 AND l.course_id = $2`, lessonID, courseID).
		Scan(&l.ID, &l.CourseID, &l.ModuleID, &l.Title, &l.Body, &l.BodyFormat, &assets, &l.EstimatedMinutes, &l.Required, &l.Position,
			&created, &updated, &l.Prerequisites)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "course %s has no lesson %s", courseID, lessonID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading lesson %s: %w", lessonID, err)
	}
	if err := json.Unmarshal(assets, &l.Assets); err != nil {
		return nil, fmt.Errorf("lesson %s: assets: %w", lessonID, err)
	}
	l.CreatedAt, l.UpdatedAt = &created, &updated
	return &l, nil
}

// patchLesson handles PATCH /api/v1/courses/{course_id}/lessons/{lesson_id}:
// module_id moves the lesson to another module of the course (at its end
// unless a position is given); both modules are renumbered.
func (p *Plugin) patchLesson(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	lessonID, err := req.UUIDParam("lesson_id")
	if err != nil {
		return nil, err
	}
	var in lessonRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if !in.Title.Set && !in.Body.Set && !in.BodyFormat.Set && !in.Assets.Set && !in.EstimatedMinutes.Set &&
		!in.Required.Set && !in.Position.Set && !in.ModuleID.Set {
		return nil, sdk.Errorf(sdk.ErrInvalid, "the request changes nothing")
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var out *Lesson
	var rev int
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, courseID)
		if err != nil {
			return err
		}
		l, err := draftLesson(ctx, tx, courseID, lessonID)
		if err != nil {
			return err
		}
		// Checked against the stored lesson: a format change checks the
		// stored body and the other way round.
		if bad := in.apply(l); len(bad) > 0 {
			return sdk.Invalid(bad...)
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		from, to := l.ModuleID, l.ModuleID
		if in.ModuleID.Set {
			to = *in.ModuleID.Value
			if err := moduleOf(ctx, tx, courseID, to, "module_id"); err != nil {
				return err
			}
		}
		if in.Position.Set || to != from {
			target, err := positionSiblings(ctx, tx, "lessons", to)
			if err != nil {
				return err
			}
			target = slices.DeleteFunc(target, func(s string) bool { return s == lessonID })
			pos := len(target)
			if in.Position.Set {
				if *in.Position.Value > len(target) {
					return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d", len(target))})
				}
				pos = *in.Position.Value
			}
			if to != from {
				if _, err := tx.Exec(ctx, `UPDATE lessons SET module_id = $2 WHERE id = $1`, lessonID, to); err != nil {
					return fmt.Errorf("moving lesson %s: %w", lessonID, err)
				}
				rest, err := positionSiblings(ctx, tx, "lessons", from)
				if err != nil {
					return err
				}
				if err := renumberPositions(ctx, tx, "lessons", rest); err != nil {
					return err
				}
			}
			if err := renumberPositions(ctx, tx, "lessons", slices.Insert(target, pos, lessonID)); err != nil {
				return err
			}
		}
		assets, err := json.Marshal(l.Assets)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE lessons SET title = $2, body = $3, body_format = $4, assets = $5, estimated_minutes = $6, required = $7, updated_at = now()
			WHERE id = $1`, lessonID, l.Title, l.Body, l.BodyFormat, assets, l.EstimatedMinutes, l.Required)
		if err != nil {
			return fmt.Errorf("changing lesson %s: %w", lessonID, err)
		}
		if rev, err = touchDraft(ctx, tx, courseID); err != nil {
			return err
		}
		out, err = draftLesson(ctx, tx, courseID, lessonID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, rev)
}

// deleteLesson handles DELETE /api/v1/courses/{course_id}/lessons/{lesson_id}.
// Its prerequisites go with it; quizzes and assignments attached to it stay
// in the course, detached (the schema's ON DELETE SET NULL).
func (p *Plugin) deleteLesson(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	lessonID, err := req.UUIDParam("lesson_id")
	if err != nil {
		return nil, err
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var rev int
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, courseID)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		var moduleID string
		err = tx.QueryRow(ctx, `DELETE FROM lessons WHERE id = $1 AND course_id = $2 RETURNING module_id`, lessonID, courseID).Scan(&moduleID)
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrNotFound, "course %s has no lesson %s", courseID, lessonID)
		}
		if err != nil {
			return fmt.Errorf("deleting lesson %s: %w", lessonID, err)
		}
		ids, err := positionSiblings(ctx, tx, "lessons", moduleID)
		if err != nil {
			return err
		}
		if err := renumberPositions(ctx, tx, "lessons", ids); err != nil {
			return err
		}
		rev, err = touchDraft(ctx, tx, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusNoContent, nil, rev)
}

// ---- Drafts and versions -------------------------------------------------

// getDraft handles GET /api/v1/courses/{course_id}/draft.
func (p *Plugin) getDraft(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var out Draft
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := readAsAuthor(ctx, tx, req, id)
		if err != nil {
			return err
		}
		if out.Content, err = draftContent(ctx, tx, id); err != nil {
			return err
		}
		out.DraftRevision, out.PublishedVersion, out.DiffersFromPublished = c.DraftRevision, c.PublishedVersion, true
		if c.PublishedVersion != nil {
			published, err := versionContent(ctx, tx, id, *c.PublishedVersion)
			if err != nil {
				return err
			}
			out.DiffersFromPublished, err = draftDiffers(out.Content, published)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, out.DraftRevision)
}

// draftDiffers compares a draft with a published version, as learners would
// see them (the version number aside).
func draftDiffers(draft, published *Content) (bool, error) {
	a, b := *draft, *published
	a.Version, b.Version = 0, 0
	ja, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return false, err
	}
	return !bytes.Equal(ja, jb), nil
}

// readAsAuthor is authorCourse without the row lock, for reads: 404 when
// the caller cannot see the course, 403 when it may read but not change it.
func readAsAuthor(ctx context.Context, tx pgx.Tx, req *sdk.Request, id string) (*course, error) {
	c, err := loadCourse(ctx, tx, id, false)
	if err != nil {
		return nil, err
	}
	ok, err := canAuthor(ctx, tx, id, req.Principal)
	if err != nil {
		return nil, err
	}
	if !ok {
		if c.Status != "published" {
			return nil, sdk.Errorf(sdk.ErrNotFound, "no course %s", id)
		}
		return nil, sdk.Errorf(sdk.ErrForbidden, "only the course's instructors and the institution's admins may see its drafts and versions")
	}
	return c, nil
}

type publishRequest struct {
	Note string `json:"note"`
}

// publishCourse handles POST /api/v1/courses/{course_id}/publish: the draft
// becomes the next version, learners see it at once, and every active
// enrolment's progress snapshot is recomputed against it, all in one
// transaction with courses.course.published.v1.
func (p *Plugin) publishCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in publishRequest
	if len(bytes.TrimSpace(req.Body)) > 0 { // the body is patchField
		if err := req.Decode(&in); err != nil {
			return nil, err
		}
	}
	var bad []sdk.FieldError
	note := text(&bad, "note", in.Note, 0, maxNote)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	out := CourseVersion{CourseID: id, Note: note, PublishedBy: req.Principal.ID()}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, id)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		content, err := draftContent(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(content.Lessons()) == 0 {
			return sdk.Errorf(sdk.ErrInvalid, "course %s has no lessons: add at least one before publishing", id).WithCode("course_has_no_lessons")
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) + 1 FROM course_versions WHERE course_id = $1`, id).Scan(&out.Version); err != nil {
			return err
		}
		content.Version = out.Version
		raw, err := json.Marshal(content)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO course_versions (course_id, version, content, note, published_by) VALUES ($1, $2, $3, $4, $5)
			RETURNING published_at`, id, out.Version, raw, note, out.PublishedBy).Scan(&out.PublishedAt)
		if err != nil {
			return fmt.Errorf("recording version %d of course %s: %w", out.Version, id, err)
		}
		_, err = tx.Exec(ctx, `
			UPDATE courses SET status = 'published', published_version = $2, published_at = $3, updated_at = now() WHERE id = $1`,
			id, out.Version, out.PublishedAt)
		if err != nil {
			return fmt.Errorf("publishing course %s: %w", id, err)
		}
		err = req.Publish(ctx, tx, EventCoursePublished, CoursePublished{CourseID: id, Version: out.Version, Title: content.Title})
		if err != nil {
			return err
		}
		// Dashboards follow the new version. The rows are locked in one
		// order (by ID) so two publishes cannot deadlock on them.
		rows, err := tx.Query(ctx, `SELECT id::text FROM enrolments WHERE course_id = $1 AND status = 'active' ORDER BY id FOR UPDATE`, id)
		if err != nil {
			return err
		}
		enrolments, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("locking the course's enrolments: %w", err)
		}
		for _, e := range enrolments {
			if _, err := refreshProgress(ctx, tx, req.Publish, e); err != nil {
				return fmt.Errorf("refreshing the progress of enrolment %s: %w", e, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

// unpublishCourse handles POST /api/v1/courses/{course_id}/unpublish. Its
// versions stay; publishing again makes the next one.
func (p *Plugin) unpublishCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	if err := ifMatch(req); err != nil {
		return nil, err
	}
	var out *Course
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := authorCourse(ctx, tx, req, id)
		if err != nil {
			return err
		}
		if err := checkRevision(req, c); err != nil {
			return err
		}
		if c.Status != "published" {
			return sdk.Errorf(sdk.ErrConflict, "course %s is not published (it is %s)", id, c.Status).WithCode("not_published")
		}
		if _, err := tx.Exec(ctx, `UPDATE courses SET status = 'unpublished', updated_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("unpublishing course %s: %w", id, err)
		}
		out, err = courseView(ctx, tx, id, true, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, out.DraftRevision)
}

// listVersions handles GET /api/v1/courses/{course_id}/versions.
func (p *Plugin) listVersions(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	before := 0 // versions below this one; 0: from the newest
	if page.After != nil {
		n, err := strconv.Atoi(page.After[0])
		if err != nil || len(page.After) != 1 || n < 1 {
			return nil, sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor returned by this API"})
		}
		before = n
	}
	var items []CourseVersion
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := readAsAuthor(ctx, tx, req, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT course_id::text, version, note, published_by::text, published_at FROM course_versions
			WHERE course_id = $1 AND ($2 = 0 OR version < $2)
			ORDER BY version DESC LIMIT $3`, id, before, page.Limit+1)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CourseVersion, error) {
			var v CourseVersion
			return v, r.Scan(&v.CourseID, &v.Version, &v.Note, &v.PublishedBy, &v.PublishedAt)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(v CourseVersion) []string {
		return []string{strconv.Itoa(v.Version)}
	}))
}

// getVersion handles GET /api/v1/courses/{course_id}/versions/{version}.
func (p *Plugin) getVersion(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(req.Param("version"))
	if err != nil || n < 1 {
		return nil, sdk.Errorf(sdk.ErrNotFound, "version %q is not a version number", req.Param("version"))
	}
	out := CourseVersion{CourseID: id, Version: n}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := readAsAuthor(ctx, tx, req, id); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT note, published_by::text, published_at FROM course_versions WHERE course_id = $1 AND version = $2`, id, n).
			Scan(&out.Note, &out.PublishedBy, &out.PublishedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrNotFound, "course %s has no version %d", id, n)
		}
		if err != nil {
			return err
		}
		out.Content, err = versionContent(ctx, tx, id, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// ---- Draft revisions -----------------------------------------------------

// touchDraft records a change to the course's draft: a new draft revision
// (what If-Match compares) and updated_at. The caller holds the course's
// lock.
func touchDraft(ctx context.Context, tx pgx.Tx, courseID string) (int, error) {
	var rev int
	err := tx.QueryRow(ctx, `UPDATE courses SET draft_revision = draft_revision + 1, updated_at = now() WHERE id = $1 RETURNING draft_revision`, courseID).Scan(&rev)
	if err != nil {
		return 0, fmt.Errorf("recording a change to course %s: %w", courseID, err)
	}
	return rev, nil
}

// ifMatch checks the form of an If-Match header: "*" or a draft revision,
// quoted or not ("3", W/"3", 3).
func ifMatch(req *sdk.Request) error {
	_, err := expectedRevision(req)
	return err
}

func expectedRevision(req *sdk.Request) (int, error) {
	v := strings.TrimSpace(req.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, sdk.Errorf(sdk.ErrBadRequest, "If-Match must be the course's draft_revision (its ETag), not %q", req.Header.Get("If-Match"))
	}
	return n, nil
}

// checkRevision refuses a change made against an older draft revision than
// the course's (If-Match), so that two authors cannot overwrite each
// other's edits unknowingly. Without If-Match the change applies.
func checkRevision(req *sdk.Request, c *course) error {
	want, err := expectedRevision(req)
	if err != nil || want == 0 {
		return err
	}
	if want != c.DraftRevision {
		return sdk.Errorf(sdk.ErrConflict, "the course's draft is at revision %d, not %d: reload it and apply the change again", c.DraftRevision, want).WithCode("stale_revision")
	}
	return nil
}

// respondWithRevision answers status with v (nil: no body) and the
// course's draft revision as the ETag (when rev > 0), for the next
// change's If-Match.
func respondWithRevision(status int, v any, rev int) (*sdk.Response, error) {
	resp := &sdk.Response{Status: status, Header: http.Header{}}
	if v != nil {
		var err error
		if resp, err = sdk.JSON(status, v); err != nil {
			return nil, err
		}
	}
	if rev > 0 {
		resp.Header.Set("ETag", `"`+strconv.Itoa(rev)+`"`)
	}
	return resp, nil
}

// ---- Optional fields -----------------------------------------------------

// patchField is a field of a PATCH body: Set when the field was sent, Value
// nil when it was sent as null.
type patchField[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the field was sent.
func (o *patchField[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// fieldValue is the value of a field that may not be null, and whether
// it was sent with one: a null is a FieldError.
func fieldValue[T any](bad *[]sdk.FieldError, field string, o patchField[T]) (T, bool) {
	var zero T
	switch {
	case !o.Set:
		return zero, false
	case o.Value == nil:
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "must not be null"})
		return zero, false
	}
	return *o.Value, true
}

// ---- OpenAPI schemas -----------------------------------------------------

const (
	catUUID     = `{"type": "string", "format": "uuid"}`
	catTime     = `{"type": "string", "format": "date-time"}`
	catNullTime = `{"type": "string", "nullable": true, "format": "date-time"}`
	catAsset    = `{
		"type": "object", "required": ["url", "type", "size_bytes"],
		"properties": {
			"url": {"type": "string", "maxLength": 2000},
			"type": {"type": "string", "maxLength": 100},
			"size_bytes": {"type": "integer", "minimum": 0},
			"title": {"type": "string", "maxLength": 200}}}`
	catAssessmentRef = `{
		"type": "object", "required": ["id", "title", "required"],
		"properties": {"id": ` + catUUID + `, "title": {"type": "string"}, "lesson_id": ` + catUUID + `, "required": {"type": "boolean"}}}`
	// catContent is Content: a published version, or the draft (version 0).
	catContent = `{
		"type": "object", "required": ["course_id", "version", "title", "summary", "modules", "prerequisites", "quizzes", "assignments"],
		"properties": {
			"course_id": ` + catUUID + `,
			"version": {"type": "integer", "minimum": 0},
			"title": {"type": "string"},
			"summary": {"type": "string"},
			"modules": {"type": "array", "items": {
				"type": "object", "required": ["id", "title", "position", "lessons"],
				"properties": {
					"id": ` + catUUID + `, "title": {"type": "string"}, "position": {"type": "integer"},
					"lessons": {"type": "array", "items": {
						"type": "object",
						"required": ["id", "title", "body", "body_format", "assets", "estimated_minutes", "required", "position", "prerequisites"],
						"properties": {
							"id": ` + catUUID + `, "title": {"type": "string"}, "body": {"type": "string"},
							"body_format": {"enum": ["markdown", "html", "plain"]},
							"assets": {"type": "array", "items": ` + catAsset + `},
							"estimated_minutes": {"type": "integer"}, "required": {"type": "boolean"}, "position": {"type": "integer"},
							"prerequisites": {"type": "array", "items": ` + catUUID + `}}}}}}},
			"prerequisites": {"type": "array", "items": ` + catUUID + `},
			"quizzes": {"type": "array", "items": ` + catAssessmentRef + `},
			"assignments": {"type": "array", "items": ` + catAssessmentRef + `}}}`
	catCourseItemProps = `
		"id": ` + catUUID + `,
		"title": {"type": "string"},
		"summary": {"type": "string"},
		"status": {"enum": ["draft", "published", "unpublished"]},
		"published_version": {"type": "integer", "nullable": true},
		"instructors": {"type": "array", "items": ` + catUUID + `},
		"created_at": ` + catTime + `,
		"updated_at": ` + catTime + `,
		"published_at": ` + catNullTime
	catCourseItemRequired = `"id", "title", "summary", "status", "published_version", "instructors", "created_at", "updated_at", "published_at"`
	catModule             = `{
		"type": "object", "required": ["id", "course_id", "title", "position", "created_at"],
		"properties": {"id": ` + catUUID + `, "course_id": ` + catUUID + `, "title": {"type": "string"},
			"position": {"type": "integer", "minimum": 0}, "created_at": ` + catTime + `}}`
	catVersionProps = `
		"course_id": ` + catUUID + `,
		"version": {"type": "integer", "minimum": 1},
		"note": {"type": "string"},
		"published_by": ` + catUUID + `,
		"published_at": ` + catTime
	catLessonFields = `
		"title": {"type": "string", "minLength": 1, "maxLength": 200},
		"body": {"type": "string", "maxLength": 200000, "description": "html bodies may not hold script elements, on* attributes or javascript: URLs"},
		"body_format": {"enum": ["markdown", "html", "plain"], "default": "markdown"},
		"assets": {"type": "array", "maxItems": 50, "items": ` + catAsset + `},
		"estimated_minutes": {"type": "integer", "minimum": 0, "maximum": 10000},
		"required": {"type": "boolean", "default": true},
		"position": {"type": "integer", "minimum": 0, "description": "0-based; at the end when absent"}`
)

var (
	catalogueCourseListSchema = json.RawMessage(`{
		"type": "object", "required": ["items"],
		"properties": {
			"items": {"type": "array", "items": {"type": "object", "required": [` + catCourseItemRequired + `], "properties": {` + catCourseItemProps + `}}},
			"next_cursor": {"type": "string"}}}`)
	catalogueCourseSchema = json.RawMessage(`{
		"type": "object", "required": [` + catCourseItemRequired + `, "self_enrolment", "pass_mark"],
		"properties": {` + catCourseItemProps + `,
			"self_enrolment": {"type": "boolean", "nullable": true, "description": "null: the institution's setting"},
			"pass_mark": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 100, "description": "null: the institution's default"},
			"draft_revision": {"type": "integer", "minimum": 1, "description": "authors only; also the ETag"},
			"content": ` + catContent + `}}`)
	catalogueCreateCourseSchema = json.RawMessage(`{
		"type": "object", "required": ["title"], "additionalProperties": false,
		"properties": {
			"title": {"type": "string", "minLength": 1, "maxLength": 200},
			"summary": {"type": "string", "maxLength": 2000},
			"self_enrolment": {"type": "boolean", "nullable": true},
			"pass_mark": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 100}}}`)
	cataloguePatchCourseSchema = json.RawMessage(`{
		"type": "object", "minProperties": 1, "additionalProperties": false,
		"properties": {
			"title": {"type": "string", "minLength": 1, "maxLength": 200},
			"summary": {"type": "string", "maxLength": 2000},
			"self_enrolment": {"type": "boolean", "nullable": true, "description": "null: the institution's setting"},
			"pass_mark": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 100, "description": "null: the institution's default"}}}`)
	catalogueInstructorsSchema = json.RawMessage(`{
		"type": "object", "required": ["course_id", "instructors"],
		"properties": {"course_id": ` + catUUID + `, "instructors": {"type": "array", "items": ` + catUUID + `}}}`)
	catalogueModuleSchema       = json.RawMessage(catModule)
	catalogueCreateModuleSchema = json.RawMessage(`{
		"type": "object", "required": ["title"], "additionalProperties": false,
		"properties": {
			"title": {"type": "string", "minLength": 1, "maxLength": 200},
			"position": {"type": "integer", "minimum": 0, "description": "0-based; at the end when absent"}}}`)
	cataloguePatchModuleSchema = json.RawMessage(`{
		"type": "object", "minProperties": 1, "additionalProperties": false,
		"properties": {
			"title": {"type": "string", "minLength": 1, "maxLength": 200},
			"position": {"type": "integer", "minimum": 0, "description": "0-based; the other modules are renumbered"}}}`)
	catalogueLessonSchema = json.RawMessage(`{
		"type": "object",
		"required": ["id", "course_id", "module_id", "title", "body", "body_format", "assets", "estimated_minutes", "required", "position", "prerequisites"],
		"properties": {
			"id": ` + catUUID + `, "course_id": ` + catUUID + `, "module_id": ` + catUUID + `,` + catLessonFields + `,
			"prerequisites": {"type": "array", "items": ` + catUUID + `},
			"version": {"type": "integer", "description": "learners: the published version the lesson comes from"},
			"created_at": ` + catTime + `, "updated_at": ` + catTime + `}}`)
	catalogueCreateLessonSchema = json.RawMessage(`{
		"type": "object", "required": ["title"], "additionalProperties": false,
		"properties": {` + catLessonFields + `}}`)
	cataloguePatchLessonSchema = json.RawMessage(`{
		"type": "object", "minProperties": 1, "additionalProperties": false,
		"properties": {` + catLessonFields + `,
			"module_id": {"type": "string", "format": "uuid", "description": "move the lesson to another module of the course"}}}`)
	catalogueDraftSchema = json.RawMessage(`{
		"type": "object", "required": ["content", "draft_revision", "published_version", "differs_from_published"],
		"properties": {
			"content": ` + catContent + `,
			"draft_revision": {"type": "integer", "minimum": 1},
			"published_version": {"type": "integer", "nullable": true},
			"differs_from_published": {"type": "boolean"}}}`)
	cataloguePublishSchema = json.RawMessage(`{
		"type": "object", "additionalProperties": false,
		"properties": {"note": {"type": "string", "maxLength": 500}}}`)
	catalogueVersionSchema = json.RawMessage(`{
		"type": "object", "required": ["course_id", "version", "note", "published_by", "published_at"],
		"properties": {` + catVersionProps + `, "content": ` + catContent + `}}`)
	catalogueVersionListSchema = json.RawMessage(`{
		"type": "object", "required": ["items"],
		"properties": {
			"items": {"type": "array", "items": {"type": "object", "required": ["course_id", "version", "note", "published_by", "published_at"],
				"properties": {` + catVersionProps + `}}},
			"next_cursor": {"type": "string"}}}`)
)
