package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Rubric is a grading scheme: criteria, each with levels worth points. A
// submission's grade picks one level per criterion. Rubrics do not change
// once created, so a grade always means what it meant when it was given.
type Rubric struct {
	ID        string      `json:"id" format:"uuid"`
	CourseID  string      `json:"course_id" format:"uuid"`
	Title     string      `json:"title"`
	Criteria  []Criterion `json:"criteria"`
	MaxScore  int         `json:"max_score" doc:"The sum of each criterion's best level."`
	CreatedBy string      `json:"created_by" format:"uuid"`
	CreatedAt time.Time   `json:"created_at"`
}

// Criterion is one thing a rubric grades. The server gives it its ID.
type Criterion struct {
	ID          string  `json:"id" format:"uuid"`
	Title       string  `json:"title"`
	Description string  `json:"description,omitempty"`
	Levels      []Level `json:"levels"`
}

// Level is one level of a criterion. The server gives it its ID.
type Level struct {
	ID          string `json:"id" format:"uuid"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Points      int    `json:"points"`
}

// CreateRubric is the body of POST /api/v1/courses/{course_id}/rubrics.
type CreateRubric struct {
	Title    string           `json:"title" minLength:"1" maxLength:"200"`
	Criteria []CriterionInput `json:"criteria" minItems:"1" maxItems:"20"`
}

// CriterionInput is a criterion as an author sends it.
type CriterionInput struct {
	Title       string       `json:"title" minLength:"1" maxLength:"200"`
	Description string       `json:"description,omitempty" maxLength:"2000"`
	Levels      []LevelInput `json:"levels" minItems:"2" maxItems:"10"`
}

// LevelInput is a level as an author sends it.
type LevelInput struct {
	Title       string `json:"title" minLength:"1" maxLength:"200"`
	Description string `json:"description,omitempty" maxLength:"2000"`
	Points      int    `json:"points" minimum:"0" maximum:"1000"`
}

func (p *Plugin) rubricRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/rubrics", Permission: PermCourseAuthor,
			Summary: "Create a rubric for a course's assignments", Status: http.StatusCreated,
			Request: CreateRubric{}, Response: Rubric{},
			Handler: p.createRubric,
		},
		{
			Method: "GET", Path: "/api/v1/rubrics/{rubric_id}", Permission: PermCourseRead,
			Summary:  "A rubric, for the course's instructors and the learners enrolled in it",
			Response: Rubric{},
			Handler:  p.getRubric,
		},
	}
}

// checkRubric checks what the schema of CreateRubric cannot say (titles
// that are not blank, a rubric worth points) and gives its criteria and
// levels IDs.
func checkRubric(in CreateRubric) (Rubric, error) {
	var bad []sdk.FieldError
	r := Rubric{Title: trimmed(&bad, "title", in.Title, true)}
	for i, ci := range in.Criteria {
		f := fmt.Sprintf("criteria.%d", i)
		c := Criterion{ID: uuid.NewString(), Title: trimmed(&bad, f+".title", ci.Title, true), Description: trimmed(&bad, f+".description", ci.Description, false)}
		for k, li := range ci.Levels {
			lf := fmt.Sprintf("%s.levels.%d", f, k)
			c.Levels = append(c.Levels, Level{
				ID: uuid.NewString(), Title: trimmed(&bad, lf+".title", li.Title, true), Description: trimmed(&bad, lf+".description", li.Description, false),
				Points: li.Points,
			})
		}
		r.Criteria = append(r.Criteria, c)
	}
	if len(bad) > 0 {
		return Rubric{}, sdk.Invalid(bad...)
	}
	if r.MaxScore = rubricMax(r.Criteria); r.MaxScore == 0 {
		// A grade is a percentage of the maximum.
		return Rubric{}, sdk.Invalid(sdk.FieldError{Field: "criteria", Message: "at least one level must be worth points"})
	}
	return r, nil
}

// rubricMax is the best score a rubric gives: each criterion's best level.
func rubricMax(criteria []Criterion) int {
	total := 0
	for _, c := range criteria {
		best := 0
		for _, l := range c.Levels {
			best = max(best, l.Points)
		}
		total += best
	}
	return total
}

// createRubric handles POST /api/v1/courses/{course_id}/rubrics.
func (p *Plugin) createRubric(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in CreateRubric
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	r, err := checkRubric(in)
	if err != nil {
		return nil, err
	}
	r.CourseID, r.CreatedBy = courseID, req.Principal.ID()
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := authorCourse(ctx, tx, req, courseID); err != nil {
			return err
		}
		criteria, err := json.Marshal(r.Criteria)
		if err != nil {
			return fmt.Errorf("encoding criteria: %w", err)
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO rubrics (course_id, title, criteria, created_by) VALUES ($1, $2, $3, $4)
			RETURNING id, created_at`, courseID, r.Title, criteria, r.CreatedBy).Scan(&r.ID, &r.CreatedAt)
		if err != nil {
			return fmt.Errorf("inserting rubric: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, r)
}

// getRubric handles GET /api/v1/rubrics/{rubric_id}. Learners see how they
// will be graded: those enrolled in the course may read its rubrics, as
// may whoever may change or grade the course, and anyone who may read a
// published assignment graded with it.
func (p *Plugin) getRubric(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	rubricID, err := req.UUIDParam("rubric_id")
	if err != nil {
		return nil, err
	}
	var r *Rubric
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if r, err = loadRubric(ctx, tx, rubricID); err != nil {
			return err
		}
		staff, err := courseStaff(ctx, tx, r.CourseID, req.Principal)
		if err != nil || staff {
			return err
		}
		enrolled, err := enrolledIn(ctx, tx, r.CourseID, req.Principal)
		if err != nil || enrolled {
			return err
		}
		// Whoever may read a published assignment may read how it is graded.
		published, err := rubricPublished(ctx, tx, r)
		if err != nil || published {
			return err
		}
		return sdk.Errorf(sdk.ErrNotFound, "no rubric %s", rubricID)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, r)
}

// rubricPublished reports whether an assignment of the course's latest
// published version is graded with the rubric.
func rubricPublished(ctx context.Context, tx pgx.Tx, r *Rubric) (bool, error) {
	c, err := loadCourse(ctx, tx, r.CourseID, false)
	if err != nil || c.Status != "published" {
		return false, err
	}
	content, err := publishedContent(ctx, tx, c.ID)
	if err != nil {
		return false, err
	}
	rows, err := tx.Query(ctx, `SELECT id::text FROM assignments WHERE rubric_id = $1`, r.ID)
	if err != nil {
		return false, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("reading the assignments of rubric %s: %w", r.ID, err)
	}
	for _, id := range ids {
		if refListed(content.Assignments, id) {
			return true, nil
		}
	}
	return false, nil
}

// loadRubric reads a rubric of the transaction's institution.
func loadRubric(ctx context.Context, tx pgx.Tx, rubricID string) (*Rubric, error) {
	var r Rubric
	err := tx.QueryRow(ctx, `SELECT id, course_id, title, criteria, created_by, created_at FROM rubrics WHERE id = $1`, rubricID).
		Scan(&r.ID, &r.CourseID, &r.Title, &r.Criteria, &r.CreatedBy, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no rubric %s", rubricID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading rubric %s: %w", rubricID, err)
	}
	r.MaxScore = rubricMax(r.Criteria)
	return &r, nil
}
