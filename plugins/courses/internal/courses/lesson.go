package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Lesson is a lesson: for authors the draft lesson, for learners the lesson
// of the latest published version (Version set, no timestamps).
type Lesson struct {
	ID               string     `json:"id" format:"uuid"`
	CourseID         string     `json:"course_id" format:"uuid"`
	ModuleID         string     `json:"module_id" format:"uuid"`
	Title            string     `json:"title"`
	Body             string     `json:"body"`
	BodyFormat       string     `json:"body_format" enum:"markdown,html,plain"`
	Assets           []Asset    `json:"assets"`
	EstimatedMinutes int        `json:"estimated_minutes" minimum:"0"`
	Required         bool       `json:"required"`
	Position         int        `json:"position" minimum:"0"`
	Prerequisites    []string   `json:"prerequisites" format:"uuid"`
	Version          int        `json:"version,omitempty" doc:"Learners: the published version the lesson comes from."`
	CreatedAt        *time.Time `json:"created_at,omitempty"`
	UpdatedAt        *time.Time `json:"updated_at,omitempty"`
}

// CreateLesson is the body of POST
// /api/v1/courses/{course_id}/modules/{module_id}/lessons.
type CreateLesson struct {
	Title            string  `json:"title" minLength:"1" maxLength:"200"`
	Body             string  `json:"body,omitempty" maxLength:"200000" doc:"An html body may not hold script elements, on* attributes or javascript: URLs."`
	BodyFormat       string  `json:"body_format,omitempty" enum:"markdown,html,plain" default:"markdown"`
	Assets           []Asset `json:"assets,omitempty" maxItems:"50"`
	EstimatedMinutes int     `json:"estimated_minutes,omitempty" minimum:"0" maximum:"10000"`
	Required         *bool   `json:"required,omitempty" default:"true"`
	Position         *int    `json:"position,omitempty" minimum:"0" doc:"0-based; at the end when absent."`
}

// PatchLesson is the body of PATCH
// /api/v1/courses/{course_id}/lessons/{lesson_id}: absent fields stay as
// they are; module_id moves the lesson to another module of the course.
type PatchLesson struct {
	Title            sdk.Optional[string]  `json:"title" minLength:"1" maxLength:"200"`
	Body             sdk.Optional[string]  `json:"body" maxLength:"200000" doc:"An html body may not hold script elements, on* attributes or javascript: URLs."`
	BodyFormat       sdk.Optional[string]  `json:"body_format" enum:"markdown,html,plain"`
	Assets           sdk.Optional[[]Asset] `json:"assets" maxItems:"50"`
	EstimatedMinutes sdk.Optional[int]     `json:"estimated_minutes" minimum:"0" maximum:"10000"`
	Required         sdk.Optional[bool]    `json:"required"`
	Position         sdk.Optional[int]     `json:"position" minimum:"0" doc:"0-based, in the lesson's module (its new one when module_id is sent); at the end of a new module when absent."`
	ModuleID         sdk.Optional[string]  `json:"module_id" format:"uuid" doc:"Move the lesson to another module of the course."`
}

func (p *Plugin) lessonRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/modules/{module_id}/lessons", Permission: PermCourseAuthor,
			Summary: "Add a lesson to a module (at the end unless a position is given)", Status: http.StatusCreated,
			Request: CreateLesson{}, Response: Lesson{}, Handler: p.createLesson,
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/lessons/{lesson_id}", Permission: PermCourseRead,
			Summary:  "A lesson: from the latest published version, or for authors from the draft",
			Response: Lesson{}, Handler: p.getLesson,
		},
		{
			Method: "PATCH", Path: "/api/v1/courses/{course_id}/lessons/{lesson_id}", Permission: PermCourseAuthor,
			Summary: "Change a lesson, or move it within or between modules",
			Request: PatchLesson{}, Response: Lesson{}, Handler: p.patchLesson,
		},
		{
			Method: "DELETE", Path: "/api/v1/courses/{course_id}/lessons/{lesson_id}", Permission: PermCourseAuthor,
			Summary: "Delete a lesson from the draft", Status: http.StatusNoContent,
			Handler: p.deleteLesson,
		},
	}
}

// checkLesson checks what the schema cannot say of a lesson about to be
// stored: a title that is not blank, http(s) assets, and an html body that
// runs no script. The body is checked when it or its format changed, so
// that switching a body to html is checked too.
func checkLesson(bad *[]sdk.FieldError, l *Lesson, bodyChanged bool) {
	l.Title = trimmed(bad, "title", l.Title, true)
	checkAssets(bad, "assets", l.Assets)
	if l.BodyFormat == "html" && bodyChanged {
		if msg := unsafeHTML(l.Body); msg != "" {
			*bad = append(*bad, sdk.FieldError{Field: "body", Message: msg})
		}
	}
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
	var in CreateLesson
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	l := Lesson{
		CourseID: courseID, ModuleID: moduleID, Title: in.Title, Body: in.Body, BodyFormat: in.BodyFormat, Assets: append([]Asset{}, in.Assets...),
		EstimatedMinutes: in.EstimatedMinutes, Required: in.Required == nil || *in.Required,
	}
	if l.BodyFormat == "" {
		l.BodyFormat = "markdown"
	}
	var bad []sdk.FieldError
	checkLesson(&bad, &l, true)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var out *Lesson
	rev, err := editDraft(ctx, req, courseID, func(tx pgx.Tx, _ *course) error {
		if err := moduleOf(ctx, tx, courseID, moduleID, ""); err != nil {
			return err
		}
		ids, err := positionSiblings(ctx, tx, "lessons", moduleID)
		if err != nil {
			return err
		}
		pos := len(ids)
		if in.Position != nil {
			if *in.Position > len(ids) {
				return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d (the module has %d lessons)", len(ids), len(ids))})
			}
			pos = *in.Position
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
		out, err = draftLesson(ctx, tx, courseID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusCreated, out, rev)
}

// apply writes the fields that are set over l and checks the result.
func (in *PatchLesson) apply(l *Lesson) []sdk.FieldError {
	var bad []sdk.FieldError
	if v, ok := notNull(&bad, "title", in.Title); ok {
		l.Title = v
	}
	if v, ok := notNull(&bad, "body", in.Body); ok {
		l.Body = v
	}
	if v, ok := notNull(&bad, "body_format", in.BodyFormat); ok {
		l.BodyFormat = v
	}
	if v, ok := notNull(&bad, "assets", in.Assets); ok {
		l.Assets = v
	}
	if v, ok := notNull(&bad, "estimated_minutes", in.EstimatedMinutes); ok {
		l.EstimatedMinutes = v
	}
	if v, ok := notNull(&bad, "required", in.Required); ok {
		l.Required = v
	}
	notNull(&bad, "position", in.Position)
	notNull(&bad, "module_id", in.ModuleID)
	// Checked against the stored lesson: a format change checks the stored
	// body and the other way round.
	checkLesson(&bad, l, in.Body.Set() || in.BodyFormat.Set())
	return bad
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
	var in PatchLesson
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if !in.Title.Set() && !in.Body.Set() && !in.BodyFormat.Set() && !in.Assets.Set() && !in.EstimatedMinutes.Set() &&
		!in.Required.Set() && !in.Position.Set() && !in.ModuleID.Set() {
		return nil, sdk.Errorf(sdk.ErrInvalid, "the request changes nothing")
	}
	var out *Lesson
	rev, err := editDraft(ctx, req, courseID, func(tx pgx.Tx, _ *course) error {
		l, err := draftLesson(ctx, tx, courseID, lessonID)
		if err != nil {
			return err
		}
		if bad := in.apply(l); len(bad) > 0 {
			return sdk.Invalid(bad...)
		}
		from, to := l.ModuleID, l.ModuleID
		if id, ok := in.ModuleID.Get(); ok {
			to = strings.ToLower(id)
			if err := moduleOf(ctx, tx, courseID, to, "module_id"); err != nil {
				return err
			}
		}
		pos, move := in.Position.Get()
		if move || to != from {
			if err := moveLesson(ctx, tx, lessonID, from, to, pos, move); err != nil {
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
		out, err = draftLesson(ctx, tx, courseID, lessonID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, rev)
}

// moveLesson moves a lesson from module from to position pos (at the end
// unless move) of module to, renumbering both.
func moveLesson(ctx context.Context, tx pgx.Tx, lessonID, from, to string, pos int, move bool) error {
	target, err := positionSiblings(ctx, tx, "lessons", to)
	if err != nil {
		return err
	}
	target = slices.DeleteFunc(target, func(s string) bool { return s == lessonID })
	if !move {
		pos = len(target)
	} else if pos > len(target) {
		return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d", len(target))})
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
	return renumberPositions(ctx, tx, "lessons", slices.Insert(target, pos, lessonID))
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
	rev, err := editDraft(ctx, req, courseID, func(tx pgx.Tx, _ *course) error {
		var moduleID string
		err := tx.QueryRow(ctx, `DELETE FROM lessons WHERE id = $1 AND course_id = $2 RETURNING module_id`, lessonID, courseID).Scan(&moduleID)
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
		return renumberPositions(ctx, tx, "lessons", ids)
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusNoContent, nil, rev)
}
