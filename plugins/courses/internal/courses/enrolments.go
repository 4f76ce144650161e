package courses

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Enrolment is a learner's enrolment in a course, as the dashboard shows
// it: with the course's title and the progress snapshot.
type Enrolment struct {
	ID          string  `json:"id" format:"uuid"`
	CourseID    string  `json:"course_id" format:"uuid"`
	CourseTitle string  `json:"course_title"`
	CohortID    *string `json:"cohort_id,omitempty" format:"uuid"`
	UserID      string  `json:"user_id" format:"uuid"`
	Status      string  `json:"status" enum:"active,waitlisted,completed,withdrawn"`
	Source      string  `json:"source" enum:"self,admin,order"`
	OrderID     *string `json:"order_id,omitempty"`
	EnrolledBy  string  `json:"enrolled_by" doc:"Who enrolled the learner: user:<id>, apikey:<id> or event:<id> (an order)."`
	// WaitlistPosition is the enrolment's place in its cohort's waitlist
	// (1: next to get a seat), on the answers about one enrolment while it
	// is waitlisted; lists leave it out to stay one cheap query.
	WaitlistPosition int        `json:"waitlist_position,omitempty" minimum:"1" doc:"While waitlisted, on answers about one enrolment."`
	CreatedAt        time.Time  `json:"created_at"`
	ActivatedAt      *time.Time `json:"activated_at,omitempty"`
	WaitlistedAt     *time.Time `json:"waitlisted_at,omitempty"`
	CompletedAt      *time.Time `json:"completed_at,omitempty"`
	WithdrawnAt      *time.Time `json:"withdrawn_at,omitempty"`
	// Progress is the snapshot; null until the learner has a seat.
	Progress *Progress `json:"progress" doc:"null while waitlisted."`
}

// Enrolment statuses and sources.
const (
	enrolActive     = "active"
	enrolWaitlisted = "waitlisted"
	enrolCompleted  = "completed"
	enrolWithdrawn  = "withdrawn"

	enrolBySelf  = "self"
	enrolByAdmin = "admin"
	enrolByOrder = "order"
)

// Enrol is the body of POST /api/v1/enrolments.
type Enrol struct {
	CourseID string `json:"course_id" format:"uuid"`
	CohortID string `json:"cohort_id,omitempty" format:"uuid" doc:"Required when the course runs in cohorts."`
	UserID   string `json:"user_id,omitempty" format:"uuid" doc:"Someone else to enrol (courses.enrolment.manage); absent: oneself."`
}

// ListEnrolmentsQuery filters GET /api/v1/enrolments.
type ListEnrolmentsQuery struct {
	Status   string `query:"status" enum:"active,waitlisted,completed,withdrawn"`
	UserID   string `query:"user_id" format:"uuid" doc:"Someone else's enrolments (courses.enrolment.manage)."`
	CourseID string `query:"course_id" format:"uuid" doc:"The enrolments in one course: one's own, or with courses.enrolment.manage everyone's."`
}

func (p *Plugin) enrolmentRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/enrolments", Permission: PermEnrolSelf,
			Summary: "Enrol oneself, or someone else (courses.enrolment.manage), in a published course; a full cohort waitlists.",
			Request: Enrol{}, Response: Enrolment{}, Status: http.StatusCreated,
			Handler: p.enrol,
		},
		{
			Method: "GET", Path: "/api/v1/enrolments", Permission: PermEnrolSelf,
			Summary:  "The learner's dashboard: their enrolments, newest first, with progress. With courses.enrolment.manage, user_id or course_id list the institution's.",
			Response: sdk.Page[Enrolment]{}, Query: ListEnrolmentsQuery{}, Paginated: true,
			Handler: p.listEnrolments,
		},
		{
			Method: "GET", Path: "/api/v1/enrolments/{enrolment_id}", Permission: PermEnrolSelf,
			Summary: "Read one's enrolment (anyone's, with courses.enrolment.manage).", Response: Enrolment{},
			Handler: p.getEnrolment,
		},
		{
			Method: "POST", Path: "/api/v1/enrolments/{enrolment_id}/withdraw", Permission: PermEnrolSelf,
			Summary:  "Withdraw from a course (anyone, with courses.enrolment.manage). A freed cohort seat goes to the waitlist by the promote-waitlist job.",
			Response: Enrolment{},
			Handler:  p.withdraw,
		},
	}
}

// enrolmentSelect reads enrolments (e) with their course's title and
// progress snapshot (p): the dashboard's one query. scanEnrolment reads a
// row of it.
const enrolmentSelect = `
	SELECT e.id, e.course_id, c.title, e.cohort_id, e.user_id, e.status, e.source, e.order_id, e.enrolled_by,
	       e.created_at, e.activated_at, e.waitlisted_at, e.completed_at, e.withdrawn_at,
	       p.version, p.lessons_completed, p.lessons_required, p.assessments_passed, p.assessments_required,
	       p.percent, p.time_spent_seconds, p.last_activity_at, p.completed_at
	FROM enrolments e
	JOIN courses c ON c.id = e.course_id
	LEFT JOIN course_progress p ON p.enrolment_id = e.id`

func scanEnrolment(row pgx.Row) (*Enrolment, error) {
	e := Enrolment{}
	var version, lessonsDone, lessonsReq, assessDone, assessReq, percent *int
	var spent *int64
	var lastActivity, progressDone *time.Time
	err := row.Scan(&e.ID, &e.CourseID, &e.CourseTitle, &e.CohortID, &e.UserID, &e.Status, &e.Source, &e.OrderID, &e.EnrolledBy,
		&e.CreatedAt, &e.ActivatedAt, &e.WaitlistedAt, &e.CompletedAt, &e.WithdrawnAt,
		&version, &lessonsDone, &lessonsReq, &assessDone, &assessReq, &percent, &spent, &lastActivity, &progressDone)
	if err != nil {
		return nil, err
	}
	e.CreatedAt = e.CreatedAt.UTC()
	for _, t := range []*time.Time{e.ActivatedAt, e.WaitlistedAt, e.CompletedAt, e.WithdrawnAt, lastActivity, progressDone} {
		if t != nil {
			*t = t.UTC()
		}
	}
	if version != nil {
		e.Progress = &Progress{
			EnrolmentID: e.ID, CourseID: e.CourseID, Version: *version,
			LessonsCompleted: *lessonsDone, LessonsRequired: *lessonsReq,
			AssessmentsPassed: *assessDone, AssessmentsRequired: *assessReq,
			Percent: *percent, TimeSpentSeconds: *spent, LastActivityAt: lastActivity, CompletedAt: progressDone,
		}
	}
	return &e, nil
}

// readEnrolment reads one enrolment of the institution with its waitlist
// position; none is a 404.
func readEnrolment(ctx context.Context, tx pgx.Tx, id string) (*Enrolment, error) {
	e, err := scanEnrolment(tx.QueryRow(ctx, enrolmentSelect+` WHERE e.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no enrolment %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading enrolment %s: %w", id, err)
	}
	if e.Status == enrolWaitlisted && e.CohortID != nil && e.WaitlistedAt != nil {
		err := tx.QueryRow(ctx, `
			SELECT count(*) + 1 FROM enrolments
			WHERE cohort_id = $1 AND status = 'waitlisted' AND (waitlisted_at, id) < ($2, $3::uuid)`,
			*e.CohortID, *e.WaitlistedAt, e.ID).Scan(&e.WaitlistPosition)
		if err != nil {
			return nil, fmt.Errorf("reading the waitlist position of enrolment %s: %w", id, err)
		}
	}
	return e, nil
}

// enrol handles POST /api/v1/enrolments.
//
// Enrolling oneself needs a published course open to self-enrolment (the
// course's setting, else the institution's) and every prerequisite course
// of its published version completed. Enrolling someone else needs
// courses.enrolment.manage and a member of the institution; it skips the
// self-enrolment switch and the prerequisites (an admin's decision), not
// publication. A course with cohorts needs one named: a cohort is a
// schedule, and the learner (or admin) chooses it. A full cohort, or one
// with people already waiting, waitlists the enrolment: it answers 201
// with status waitlisted, and the promote-waitlist jobs give seats in the
// order people asked.
func (p *Plugin) enrol(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in Enrol
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	courseID, cohortID, userID := strings.ToLower(in.CourseID), strings.ToLower(in.CohortID), strings.ToLower(in.UserID)
	me := req.Principal
	if userID == "" {
		if !me.IsUser() {
			return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is required: an API key enrols someone, not itself"})
		}
		userID = me.UserID
	}
	self := me.IsUser() && userID == me.UserID
	source := enrolBySelf
	if !self {
		source = enrolByAdmin
		if !me.Can(PermEnrolManage) {
			return nil, sdk.Errorf(sdk.ErrForbidden, "enrolling someone else needs the permission %s", PermEnrolManage)
		}
		// Before the transaction: a round trip to the kernel. Someone of
		// another institution, or no one, is not a member here.
		m, err := p.membership(ctx, req.Tenant(), userID)
		if err != nil {
			return nil, err
		}
		if !m.Member {
			return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a member of the institution"}).WithCode("not_a_member")
		}
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}

	var out *Enrolment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err := loadCourse(ctx, tx, courseID, false)
		if err != nil {
			return err
		}
		if c.Status != "published" {
			return sdk.Errorf(sdk.ErrConflict, "course %s is not published: it takes no enrolments", courseID).WithCode("course_not_published")
		}
		if self {
			open := cfg.SelfEnrolment
			if c.SelfEnrolment != nil {
				open = *c.SelfEnrolment
			}
			if !open {
				return sdk.Errorf(sdk.ErrForbidden, "course %s is not open to self-enrolment: ask an administrator to enrol you", courseID).WithCode("self_enrolment_closed")
			}
		}
		if live, err := liveEnrolment(ctx, tx, courseID, userID); err != nil {
			return err
		} else if live != "" {
			return alreadyEnrolled(courseID, live)
		}
		if self {
			if err := checkCoursePrerequisites(ctx, tx, courseID, userID); err != nil {
				return err
			}
		}
		if cohortID != "" {
			var cohortCourse string
			var ends time.Time
			err := tx.QueryRow(ctx, `SELECT course_id, ends_at FROM cohorts WHERE id = $1`, cohortID).Scan(&cohortCourse, &ends)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && cohortCourse != courseID) {
				return sdk.Invalid(sdk.FieldError{Field: "cohort_id", Message: "is not a cohort of this course"})
			}
			if err != nil {
				return err
			}
			if !ends.After(time.Now()) {
				return sdk.Errorf(sdk.ErrConflict, "cohort %s ended at %s", cohortID, ends.UTC().Format(time.RFC3339)).WithCode("cohort_ended")
			}
		} else {
			var hasCohorts bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cohorts WHERE course_id = $1)`, courseID).Scan(&hasCohorts); err != nil {
				return err
			}
			if hasCohorts {
				return sdk.Invalid(sdk.FieldError{Field: "cohort_id", Message: "is required: the course runs in cohorts (GET /api/v1/courses/{course_id}/cohorts)"}).WithCode("cohort_required")
			}
		}
		id, err := insertEnrolment(ctx, tx, req, newEnrolment{
			courseID: courseID, cohortID: cohortID, userID: userID, source: source, enrolledBy: me.Actor(),
		})
		if err != nil {
			return err
		}
		if id == "" { // a concurrent request enrolled the learner first
			return alreadyEnrolled(courseID, "")
		}
		out, err = readEnrolment(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

func alreadyEnrolled(courseID, enrolmentID string) error {
	detail := fmt.Sprintf("the learner is already enrolled in course %s", courseID)
	if enrolmentID != "" {
		detail += " (enrolment " + enrolmentID + ")"
	}
	return sdk.Errorf(sdk.ErrConflict, "%s", detail).WithCode("already_enrolled")
}

// liveEnrolment is the learner's enrolment in the course that is not
// withdrawn, or "".
func liveEnrolment(ctx context.Context, tx pgx.Tx, courseID, userID string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM enrolments WHERE course_id = $1 AND user_id = $2 AND status <> 'withdrawn'`, courseID, userID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// checkCoursePrerequisites refuses (409 prerequisites_incomplete, naming
// them) when the learner has not completed every prerequisite course of the
// course's published version. A prerequisite course since deleted binds
// no one.
func checkCoursePrerequisites(ctx context.Context, tx pgx.Tx, courseID, userID string) error {
	content, err := publishedContent(ctx, tx, courseID)
	if err != nil {
		return err
	}
	if len(content.Prerequisites) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `
		SELECT r.id::text FROM unnest($1::uuid[]) WITH ORDINALITY AS r (id, n)
		WHERE EXISTS (SELECT 1 FROM courses WHERE id = r.id)
		  AND NOT EXISTS (SELECT 1 FROM enrolments WHERE course_id = r.id AND user_id = $2 AND status = 'completed')
		ORDER BY r.n`, content.Prerequisites, userID)
	if err != nil {
		return err
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("checking prerequisites: %w", err)
	}
	if len(missing) == 0 {
		return nil
	}
	fields := make([]sdk.FieldError, len(missing))
	for i, id := range missing {
		fields[i] = sdk.FieldError{Field: fmt.Sprintf("prerequisites.%d", i), Message: id}
	}
	e := sdk.Errorf(sdk.ErrConflict, "complete these courses first: %s", strings.Join(missing, ", ")).WithCode("prerequisites_incomplete")
	e.Fields = fields
	return e
}

// newEnrolment is what insertEnrolment writes.
type newEnrolment struct {
	courseID, cohortID, userID  string
	source, orderID, enrolledBy string
}

// insertEnrolment enrols a learner in tx, after the caller's checks: it
// locks the cohort (if any) to decide on a seat, so two enrolments cannot
// both take the last one, writes the enrolment (active or waitlisted),
// publishes courses.enrolment.created.v1 and, with a seat, creates the
// progress snapshot. It returns "" and writes nothing when the learner
// already has a live enrolment in the course, or the order already enrolled
// them (the unique indexes enrolments_one_live and enrolments_order).
func insertEnrolment(ctx context.Context, tx pgx.Tx, s sdk.Scope, n newEnrolment) (string, error) {
	status := enrolActive
	if n.cohortID != "" {
		var err error
		if status, err = seatFor(ctx, tx, n.cohortID); err != nil {
			return "", err
		}
	}
	at := now()
	var activated, waitlisted *time.Time
	if status == enrolActive {
		activated = &at
	} else {
		waitlisted = &at
	}
	var id string
	err := tx.QueryRow(ctx, `
		INSERT INTO enrolments (course_id, cohort_id, user_id, status, source, order_id, enrolled_by, created_at, activated_at, waitlisted_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT DO NOTHING
		RETURNING id`,
		n.courseID, orNull(n.cohortID), n.userID, status, n.source, orNull(n.orderID), n.enrolledBy, at, activated, waitlisted).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("writing the enrolment: %w", err)
	}
	err = s.Publish(ctx, tx, EventEnrolmentCreated, EnrolmentChanged{
		EnrolmentID: id, CourseID: n.courseID, CohortID: n.cohortID, UserID: n.userID, Status: status, Source: n.source, OrderID: n.orderID,
	})
	if err != nil {
		return "", err
	}
	if status == enrolActive {
		if _, err := refreshProgress(ctx, tx, s, id); err != nil {
			return "", err
		}
	}
	return id, nil
}

// seatFor locks a cohort for the rest of the transaction and says whether
// a new enrolment gets a seat (active) or waits (waitlisted). Every
// enrolment in and promotion to the cohort takes this lock, so seats are
// counted by one transaction at a time. A cohort with people waiting
// waitlists newcomers too, even when a seat has just been freed or added:
// the waitlist is served first, in order, by the promote-waitlist jobs.
func seatFor(ctx context.Context, tx pgx.Tx, cohortID string) (string, error) {
	var limit *int
	err := tx.QueryRow(ctx, `SELECT seat_limit FROM cohorts WHERE id = $1 FOR UPDATE`, cohortID).Scan(&limit)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", sdk.Invalid(sdk.FieldError{Field: "cohort_id", Message: "is not a cohort of this course"})
	}
	if err != nil {
		return "", fmt.Errorf("locking cohort %s: %w", cohortID, err)
	}
	if limit == nil {
		return enrolActive, nil
	}
	var taken, waiting int
	err = tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE status IN ('active', 'completed')), count(*) FILTER (WHERE status = 'waitlisted')
		FROM enrolments WHERE cohort_id = $1 AND status IN ('active', 'completed', 'waitlisted')`, cohortID).Scan(&taken, &waiting)
	if err != nil {
		return "", fmt.Errorf("counting the seats of cohort %s: %w", cohortID, err)
	}
	if taken >= *limit || waiting > 0 {
		return enrolWaitlisted, nil
	}
	return enrolActive, nil
}

// listEnrolments handles GET /api/v1/enrolments: the learner's dashboard,
// the hot read. It is one query over enrolments_user (tenant, user,
// created_at DESC, id DESC) joining the course's title and the progress
// snapshot, newest first, keyset-paginated.
//
// Whose enrolments: one's own by default. Holders of
// courses.enrolment.manage may name user_id (that person's) or course_id
// alone (everyone's in the course, over enrolments_course); anyone may
// narrow their own to a course_id.
func (p *Plugin) listEnrolments(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListEnrolmentsQuery](req)
	if err != nil {
		return nil, err
	}
	userID, courseID, status := strings.ToLower(q.UserID), strings.ToLower(q.CourseID), q.Status
	me := req.Principal
	manage := me.Can(PermEnrolManage)
	if userID != "" && userID != me.UserID && !manage {
		return nil, sdk.Errorf(sdk.ErrForbidden, "reading someone else's enrolments needs the permission %s", PermEnrolManage)
	}
	if userID == "" && !(manage && courseID != "") {
		if !me.IsUser() {
			return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is required: an API key has no enrolments of its own (or name a course_id)"})
		}
		userID = me.UserID
	}

	// The conditions are fixed fragments; only values are parameters.
	where := []string{"e.tenant_id = $1"}
	args := []any{me.TenantID}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if userID != "" {
		where = append(where, "e.user_id = "+arg(userID))
	}
	if courseID != "" {
		where = append(where, "e.course_id = "+arg(courseID))
	}
	if status != "" {
		where = append(where, "e.status = "+arg(status))
	}
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where = append(where, fmt.Sprintf("(e.created_at, e.id) < (%s, %s::uuid)", arg(at), arg(id)))
	}
	sql := enrolmentSelect + ` WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY e.created_at DESC, e.id DESC LIMIT %d`, page.Limit+1)

	var items []Enrolment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Enrolment, error) {
			e, err := scanEnrolment(r)
			if err != nil {
				return Enrolment{}, err
			}
			return *e, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(e Enrolment) []string { return sdk.TimeKey(e.CreatedAt, e.ID) }))
}

// visibleEnrolment checks that the principal may act on the enrolment: its
// own, or anyone's with courses.enrolment.manage. Someone else's is a 404,
// as if it did not exist.
func visibleEnrolment(p sdk.Principal, e *Enrolment) error {
	if (p.IsUser() && e.UserID == p.UserID) || p.Can(PermEnrolManage) {
		return nil
	}
	return sdk.Errorf(sdk.ErrNotFound, "no enrolment %s", e.ID)
}

// getEnrolment handles GET /api/v1/enrolments/{enrolment_id}.
func (p *Plugin) getEnrolment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("enrolment_id")
	if err != nil {
		return nil, err
	}
	var out *Enrolment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		e, err := readEnrolment(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := visibleEnrolment(req.Principal, e); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// withdraw handles POST /api/v1/enrolments/{enrolment_id}/withdraw. A
// completed enrolment stays completed (409 enrolment_completed): its
// record and certificate are history, not a seat. Withdrawing from an
// active seat in a cohort with a limit frees it: the event says so and the
// promote-waitlist job, not this request, gives it to the next in line.
func (p *Plugin) withdraw(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("enrolment_id")
	if err != nil {
		return nil, err
	}
	var out *Enrolment
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM enrolments WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		e, err := readEnrolment(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := visibleEnrolment(req.Principal, e); err != nil {
			return err
		}
		switch e.Status {
		case enrolWithdrawn:
			return sdk.Errorf(sdk.ErrConflict, "enrolment %s was withdrawn already", id).WithCode("already_withdrawn")
		case enrolCompleted:
			return sdk.Errorf(sdk.ErrConflict, "enrolment %s is completed: there is nothing to withdraw from", id).WithCode("enrolment_completed")
		}
		freed := false
		if e.Status == enrolActive && e.CohortID != nil {
			if err := tx.QueryRow(ctx, `SELECT seat_limit IS NOT NULL FROM cohorts WHERE id = $1`, *e.CohortID).Scan(&freed); err != nil {
				return fmt.Errorf("reading the cohort of enrolment %s: %w", id, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE enrolments SET status = 'withdrawn', withdrawn_at = $2 WHERE id = $1`, id, now()); err != nil {
			return fmt.Errorf("withdrawing enrolment %s: %w", id, err)
		}
		err = req.Publish(ctx, tx, EventEnrolmentWithdrawn, EnrolmentChanged{
			EnrolmentID: id, CourseID: e.CourseID, CohortID: strOrEmpty(e.CohortID), UserID: e.UserID,
			Status: enrolWithdrawn, Source: e.Source, FreedSeat: freed, OrderID: strOrEmpty(e.OrderID),
		})
		if err != nil {
			return err
		}
		out, err = readEnrolment(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
