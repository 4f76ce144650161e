package courses

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Draft is the preview of a course's draft: what learners would see if it
// were published now.
type Draft struct {
	Content          *Content `json:"content"`
	DraftRevision    int      `json:"draft_revision" minimum:"1"`
	PublishedVersion *int     `json:"published_version" minimum:"1"`
	// DiffersFromPublished: publishing now would change what learners see
	// (always true for a course never published).
	DiffersFromPublished bool `json:"differs_from_published" doc:"Publishing now would change what learners see."`
}

// CourseVersion is one published version of a course; Content only when
// one version is asked for.
type CourseVersion struct {
	CourseID    string    `json:"course_id" format:"uuid"`
	Version     int       `json:"version" minimum:"1"`
	Note        string    `json:"note"`
	PublishedBy string    `json:"published_by" format:"uuid"`
	PublishedAt time.Time `json:"published_at"`
	Content     *Content  `json:"content,omitempty"`
}

// PublishCourse is the body of POST /api/v1/courses/{course_id}/publish,
// which may be left out.
type PublishCourse struct {
	Note string `json:"note,omitempty" maxLength:"500" doc:"What changed, for the course's authors."`
}

func (p *Plugin) publishRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/draft", Permission: PermCourseAuthor,
			Summary:  "Preview the draft as learners would see it once published",
			Response: Draft{}, Handler: p.getDraft,
		},
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/publish", Permission: PermCourseAuthor,
			Summary: "Publish the draft as the course's next version", Status: http.StatusCreated,
			Request: PublishCourse{}, Response: CourseVersion{}, Handler: p.publishCourse,
		},
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/unpublish", Permission: PermCourseAuthor,
			Summary:  "Take a course out of the catalogue and close it to new enrolments",
			Response: Course{}, Handler: p.unpublishCourse,
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/versions", Permission: PermCourseAuthor,
			Summary:   "A course's published versions, newest first",
			Paginated: true, Response: sdk.Page[CourseVersion]{}, Handler: p.listVersions,
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/versions/{version}", Permission: PermCourseAuthor,
			Summary:  "One published version of a course, with its content",
			Response: CourseVersion{}, Handler: p.getVersion,
		},
	}
}

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

// publishCourse handles POST /api/v1/courses/{course_id}/publish: the draft
// becomes the next version, learners see it at once, and every active
// enrolment's progress snapshot is recomputed against it, all in one
// transaction with courses.course.published.v1.
func (p *Plugin) publishCourse(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in PublishCourse
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	out := CourseVersion{CourseID: id, Note: strings.TrimSpace(in.Note), PublishedBy: req.Principal.ID()}
	err = withDraft(ctx, req, id, func(tx pgx.Tx, _ *course) error {
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
			RETURNING published_at`, id, out.Version, raw, out.Note, out.PublishedBy).Scan(&out.PublishedAt)
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
			if _, err := refreshProgress(ctx, tx, req, e); err != nil {
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
	var out *Course
	err = withDraft(ctx, req, id, func(tx pgx.Tx, c *course) error {
		if c.Status != "published" {
			return sdk.Errorf(sdk.ErrConflict, "course %s is not published (it is %s)", id, c.Status).WithCode("not_published")
		}
		if _, err := tx.Exec(ctx, `UPDATE courses SET status = 'unpublished', updated_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("unpublishing course %s: %w", id, err)
		}
		var err error
		out, err = courseView(ctx, tx, id, true, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, out.DraftRevision)
}

// listVersions handles GET /api/v1/courses/{course_id}/versions: newest
// first, the cursor is the last version listed.
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
			return nil, sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor returned by this list"})
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
