package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Content is a course as learners see it: the whole draft copied into
// course_versions at each publish (Version > 0), or the current draft for
// a preview (Version 0). Learners always read the latest published version.
type Content struct {
	CourseID      string          `json:"course_id" format:"uuid"`
	Version       int             `json:"version" minimum:"0" doc:"0: the draft."`
	Title         string          `json:"title"`
	Summary       string          `json:"summary"`
	Modules       []ContentModule `json:"modules"`
	Prerequisites []string        `json:"prerequisites" format:"uuid" doc:"Courses to complete first."`
	Quizzes       []AssessmentRef `json:"quizzes"`
	Assignments   []AssessmentRef `json:"assignments"`
}

// ContentModule is a module and its ordered lessons.
type ContentModule struct {
	ID       string          `json:"id" format:"uuid"`
	Title    string          `json:"title"`
	Position int             `json:"position" minimum:"0"`
	Lessons  []ContentLesson `json:"lessons"`
}

// ContentLesson is a lesson with its content.
type ContentLesson struct {
	ID               string   `json:"id" format:"uuid"`
	Title            string   `json:"title"`
	Body             string   `json:"body"`
	BodyFormat       string   `json:"body_format" enum:"markdown,html,plain"`
	Assets           []Asset  `json:"assets"`
	EstimatedMinutes int      `json:"estimated_minutes"`
	Required         bool     `json:"required"`
	Position         int      `json:"position" minimum:"0"`
	Prerequisites    []string `json:"prerequisites" format:"uuid" doc:"Lessons to complete first."`
}

// Asset is a reference to a file held elsewhere (the asset service, a
// CDN). checkAssets adds what the schema cannot say: an http(s) URL, a
// MIME type.
type Asset struct {
	URL       string `json:"url" format:"uri" maxLength:"2000" doc:"An http(s) URL."`
	Type      string `json:"type" maxLength:"100" doc:"MIME type, such as video/mp4."`
	SizeBytes int64  `json:"size_bytes" minimum:"0" maximum:"53687091200" doc:"At most 50 GiB."`
	Title     string `json:"title,omitempty" maxLength:"200"`
}

// AssessmentRef names a quiz or assignment of a version.
type AssessmentRef struct {
	ID       string `json:"id" format:"uuid"`
	Title    string `json:"title"`
	LessonID string `json:"lesson_id,omitempty" format:"uuid"`
	Required bool   `json:"required"`
}

// Lessons are the content's lessons in course order.
func (c *Content) Lessons() []ContentLesson {
	var out []ContentLesson
	for _, m := range c.Modules {
		out = append(out, m.Lessons...)
	}
	return out
}

// Lesson finds a lesson by ID.
func (c *Content) Lesson(id string) (ContentLesson, bool) {
	for _, m := range c.Modules {
		for _, l := range m.Lessons {
			if l.ID == id {
				return l, true
			}
		}
	}
	return ContentLesson{}, false
}

// draftContent reads the course's draft from the authoring tables.
func draftContent(ctx context.Context, tx pgx.Tx, courseID string) (*Content, error) {
	c := &Content{CourseID: courseID, Modules: []ContentModule{}, Prerequisites: []string{}, Quizzes: []AssessmentRef{}, Assignments: []AssessmentRef{}}
	err := tx.QueryRow(ctx, `SELECT title, summary FROM courses WHERE id = $1`, courseID).Scan(&c.Title, &c.Summary)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no course %s", courseID)
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT id, title, position FROM modules WHERE course_id = $1 ORDER BY position, created_at, id`, courseID)
	if err != nil {
		return nil, err
	}
	mods, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ContentModule, error) {
		m := ContentModule{Lessons: []ContentLesson{}}
		return m, r.Scan(&m.ID, &m.Title, &m.Position)
	})
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, m := range mods {
		index[m.ID] = i
	}
	rows, err = tx.Query(ctx, `
		SELECT l.module_id, l.id, l.title, l.body, l.body_format, l.assets, l.estimated_minutes, l.required, l.position,
		       coalesce(array_agg(p.requires_lesson_id::text ORDER BY p.requires_lesson_id) FILTER (WHERE p.requires_lesson_id IS NOT NULL), '{}')
		FROM lessons l LEFT JOIN lesson_prerequisites p ON p.lesson_id = l.id
		WHERE l.course_id = $1
		GROUP BY l.id ORDER BY l.position, l.created_at, l.id`, courseID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var moduleID string
		var assets []byte
		var l ContentLesson
		if err := rows.Scan(&moduleID, &l.ID, &l.Title, &l.Body, &l.BodyFormat, &assets, &l.EstimatedMinutes, &l.Required, &l.Position, &l.Prerequisites); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal(assets, &l.Assets); err != nil {
			rows.Close()
			return nil, fmt.Errorf("lesson %s: assets: %w", l.ID, err)
		}
		if i, ok := index[moduleID]; ok {
			mods[i].Lessons = append(mods[i].Lessons, l)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.Modules = mods
	rows, err = tx.Query(ctx, `SELECT requires_course_id::text FROM course_prerequisites WHERE course_id = $1 ORDER BY 1`, courseID)
	if err != nil {
		return nil, err
	}
	if c.Prerequisites, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, err
	}
	for _, q := range []struct {
		sql string
		out *[]AssessmentRef
	}{
		{`SELECT id, title, coalesce(lesson_id::text, ''), required FROM quizzes WHERE course_id = $1 ORDER BY created_at, id`, &c.Quizzes},
		{`SELECT id, title, coalesce(lesson_id::text, ''), required FROM assignments WHERE course_id = $1 ORDER BY due_at, id`, &c.Assignments},
	} {
		rows, err := tx.Query(ctx, q.sql, courseID)
		if err != nil {
			return nil, err
		}
		refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AssessmentRef, error) {
			var a AssessmentRef
			return a, r.Scan(&a.ID, &a.Title, &a.LessonID, &a.Required)
		})
		if err != nil {
			return nil, err
		}
		*q.out = append(*q.out, refs...)
	}
	return c, nil
}

// publishedContent reads the course's latest published version, or a 404
// when the course is not published (a draft, or unpublished).
func publishedContent(ctx context.Context, tx pgx.Tx, courseID string) (*Content, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `
		SELECT v.content FROM courses c JOIN course_versions v ON v.course_id = c.id AND v.version = c.published_version
		WHERE c.id = $1 AND c.status = 'published'`, courseID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no published course %s", courseID)
	}
	if err != nil {
		return nil, err
	}
	return decodeContent(raw)
}

// versionContent reads one published version of a course.
func versionContent(ctx context.Context, tx pgx.Tx, courseID string, version int) (*Content, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT content FROM course_versions WHERE course_id = $1 AND version = $2`, courseID, version).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "course %s has no version %d", courseID, version)
	}
	if err != nil {
		return nil, err
	}
	return decodeContent(raw)
}

func decodeContent(raw []byte) (*Content, error) {
	var c Content
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decoding a course version: %w", err)
	}
	return &c, nil
}

// now is the time the plugin stamps records with, in UTC to the
// microsecond as Postgres keeps it.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// orNull is NULL for "" (an absent filter, no cursor yet, no cohort), else s:
// a query parameter.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
