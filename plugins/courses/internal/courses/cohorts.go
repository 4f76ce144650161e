package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Cohort is a scheduled run of a course, with its seats as they stand.
type Cohort struct {
	ID       string    `json:"id"`
	CourseID string    `json:"course_id"`
	Name     string    `json:"name"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	// SeatLimit is null for a cohort without a limit; then SeatsFree is
	// null too.
	SeatLimit      *int      `json:"seat_limit"`
	SeatsTaken     int       `json:"seats_taken"` // active and completed enrolments
	SeatsFree      *int      `json:"seats_free"`
	WaitlistLength int       `json:"waitlist_length"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at"`
}

// WaitlistEntry is one waitlisted enrolment of a cohort, in the order
// seats are given.
type WaitlistEntry struct {
	Position     int       `json:"position"` // 1: the next to get a seat
	EnrolmentID  string    `json:"enrolment_id"`
	UserID       string    `json:"user_id"`
	Source       string    `json:"source"`
	WaitlistedAt time.Time `json:"waitlisted_at"`
}

// maxSeatLimit bounds a cohort's seats: enough for any real cohort, small
// enough that arithmetic on it never surprises.
const maxSeatLimit = 100000

var (
	cohortSchema = json.RawMessage(`{
		"type": "object",
		"required": ["id", "course_id", "name", "starts_at", "ends_at", "seat_limit", "seats_taken", "seats_free", "waitlist_length", "created_by", "created_at"],
		"properties": {
			"id": {"type": "string", "format": "uuid"},
			"course_id": {"type": "string", "format": "uuid"},
			"name": {"type": "string"},
			"starts_at": {"type": "string", "format": "date-time"},
			"ends_at": {"type": "string", "format": "date-time"},
			"seat_limit": {"type": "integer", "nullable": true, "minimum": 1, "description": "null: no limit"},
			"seats_taken": {"type": "integer", "minimum": 0},
			"seats_free": {"type": "integer", "nullable": true, "minimum": 0, "description": "null: no limit"},
			"waitlist_length": {"type": "integer", "minimum": 0},
			"created_by": {"type": "string", "format": "uuid"},
			"created_at": {"type": "string", "format": "date-time"}
		}
	}`)
	cohortPageSchema   = enrolPageSchema(cohortSchema)
	cohortCreateSchema = json.RawMessage(`{
		"type": "object",
		"required": ["name", "starts_at", "ends_at"],
		"additionalProperties": false,
		"properties": {
			"name": {"type": "string", "minLength": 1, "maxLength": 200},
			"starts_at": {"type": "string", "format": "date-time"},
			"ends_at": {"type": "string", "format": "date-time", "description": "after starts_at"},
			"seat_limit": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 100000, "description": "null or absent: no limit"}
		}
	}`)
	cohortPatchSchema = json.RawMessage(`{
		"type": "object",
		"additionalProperties": false,
		"properties": {
			"name": {"type": "string", "minLength": 1, "maxLength": 200},
			"starts_at": {"type": "string", "format": "date-time"},
			"ends_at": {"type": "string", "format": "date-time"},
			"seat_limit": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 100000, "description": "null: no limit; never below the seats taken (409 seats_taken)"}
		}
	}`)
	waitlistPageSchema = enrolPageSchema(`{
		"type": "object",
		"required": ["position", "enrolment_id", "user_id", "source", "waitlisted_at"],
		"properties": {
			"position": {"type": "integer", "minimum": 1},
			"enrolment_id": {"type": "string", "format": "uuid"},
			"user_id": {"type": "string", "format": "uuid"},
			"source": {"enum": ["self", "admin", "order"]},
			"waitlisted_at": {"type": "string", "format": "date-time"}
		}
	}`)
)

// enrolPageSchema is the OpenAPI schema of a sdk.Page of items.
func enrolPageSchema[S string | json.RawMessage](item S) json.RawMessage {
	return json.RawMessage(`{
		"type": "object",
		"required": ["items"],
		"properties": {
			"items": {"type": "array", "items": ` + string(item) + `},
			"next_cursor": {"type": "string", "description": "absent on the last page; pass as ?cursor= for the next"}
		}
	}`)
}

func (p *Plugin) cohortRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/cohorts", Permission: PermCourseAuthor,
			Summary: "Schedule a cohort of a course one teaches (or any, with manage_all).",
			Request: cohortCreateSchema, Response: cohortSchema, Status: http.StatusCreated,
			Handler: sdk.HandlerFunc(p.createCohort),
		},
		{
			Method: "GET", Path: "/api/v1/courses/{course_id}/cohorts", Permission: PermCourseRead,
			Summary:  "List a course's cohorts by start date, with seats taken, seats free and waitlist length.",
			Response: cohortPageSchema, Query: []string{"limit", "cursor"},
			Handler: sdk.HandlerFunc(p.listCohorts),
		},
		{
			Method: "GET", Path: "/api/v1/cohorts/{cohort_id}", Permission: PermCourseRead,
			Summary: "Read a cohort and its seats.", Response: cohortSchema,
			Handler: sdk.HandlerFunc(p.getCohort),
		},
		{
			Method: "PATCH", Path: "/api/v1/cohorts/{cohort_id}", Permission: PermCourseAuthor,
			Summary: "Change a cohort's name, dates or seat limit. A raised limit is filled from the waitlist by the promote-waitlists job.",
			Request: cohortPatchSchema, Response: cohortSchema,
			Handler: sdk.HandlerFunc(p.patchCohort),
		},
		{
			Method: "GET", Path: "/api/v1/cohorts/{cohort_id}/waitlist", Permission: PermCourseAuthor,
			Summary:  "A cohort's waitlist in the order seats are given (the course's instructors and admins).",
			Response: waitlistPageSchema, Query: []string{"limit", "cursor"},
			Handler: sdk.HandlerFunc(p.cohortWaitlist),
		},
	}
}

// cohortColumns reads a cohort (alias c) with its seat counts; scanCohort
// reads them. The counts use the index enrolments_cohort.
const cohortColumns = `c.id, c.course_id, c.name, c.starts_at, c.ends_at, c.seat_limit, c.created_by, c.created_at,
	(SELECT count(*) FROM enrolments e WHERE e.cohort_id = c.id AND e.status IN ('active', 'completed')),
	(SELECT count(*) FROM enrolments e WHERE e.cohort_id = c.id AND e.status = 'waitlisted')`

func scanCohort(row pgx.Row) (*Cohort, error) {
	var c Cohort
	if err := row.Scan(&c.ID, &c.CourseID, &c.Name, &c.StartsAt, &c.EndsAt, &c.SeatLimit, &c.CreatedBy, &c.CreatedAt,
		&c.SeatsTaken, &c.WaitlistLength); err != nil {
		return nil, err
	}
	c.StartsAt, c.EndsAt, c.CreatedAt = c.StartsAt.UTC(), c.EndsAt.UTC(), c.CreatedAt.UTC()
	if c.SeatLimit != nil {
		free := max(*c.SeatLimit-c.SeatsTaken, 0)
		c.SeatsFree = &free
	}
	return &c, nil
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
	return c, nil
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

// enrolTimeField reads an RFC 3339 timestamp of a request body.
func enrolTimeField(bad *[]sdk.FieldError, field, v string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "must be an RFC 3339 date-time such as 2030-01-31T09:00:00Z"})
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// seatLimitField reads seat_limit: absent (nil raw) leaves it unset, null
// is no limit, else 1 to maxSeatLimit.
func seatLimitField(bad *[]sdk.FieldError, raw json.RawMessage) (limit *int, set bool) {
	if raw == nil {
		return nil, false
	}
	if string(raw) == "null" {
		return nil, true
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil || n < 1 || n > maxSeatLimit {
		*bad = append(*bad, sdk.FieldError{Field: "seat_limit", Message: fmt.Sprintf("must be null (no limit) or an integer from 1 to %d", maxSeatLimit)})
		return nil, true
	}
	return &n, true
}

type cohortCreate struct {
	Name      string          `json:"name"`
	StartsAt  *string         `json:"starts_at"`
	EndsAt    *string         `json:"ends_at"`
	SeatLimit json.RawMessage `json:"seat_limit"`
}

// createCohort handles POST /api/v1/courses/{course_id}/cohorts.
func (p *Plugin) createCohort(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in cohortCreate
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	name := text(&bad, "name", in.Name, 1, 200)
	var starts, ends time.Time
	if in.StartsAt == nil {
		bad = append(bad, sdk.FieldError{Field: "starts_at", Message: "is required"})
	} else {
		starts = enrolTimeField(&bad, "starts_at", *in.StartsAt)
	}
	if in.EndsAt == nil {
		bad = append(bad, sdk.FieldError{Field: "ends_at", Message: "is required"})
	} else {
		ends = enrolTimeField(&bad, "ends_at", *in.EndsAt)
	}
	if !starts.IsZero() && !ends.IsZero() && !ends.After(starts) {
		bad = append(bad, sdk.FieldError{Field: "ends_at", Message: "must be after starts_at"})
	}
	limit, _ := seatLimitField(&bad, in.SeatLimit)
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
			courseID, name, starts, ends, limit, req.Principal.ID()).Scan(&id)
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

// cohortKey is a cohort's sort key in lists: start, then ID.
func cohortKey(c *Cohort) []string {
	return []string{c.StartsAt.Format(time.RFC3339Nano), c.ID}
}

// enrolTimeCursor reads a (timestamp, ID) cursor that NewPage handed out.
func enrolTimeCursor(after []string) (time.Time, string, error) {
	bad := sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor returned by this API"})
	if len(after) != 2 {
		return time.Time{}, "", bad
	}
	t, err := time.Parse(time.RFC3339Nano, after[0])
	if err != nil || len(after[1]) != 36 {
		return time.Time{}, "", bad
	}
	return t, after[1], nil
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
	q := `SELECT ` + cohortColumns + ` FROM cohorts c WHERE c.course_id = $1`
	args := []any{courseID}
	if page.After != nil {
		at, id, err := enrolTimeCursor(page.After)
		if err != nil {
			return nil, err
		}
		q += ` AND (c.starts_at, c.id) > ($2, $3::uuid)`
		args = append(args, at, id)
	}
	q += fmt.Sprintf(` ORDER BY c.starts_at, c.id LIMIT %d`, page.Limit+1)
	var items []*Cohort
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := cohortCourseRead(ctx, tx, req, courseID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Cohort, error) { return scanCohort(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, cohortKey))
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

type cohortPatch struct {
	Name      *string         `json:"name"`
	StartsAt  *string         `json:"starts_at"`
	EndsAt    *string         `json:"ends_at"`
	SeatLimit json.RawMessage `json:"seat_limit"`
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
	var in cohortPatch
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	var name string
	if in.Name != nil {
		name = text(&bad, "name", *in.Name, 1, 200)
	}
	var starts, ends time.Time
	if in.StartsAt != nil {
		starts = enrolTimeField(&bad, "starts_at", *in.StartsAt)
	}
	if in.EndsAt != nil {
		ends = enrolTimeField(&bad, "ends_at", *in.EndsAt)
	}
	limit, limitSet := seatLimitField(&bad, in.SeatLimit)
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
		if in.Name != nil {
			cur.Name = name
		}
		if in.StartsAt != nil {
			cur.StartsAt = starts
		}
		if in.EndsAt != nil {
			cur.EndsAt = ends
		}
		if !cur.EndsAt.After(cur.StartsAt) {
			return sdk.Invalid(sdk.FieldError{Field: "ends_at", Message: "must be after starts_at"})
		}
		if limitSet {
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
	q := `
		SELECT position, id, user_id, source, waitlisted_at FROM (
			SELECT row_number() OVER (ORDER BY waitlisted_at, id) AS position, id, user_id, source, waitlisted_at
			FROM enrolments WHERE cohort_id = $1 AND status = 'waitlisted') w`
	args := []any{cohortID}
	if page.After != nil {
		at, id, err := enrolTimeCursor(page.After)
		if err != nil {
			return nil, err
		}
		q += ` WHERE (waitlisted_at, id) > ($2, $3::uuid)`
		args = append(args, at, id)
	}
	q += fmt.Sprintf(` ORDER BY waitlisted_at, id LIMIT %d`, page.Limit+1)
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
		rows, err := tx.Query(ctx, q, args...)
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
		return []string{w.WaitlistedAt.Format(time.RFC3339Nano), w.EnrolmentID}
	}))
}
