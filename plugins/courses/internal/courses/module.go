package courses

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Module is a module of a course's draft.
type Module struct {
	ID        string    `json:"id" format:"uuid"`
	CourseID  string    `json:"course_id" format:"uuid"`
	Title     string    `json:"title"`
	Position  int       `json:"position" minimum:"0"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateModule is the body of POST /api/v1/courses/{course_id}/modules.
type CreateModule struct {
	Title    string `json:"title" minLength:"1" maxLength:"200"`
	Position *int   `json:"position,omitempty" minimum:"0" doc:"0-based; at the end when absent."`
}

// PatchModule is the body of PATCH /api/v1/courses/{course_id}/modules/{module_id}.
type PatchModule struct {
	Title    sdk.Optional[string] `json:"title" minLength:"1" maxLength:"200"`
	Position sdk.Optional[int]    `json:"position" minimum:"0" doc:"0-based; the other modules are renumbered."`
}

func (p *Plugin) moduleRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/modules", Permission: PermCourseAuthor,
			Summary: "Add a module to a course's draft (at the end unless a position is given)", Status: http.StatusCreated,
			Request: CreateModule{}, Response: Module{}, Handler: p.createModule,
		},
		{
			Method: "PATCH", Path: "/api/v1/courses/{course_id}/modules/{module_id}", Permission: PermCourseAuthor,
			Summary: "Rename or move a module",
			Request: PatchModule{}, Response: Module{}, Handler: p.patchModule,
		},
		{
			Method: "DELETE", Path: "/api/v1/courses/{course_id}/modules/{module_id}", Permission: PermCourseAuthor,
			Summary: "Delete a module and its lessons from the draft", Status: http.StatusNoContent,
			Handler: p.deleteModule,
		},
	}
}

// createModule handles POST /api/v1/courses/{course_id}/modules.
func (p *Plugin) createModule(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in CreateModule
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := trimmed(&bad, "title", in.Title, true)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	m := Module{CourseID: courseID, Title: title}
	rev, err := editDraft(ctx, req, courseID, func(tx pgx.Tx, _ *course) error {
		ids, err := positionSiblings(ctx, tx, "modules", courseID)
		if err != nil {
			return err
		}
		m.Position = len(ids)
		if in.Position != nil {
			if *in.Position > len(ids) {
				return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d (the course has %d modules)", len(ids), len(ids))})
			}
			m.Position = *in.Position
		}
		err = tx.QueryRow(ctx, `INSERT INTO modules (course_id, title, position) VALUES ($1, $2, $3) RETURNING id, created_at`,
			courseID, title, m.Position).Scan(&m.ID, &m.CreatedAt)
		if err != nil {
			return fmt.Errorf("adding a module: %w", err)
		}
		return renumberPositions(ctx, tx, "modules", slices.Insert(ids, m.Position, m.ID))
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusCreated, m, rev)
}

// patchModule handles PATCH /api/v1/courses/{course_id}/modules/{module_id}:
// moving a module renumbers its siblings, so positions stay 0..n-1.
func (p *Plugin) patchModule(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	moduleID, err := req.UUIDParam("module_id")
	if err != nil {
		return nil, err
	}
	var in PatchModule
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if !in.Title.Set() && !in.Position.Set() {
		return nil, sdk.Errorf(sdk.ErrInvalid, "the request changes nothing: send title or position")
	}
	var bad []sdk.FieldError
	title := notNullText(&bad, "title", in.Title, true)
	pos, move := notNull(&bad, "position", in.Position)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var m Module
	rev, err := editDraft(ctx, req, courseID, func(tx pgx.Tx, _ *course) error {
		err := tx.QueryRow(ctx, `SELECT id, course_id, title, position, created_at FROM modules WHERE id = $1 AND course_id = $2`, moduleID, courseID).
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
		if move {
			ids, err := positionSiblings(ctx, tx, "modules", courseID)
			if err != nil {
				return err
			}
			if pos > len(ids)-1 {
				return sdk.Invalid(sdk.FieldError{Field: "position", Message: fmt.Sprintf("must be between 0 and %d (the course has %d modules)", len(ids)-1, len(ids))})
			}
			if err := renumberPositions(ctx, tx, "modules", movePosition(ids, moduleID, pos)); err != nil {
				return err
			}
			m.Position = pos
		}
		return nil
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
	rev, err := editDraft(ctx, req, courseID, func(tx pgx.Tx, _ *course) error {
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
		return renumberPositions(ctx, tx, "modules", ids)
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusNoContent, nil, rev)
}

// positionSiblingQueries list, in order, a course's modules or a module's
// lessons. The table names are constants, never user input.
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

// renumberPositions sets the positions of ids (all the siblings, in their
// new order) to 0..n-1.
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
