package courses

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Cohort is a scheduled run of a course, with its seats as they stand.
type Cohort struct {
	ID       string    `json:"id" format:"uuid"`
	CourseID string    `json:"course_id" format:"uuid"`
	Name     string    `json:"name"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	// SeatLimit is null for a cohort without a limit; then SeatsFree is
	// null too.
	SeatLimit      *int      `json:"seat_limit" minimum:"1" doc:"null: no limit."`
	SeatsTaken     int       `json:"seats_taken" minimum:"0" doc:"Active and completed enrolments."`
	SeatsFree      *int      `json:"seats_free" minimum:"0" doc:"null: no limit."`
	WaitlistLength int       `json:"waitlist_length" minimum:"0"`
	CreatedBy      string    `json:"created_by" format:"uuid"`
	CreatedAt      time.Time `json:"created_at"`
}

// WaitlistEntry is one waitlisted enrolment of a cohort, in the order
// seats are given.
type WaitlistEntry struct {
	Position     int       `json:"position" minimum:"1" doc:"1: the next to get a seat."`
	EnrolmentID  string    `json:"enrolment_id" format:"uuid"`
	UserID       string    `json:"user_id" format:"uuid"`
	Source       string    `json:"source" enum:"self,admin,order"`
	WaitlistedAt time.Time `json:"waitlisted_at"`
}

// CreateCohort is the body of POST /api/v1/courses/{course_id}/cohorts.
// A seat limit is enough for any real cohort, and small enough that
// arithmetic on it never surprises.
type CreateCohort struct {
	Name      string    `json:"name" minLength:"1" maxLength:"200"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at" doc:"After starts_at."`
	SeatLimit *int      `json:"seat_limit,omitempty" minimum:"1" maximum:"100000" doc:"null or absent: no limit."`
}

// PatchCohort is the body of PATCH /api/v1/cohorts/{cohort_id}: absent
// fields stay as they are.
type PatchCohort struct {
	Name      sdk.Optional[string]    `json:"name" minLength:"1" maxLength:"200"`
	StartsAt  sdk.Optional[time.Time] `json:"starts_at"`
	EndsAt    sdk.Optional[time.Time] `json:"ends_at" doc:"After starts_at."`
	SeatLimit sdk.Optional[int]       `json:"seat_limit" minimum:"1" maximum:"100000" doc:"null: no limit; never below the seats taken (409 seats_taken)."`
}

func (p *Plugin) cohortRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/cohorts", Permission: PermCourseAuthor,
			Summary: "Schedule a cohort of a course one teaches (or any, with manage_all).",
			Request: CreateCohort{}, Response: Cohort{}, Status: http.StatusCreated,
			Handler: p.createCohort,
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/cohorts", Permission: PermCourseRead,
			Summary:  "List a course's cohorts by start date, with seats taken, seats free and waitlist length.",
			Response: sdk.Page[Cohort]{}, Paginated: true,
			Handler: p.listCohorts,
		},
		{
			Method: "GET", Path: "/api/v1/cohorts/{cohort_id}", Permission: PermCourseRead,
			Summary: "Read a cohort and its seats.", Response: Cohort{},
			Handler: p.getCohort,
		},
		{
			Method: "PATCH", Path: "/api/v1/cohorts/{cohort_id}", Permission: PermCourseAuthor,
			Summary: "Change a cohort's name, dates or seat limit. A raised limit is filled from the waitlist by the promote-waitlists job.",
			Request: PatchCohort{}, Response: Cohort{},
			Handler: p.patchCohort,
		},
		{
			Method: "GET", Path: "/api/v1/cohorts/{cohort_id}/waitlist", Permission: PermCourseAuthor,
			Summary:  "A cohort's waitlist in the order seats are given (the course's instructors and admins).",
			Response: sdk.Page[WaitlistEntry]{}, Paginated: true,
			Handler: p.cohortWaitlist,
		},
	}
}

// cohortColumns reads a cohort (alias c) with its seat counts; scanCohort
// reads them. The counts use the index enrolments_cohort.
const cohortColumns = `c.id, c.course_id, c.name, c.starts_at, c.ends_at, c.seat_limit, c.created_by, c.created_at,
	(SELECT count(*) FROM enrolments e WHERE e.cohort_id = c.id AND e.status IN ('active', 'completed')),
	(SELECT count(*) FROM enrolments e WHERE e.cohort_id = c.id AND e.status = 'waitlisted')`

func scanCohort(row pgx.Row) (Cohort, error) {
	var c Cohort
	if err := row.Scan(&c.ID, &c.CourseID, &c.Name, &c.StartsAt, &c.EndsAt, &c.SeatLimit, &c.CreatedBy, &c.CreatedAt,
		&c.SeatsTaken, &c.WaitlistLength); err != nil {
		return Cohort{}, err
	}
	c.StartsAt, c.EndsAt, c.CreatedAt = c.StartsAt.UTC(), c.EndsAt.UTC(), c.CreatedAt.UTC()
	if c.SeatLimit != nil {
		free := max(*c.SeatLimit-c.SeatsTaken, 0)
		c.SeatsFree = &free
	}
	return c, nil
}

// readCohort reads one cohort of the transaction's institution; none is a
// 404.
func readCohort(ctx context.Context, tx pgx.Tx, cohortID string) (*Cohort, error) {
	c, err := scanCohort(tx.QueryRow(ctx, `SELECT `+cohortColumns+` FROM cohorts c WHERE c.id = $1`, cohortID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no cohort %s", cohortID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading cohort %s: %w", cohortID, err)
	}
	return &c, nil
}

// cohortCourseVisible reports whether the principal may see the course's
// cohorts: everyone (with courses.course.read) when it is published, its
// authors otherwise.
func cohortCourseVisible(ctx context.Context, tx pgx.Tx, p sdk.Principal, c *course) (bool, error) {
	if c.Status == "published" {
		return true, nil
	}
	return canAuthor(ctx, tx, c.ID, p)
}

// cohortCourseRead loads a course whose cohorts the caller reads: 404 when
// it cannot see it.
func cohortCourseRead(ctx context.Context, tx pgx.Tx, req *sdk.Request, courseID string) (*course, error) {
	c, err := loadCourse(ctx, tx, courseID, false)
	if err != nil {
		return nil, err
	}
	ok, err := cohortCourseVisible(ctx, tx, req.Principal, c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no course %s", courseID)
	}
	return c, nil
}

// createCohort handles POST /api/v1/courses/{course_id}/cohorts.
func (p *Plugin) createCohort(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in CreateCohort
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	name := trimmed(&bad, "name", in.Name, true)
	starts, ends := in.StartsAt.UTC().Truncate(time.Microsecond), in.EndsAt.UTC().Truncate(time.Microsecond)
	if !ends.After(starts) {
		bad = append(bad, sdk.FieldError{Field: "ends_at", Message: "must be after starts_at"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var out *Cohort
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := authorCourse(ctx, tx, req, courseID); err != nil {
			return err
		}
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO cohorts (course_id, name, starts_at, ends_at, seat_limit, created_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			courseID, name, starts, ends, in.SeatLimit, req.Principal.ID()).Scan(&id)
		if err != nil {
			return fmt.Errorf("creating a cohort: %w", err)
		}
		out, err = readCohort(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

// listCohorts handles GET /api/v1/courses/{course_id}/cohorts.
func (p *Plugin) listCohorts(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, afterID, after, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	var items []Cohort
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := cohortCourseRead(ctx, tx, req, courseID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+cohortColumns+` FROM cohorts c
			WHERE c.course_id = $1 AND (NOT $2::bool OR (c.starts_at, c.id) > ($3::timestamptz, $4::uuid))
			ORDER BY c.starts_at, c.id LIMIT $5`, courseID, after, at, orNull(afterID), page.Limit+1)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Cohort, error) { return scanCohort(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(c Cohort) []string { return sdk.TimeKey(c.StartsAt, c.ID) }))
}

// getCohort handles GET /api/v1/cohorts/{cohort_id}.
func (p *Plugin) getCohort(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cohortID, err := req.UUIDParam("cohort_id")
	if err != nil {
		return nil, err
	}
	var out *Cohort
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := readCohort(ctx, tx, cohortID)
		if err != nil {
			return err
		}
		if _, err := cohortCourseRead(ctx, tx, req, c.CourseID); err != nil {
			if errors.Is(err, sdk.ErrNotFound) {
				return sdk.Errorf(sdk.ErrNotFound, "no cohort %s", cohortID)
			}
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// cohortCourseID is the course of a cohort, or a 404.
func cohortCourseID(ctx context.Context, tx pgx.Tx, cohortID string) (string, error) {
	var courseID string
	err := tx.QueryRow(ctx, `SELECT course_id FROM cohorts WHERE id = $1`, cohortID).Scan(&courseID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", sdk.Errorf(sdk.ErrNotFound, "no cohort %s", cohortID)
	}
	return courseID, err
}

// patchCohort handles PATCH /api/v1/cohorts/{cohort_id}. Lowering the seat
// limit below the seats taken is refused (409 seats_taken): nobody loses a
// seat they hold. Raising it does not promote anyone here: the
// promote-waitlists job fills the new seats in waitlist order, so the
// request stays short and promotion has one code path.
func (p *Plugin) patchCohort(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cohortID, err := req.UUIDParam("cohort_id")
	if err != nil {
		return nil, err
	}
	var in PatchCohort
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	name := notNullText(&bad, "name", in.Name, true)
	starts, setStarts := notNull(&bad, "starts_at", in.StartsAt)
	ends, setEnds := notNull(&bad, "ends_at", in.EndsAt)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var out *Cohort
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		courseID, err := cohortCourseID(ctx, tx, cohortID)
		if err != nil {
			return err
		}
		// The course's lock first, as every change to a course takes it,
		// then the cohort's: enrolments lock only the cohort, so the order
		// cannot deadlock.
		if _, err := authorCourse(ctx, tx, req, courseID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM cohorts WHERE id = $1 FOR UPDATE`, cohortID); err != nil {
			return err
		}
		cur, err := readCohort(ctx, tx, cohortID)
		if err != nil {
			return err
		}
		if name != nil {
			cur.Name = *name
		}
		if setStarts {
			cur.StartsAt = starts.UTC().Truncate(time.Microsecond)
		}
		if setEnds {
			cur.EndsAt = ends.UTC().Truncate(time.Microsecond)
		}
		if !cur.EndsAt.After(cur.StartsAt) {
			return sdk.Invalid(sdk.FieldError{Field: "ends_at", Message: "must be after starts_at"})
		}
		if in.SeatLimit.Set() {
			limit := in.SeatLimit.Ptr()
			if limit != nil && *limit < cur.SeatsTaken {
				return sdk.Errorf(sdk.ErrConflict, "%d seats of cohort %s are taken: the seat limit cannot go below that", cur.SeatsTaken, cohortID).WithCode("seats_taken")
			}
			cur.SeatLimit = limit
		}
		_, err = tx.Exec(ctx, `UPDATE cohorts SET name = $2, starts_at = $3, ends_at = $4, seat_limit = $5 WHERE id = $1`,
			cohortID, cur.Name, cur.StartsAt, cur.EndsAt, cur.SeatLimit)
		if err != nil {
			return fmt.Errorf("changing cohort %s: %w", cohortID, err)
		}
		out, err = readCohort(ctx, tx, cohortID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// cohortWaitlist handles GET /api/v1/cohorts/{cohort_id}/waitlist: the
// course's authors (and admins) see who waits, in order.
func (p *Plugin) cohortWaitlist(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cohortID, err := req.UUIDParam("cohort_id")
	if err != nil {
		return nil, err
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, afterID, after, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	var items []WaitlistEntry
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		courseID, err := cohortCourseID(ctx, tx, cohortID)
		if err != nil {
			return err
		}
		c, err := loadCourse(ctx, tx, courseID, false)
		if err != nil {
			return err
		}
		ok, err := canAuthor(ctx, tx, courseID, req.Principal)
		if err != nil {
			return err
		}
		if !ok {
			if c.Status != "published" {
				return sdk.Errorf(sdk.ErrNotFound, "no cohort %s", cohortID)
			}
			return sdk.Errorf(sdk.ErrForbidden, "only the course's instructors and the institution's admins see the waitlist of cohort %s", cohortID)
		}
		rows, err := tx.Query(ctx, `
			SELECT position, id, user_id, source, waitlisted_at FROM (
				SELECT row_number() OVER (ORDER BY waitlisted_at, id) AS position, id, user_id, source, waitlisted_at
				FROM enrolments WHERE cohort_id = $1 AND status = 'waitlisted') w
			WHERE NOT $2::bool OR (waitlisted_at, id) > ($3::timestamptz, $4::uuid)
			ORDER BY waitlisted_at, id LIMIT $5`, cohortID, after, at, orNull(afterID), page.Limit+1)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (WaitlistEntry, error) {
			var w WaitlistEntry
			err := r.Scan(&w.Position, &w.EnrolmentID, &w.UserID, &w.Source, &w.WaitlistedAt)
			w.WaitlistedAt = w.WaitlistedAt.UTC()
			return w, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(w WaitlistEntry) []string {
		return sdk.TimeKey(w.WaitlistedAt, w.EnrolmentID)
	}))
}
