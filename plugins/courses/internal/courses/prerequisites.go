package courses

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// CoursePrerequisites is the answer of PUT /api/v1/courses/{course_id}/prerequisites.
type CoursePrerequisites struct {
	CourseID  string   `json:"course_id" format:"uuid"`
	CourseIDs []string `json:"course_ids" format:"uuid" doc:"The courses to complete first."`
}

// LessonPrerequisites is the answer of PUT /api/v1/courses/{course_id}/lessons/{lesson_id}/prerequisites.
type LessonPrerequisites struct {
	CourseID  string   `json:"course_id" format:"uuid"`
	LessonID  string   `json:"lesson_id" format:"uuid"`
	LessonIDs []string `json:"lesson_ids" format:"uuid" doc:"The lessons to complete first."`
}

// SetCoursePrerequisites is the body of PUT /api/v1/courses/{course_id}/prerequisites.
type SetCoursePrerequisites struct {
	CourseIDs []string `json:"course_ids" format:"uuid" maxItems:"50" doc:"Courses of the institution to complete first; [] removes them all."`
}

// SetLessonPrerequisites is the body of PUT
// /api/v1/courses/{course_id}/lessons/{lesson_id}/prerequisites.
type SetLessonPrerequisites struct {
	LessonIDs []string `json:"lesson_ids" format:"uuid" maxItems:"50" doc:"Lessons of the same course to complete first; [] removes them all."`
}

func (p *Plugin) prerequisiteRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "PUT", Path: "/api/v1/courses/{course_id}/prerequisites", Permission: PermCourseAuthor,
			Summary: "Replace the courses a course requires (in its draft); a cycle is refused",
			Request: SetCoursePrerequisites{}, Response: CoursePrerequisites{}, Handler: p.putCoursePrerequisites,
		},
		{
			Method: "PUT", Path: "/api/v1/courses/{course_id}/lessons/{lesson_id}/prerequisites", Permission: PermCourseAuthor,
			Summary: "Replace the lessons of the course a lesson requires (in its draft); a cycle is refused",
			Request: SetLessonPrerequisites{}, Response: LessonPrerequisites{}, Handler: p.putLessonPrerequisites,
		},
	}
}

// prerequisiteIDs are the IDs of a list (UUIDs, as its schema says) in
// lowercase, sorted, each once.
func prerequisiteIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, strings.ToLower(id))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// putCoursePrerequisites handles PUT /api/v1/courses/{course_id}/prerequisites.
// The prerequisite graph spans the institution's courses, so its changes
// are serialised per institution (an advisory lock): two edits that would
// each be fine alone cannot together close a cycle.
func (p *Plugin) putCoursePrerequisites(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in SetCoursePrerequisites
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	want := prerequisiteIDs(in.CourseIDs)
	out := CoursePrerequisites{CourseID: id, CourseIDs: want}
	// The institution's lock first, the course's second: the foreign keys
	// of the rows written below take a share lock on each required course,
	// so a transaction holding a course's row lock while it waits for the
	// institution's could deadlock with this one.
	serialise := func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, req.Tenant()+":courses.prerequisites"); err != nil {
			return fmt.Errorf("serialising prerequisite changes: %w", err)
		}
		return nil
	}
	rev, err := changeDraft(ctx, req, id, true, serialise, func(tx pgx.Tx, _ *course) error {
		// Row-level security hides other institutions' courses: they are
		// as unknown as IDs that name nothing.
		titles, err := courseTitles(ctx, tx, append([]string{id}, want...))
		if err != nil {
			return err
		}
		if missing := unknownIDs("course_ids", in.CourseIDs, titles); len(missing) > 0 {
			return unknownPrerequisites("courses", missing)
		}
		rows, err := tx.Query(ctx, `SELECT course_id::text, requires_course_id::text FROM course_prerequisites`)
		if err != nil {
			return err
		}
		graph, err := prerequisiteGraph(rows)
		if err != nil {
			return err
		}
		if cycle := findCycle(graph, id, want); cycle != nil {
			if titles, err = courseTitles(ctx, tx, cycle); err != nil {
				return err
			}
			return cycleError("course", cycle, titles)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM course_prerequisites WHERE course_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO course_prerequisites (course_id, requires_course_id) SELECT $1, unnest($2::uuid[])`, id, want)
		if err != nil {
			return fmt.Errorf("recording the prerequisites of course %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, rev)
}

// putLessonPrerequisites handles PUT
// /api/v1/courses/{course_id}/lessons/{lesson_id}/prerequisites. A lesson
// requires lessons of its own course only, so the course's row lock (taken
// by every change to the course) serialises the changes of its graph.
func (p *Plugin) putLessonPrerequisites(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	lessonID, err := req.UUIDParam("lesson_id")
	if err != nil {
		return nil, err
	}
	var in SetLessonPrerequisites
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	want := prerequisiteIDs(in.LessonIDs)
	out := LessonPrerequisites{CourseID: courseID, LessonID: lessonID, LessonIDs: want}
	rev, err := editDraft(ctx, req, courseID, func(tx pgx.Tx, _ *course) error {
		// The course's lessons, with their titles for the messages.
		rows, err := tx.Query(ctx, `SELECT id::text, title FROM lessons WHERE course_id = $1`, courseID)
		if err != nil {
			return err
		}
		titles := map[string]string{}
		for rows.Next() {
			var id, title string
			if err := rows.Scan(&id, &title); err != nil {
				rows.Close()
				return err
			}
			titles[id] = title
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if _, ok := titles[lessonID]; !ok {
			return sdk.Errorf(sdk.ErrNotFound, "course %s has no lesson %s", courseID, lessonID)
		}
		if missing := unknownIDs("lesson_ids", in.LessonIDs, titles); len(missing) > 0 {
			// Lessons of the institution's other courses are visible, but
			// not allowed; say which are which.
			others, err := otherCourseLessons(ctx, tx, missing)
			if err != nil {
				return err
			}
			var bad []sdk.FieldError
			names := make([]string, 0, len(missing))
			for _, m := range missing {
				msg := "no such lesson in this institution"
				if others[m.id] {
					msg = "is a lesson of another course: a lesson may require lessons of its own course only"
				}
				bad = append(bad, sdk.FieldError{Field: m.field, Message: msg})
				names = append(names, m.id)
			}
			return &sdk.Error{
				Kind: sdk.ErrInvalid, Code: "unknown_prerequisite", Fields: bad,
				Detail: fmt.Sprintf("not lessons of course %s: %s", courseID, strings.Join(names, ", ")),
			}
		}
		rows, err = tx.Query(ctx, `
			SELECT p.lesson_id::text, p.requires_lesson_id::text
			FROM lesson_prerequisites p JOIN lessons l ON l.id = p.lesson_id
			WHERE l.course_id = $1`, courseID)
		if err != nil {
			return err
		}
		graph, err := prerequisiteGraph(rows)
		if err != nil {
			return err
		}
		if cycle := findCycle(graph, lessonID, want); cycle != nil {
			return cycleError("lesson", cycle, titles)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM lesson_prerequisites WHERE lesson_id = $1`, lessonID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO lesson_prerequisites (lesson_id, requires_lesson_id) SELECT $1, unnest($2::uuid[])`, lessonID, want)
		if err != nil {
			return fmt.Errorf("recording the prerequisites of lesson %s: %w", lessonID, err)
		}
		_, err = tx.Exec(ctx, `UPDATE lessons SET updated_at = now() WHERE id = $1`, lessonID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return respondWithRevision(http.StatusOK, out, rev)
}

// courseTitles reads the titles of the visible courses among ids.
func courseTitles(ctx context.Context, tx pgx.Tx, ids []string) (map[string]string, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, title FROM courses WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for rows.Next() {
		var id, title string
		if err := rows.Scan(&id, &title); err != nil {
			rows.Close()
			return nil, err
		}
		out[id] = title
	}
	return out, rows.Err()
}

// otherCourseLessons says which of the missing IDs are lessons of the
// institution's other courses.
func otherCourseLessons(ctx context.Context, tx pgx.Tx, missing []missingID) (map[string]bool, error) {
	ids := make([]string, 0, len(missing))
	for _, m := range missing {
		ids = append(ids, m.id)
	}
	rows, err := tx.Query(ctx, `SELECT id::text FROM lessons WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// missingID is an ID of the request that names nothing it may name, with
// the request field that holds it.
type missingID struct{ field, id string }

// unknownIDs lists, in request order, the IDs of given (as sent) that known
// does not hold.
func unknownIDs(field string, given []string, known map[string]string) []missingID {
	var out []missingID
	seen := map[string]bool{}
	for i, id := range given {
		id = strings.ToLower(id)
		if _, ok := known[id]; ok || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, missingID{field: fmt.Sprintf("%s.%d", field, i), id: id})
	}
	return out
}

func unknownPrerequisites(what string, missing []missingID) error {
	bad := make([]sdk.FieldError, 0, len(missing))
	names := make([]string, 0, len(missing))
	for _, m := range missing {
		bad = append(bad, sdk.FieldError{Field: m.field, Message: "no such course in this institution"})
		names = append(names, m.id)
	}
	return &sdk.Error{
		Kind: sdk.ErrInvalid, Code: "unknown_prerequisite", Fields: bad,
		Detail: fmt.Sprintf("unknown %s: %s", what, strings.Join(names, ", ")),
	}
}

// prerequisiteGraph reads (node, requires) rows into adjacency lists.
func prerequisiteGraph(rows pgx.Rows) (map[string][]string, error) {
	graph := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			rows.Close()
			return nil, err
		}
		graph[from] = append(graph[from], to)
	}
	return graph, rows.Err()
}

// findCycle reports the cycle that giving node the prerequisites requires
// (replacing its current ones) would close, as the path node → ... → node,
// or nil. It searches breadth first from the new prerequisites, so the
// cycle it names is a shortest one; a node requiring itself is the cycle
// [node, node].
func findCycle(graph map[string][]string, node string, requires []string) []string {
	parent := map[string]string{}
	queue := []string{}
	for _, r := range requires {
		if r == node {
			return []string{node, node}
		}
		if _, seen := parent[r]; !seen {
			parent[r] = node
			queue = append(queue, r)
		}
	}
	for len(queue) > 0 {
		at := queue[0]
		queue = queue[1:]
		for _, next := range graph[at] {
			if next == node {
				// Walk back from at to node, then read it forwards.
				path := []string{node}
				for n := at; n != node; n = parent[n] {
					path = append(path, n)
				}
				path = append(path, node)
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if _, seen := parent[next]; !seen {
				parent[next] = at
				queue = append(queue, next)
			}
		}
	}
	return nil
}

// cycleError is the 422 prerequisite_cycle naming the path, "A" → "B" → "A".
func cycleError(what string, cycle []string, titles map[string]string) error {
	names := make([]string, 0, len(cycle))
	for _, id := range cycle {
		names = append(names, fmt.Sprintf("%q (%s)", titles[id], id))
	}
	return sdk.Errorf(sdk.ErrInvalid, "these prerequisites would make a cycle, so no %s could ever be started: %s",
		what, strings.Join(names, " → ")).WithCode("prerequisite_cycle")
}
