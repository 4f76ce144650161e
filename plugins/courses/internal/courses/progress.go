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

// LessonState is a learner's state on one lesson of their enrolment.
type LessonState struct {
	LessonID         string     `json:"lesson_id" format:"uuid"`
	ModuleID         string     `json:"module_id" format:"uuid"`
	Title            string     `json:"title"`
	Required         bool       `json:"required"`
	CompletedAt      *time.Time `json:"completed_at" doc:"null until completed."`
	TimeSpentSeconds int        `json:"time_spent_seconds" minimum:"0"`
}

// LessonProgress answers a change to a lesson's state: the lesson and the
// enrolment's refreshed snapshot.
type LessonProgress struct {
	Lesson   LessonState `json:"lesson"`
	Progress *Progress   `json:"progress"`
}

// EnrolmentProgress is an enrolment's snapshot and its lessons, in course
// order.
type EnrolmentProgress struct {
	Progress *Progress     `json:"progress"`
	Lessons  []LessonState `json:"lessons"`
}

// CompleteLesson is the body of POST
// /api/v1/enrolments/{enrolment_id}/lessons/{lesson_id}/complete, which may
// be left out. One request records at most a day.
type CompleteLesson struct {
	TimeSpentSeconds int `json:"time_spent_seconds,omitempty" minimum:"0" maximum:"86400" doc:"Time spent on the lesson since last recorded."`
}

// LessonTime is the body of POST
// /api/v1/enrolments/{enrolment_id}/lessons/{lesson_id}/time.
type LessonTime struct {
	Seconds int `json:"seconds" minimum:"1" maximum:"86400"`
}

func (p *Plugin) progressRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/enrolments/{enrolment_id}/lessons/{lesson_id}/complete", Permission: PermEnrolSelf,
			Summary: "Complete a lesson of one's enrolment (once; again is a no-op), recording time spent, and refresh the progress snapshot.",
			Request: CompleteLesson{}, Response: LessonProgress{},
			Handler: p.completeLesson,
		},
		{
			Method: "POST", Path: "/api/v1/enrolments/{enrolment_id}/lessons/{lesson_id}/time", Permission: PermEnrolSelf,
			Summary: "Add time spent on a lesson of one's enrolment.",
			Request: LessonTime{}, Response: LessonProgress{},
			Handler: p.lessonTime,
		},
		{
			Method: "GET", Path: "/api/v1/enrolments/{enrolment_id}/progress", Permission: PermEnrolSelf,
			Summary:  "An enrolment's progress snapshot and per-lesson state in course order (one's own; anyone's with courses.enrolment.manage).",
			Response: EnrolmentProgress{},
			Handler:  p.enrolmentProgress,
		},
	}
}

// learning is an enrolment a learner records progress on.
type learning struct {
	ID, CourseID, UserID, Status string
}

// lockLearning locks the principal's own enrolment for a change to its
// progress: someone else's is a 404 (an admin does not learn for a
// learner), a waitlisted one 409 enrolment_waitlisted, a withdrawn one 409
// enrolment_withdrawn. A completed one may still record (reviewing a
// lesson, time spent). The row lock serialises the enrolment's changes and
// is what refreshProgress needs held.
func lockLearning(ctx context.Context, tx pgx.Tx, p sdk.Principal, enrolmentID string) (*learning, error) {
	var l learning
	err := tx.QueryRow(ctx, `SELECT id, course_id, user_id, status FROM enrolments WHERE id = $1 FOR UPDATE`, enrolmentID).
		Scan(&l.ID, &l.CourseID, &l.UserID, &l.Status)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (!p.IsUser() || l.UserID != p.UserID)) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no enrolment %s", enrolmentID)
	}
	if err != nil {
		return nil, fmt.Errorf("locking enrolment %s: %w", enrolmentID, err)
	}
	switch l.Status {
	case enrolWaitlisted:
		return nil, sdk.Errorf(sdk.ErrConflict, "enrolment %s is on a cohort's waitlist: learning starts with a seat", enrolmentID).WithCode("enrolment_waitlisted")
	case enrolWithdrawn:
		return nil, sdk.Errorf(sdk.ErrConflict, "enrolment %s was withdrawn", enrolmentID).WithCode("enrolment_withdrawn")
	}
	return &l, nil
}

// learnerLesson finds a lesson in the course's latest published version
// (404 otherwise: a draft lesson, one removed since, another course's).
func learnerLesson(ctx context.Context, tx pgx.Tx, courseID, lessonID string) (ContentLesson, string, error) {
	content, err := publishedContent(ctx, tx, courseID)
	if err != nil {
		return ContentLesson{}, "", err
	}
	for _, m := range content.Modules {
		for _, l := range m.Lessons {
			if l.ID == lessonID {
				return l, m.ID, nil
			}
		}
	}
	return ContentLesson{}, "", sdk.Errorf(sdk.ErrNotFound, "no lesson %s in the published course", lessonID)
}

// lessonRow reads the enrolment's state on a lesson (zero when it has
// none yet).
func lessonRow(ctx context.Context, tx pgx.Tx, enrolmentID, lessonID string) (spent int, completed *time.Time, err error) {
	err = tx.QueryRow(ctx, `SELECT time_spent_seconds, completed_at FROM lesson_progress WHERE enrolment_id = $1 AND lesson_id = $2`,
		enrolmentID, lessonID).Scan(&spent, &completed)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if completed != nil {
		*completed = completed.UTC()
	}
	return spent, completed, err
}

// addLessonTime adds seconds (and, when completedAt is set, the completion)
// to the enrolment's lesson, returning the lesson's totals. The total stops
// at the column's range rather than failing.
func addLessonTime(ctx context.Context, tx pgx.Tx, enrolmentID, lessonID string, seconds int, completedAt *time.Time) (int, *time.Time, error) {
	var spent int
	var completed *time.Time
	err := tx.QueryRow(ctx, `
		INSERT INTO lesson_progress (enrolment_id, lesson_id, time_spent_seconds, completed_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (enrolment_id, lesson_id) DO UPDATE SET
			time_spent_seconds = least(lesson_progress.time_spent_seconds::bigint + EXCLUDED.time_spent_seconds, 2147483647),
			completed_at = coalesce(lesson_progress.completed_at, EXCLUDED.completed_at),
			updated_at = EXCLUDED.updated_at
		RETURNING time_spent_seconds, completed_at`,
		enrolmentID, lessonID, seconds, completedAt, now()).Scan(&spent, &completed)
	if err != nil {
		return 0, nil, fmt.Errorf("recording lesson %s: %w", lessonID, err)
	}
	if completed != nil {
		*completed = completed.UTC()
	}
	return spent, completed, nil
}

// readSnapshot reads an enrolment's progress snapshot, nil when it has
// none (it never had a seat).
func readSnapshot(ctx context.Context, tx pgx.Tx, enrolmentID string) (*Progress, error) {
	pr := Progress{EnrolmentID: enrolmentID}
	err := tx.QueryRow(ctx, `
		SELECT course_id, version, lessons_completed, lessons_required, assessments_passed, assessments_required,
		       percent, time_spent_seconds, last_activity_at, completed_at
		FROM course_progress WHERE enrolment_id = $1`, enrolmentID).
		Scan(&pr.CourseID, &pr.Version, &pr.LessonsCompleted, &pr.LessonsRequired, &pr.AssessmentsPassed, &pr.AssessmentsRequired,
			&pr.Percent, &pr.TimeSpentSeconds, &pr.LastActivityAt, &pr.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the progress of enrolment %s: %w", enrolmentID, err)
	}
	for _, t := range []*time.Time{pr.LastActivityAt, pr.CompletedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return &pr, nil
}

// completeLesson handles POST
// /api/v1/enrolments/{enrolment_id}/lessons/{lesson_id}/complete. The
// first completion records it, publishes courses.lesson.completed.v1 and
// refreshes the snapshot (which may complete the course); completing again
// answers the same state and publishes nothing.
func (p *Plugin) completeLesson(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	enrolmentID, lessonID, err := enrolmentLessonParams(req)
	if err != nil {
		return nil, err
	}
	var in CompleteLesson
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var out LessonProgress
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		l, err := lockLearning(ctx, tx, req.Principal, enrolmentID)
		if err != nil {
			return err
		}
		lesson, moduleID, err := learnerLesson(ctx, tx, l.CourseID, lessonID)
		if err != nil {
			return err
		}
		out.Lesson = LessonState{LessonID: lesson.ID, ModuleID: moduleID, Title: lesson.Title, Required: lesson.Required}
		spent, completed, err := lessonRow(ctx, tx, enrolmentID, lessonID)
		if err != nil {
			return err
		}
		if completed != nil { // completed before: the same answer, no event
			out.Lesson.TimeSpentSeconds, out.Lesson.CompletedAt = spent, completed
			if out.Progress, err = readSnapshot(ctx, tx, enrolmentID); err != nil || out.Progress != nil {
				return err
			}
			// An enrolment written without its snapshot (by SQL, before
			// this code): make it now.
			out.Progress, err = refreshProgress(ctx, tx, req, enrolmentID)
			return err
		}
		if err := checkLessonPrerequisites(ctx, tx, enrolmentID, lesson); err != nil {
			return err
		}
		at := now()
		if out.Lesson.TimeSpentSeconds, out.Lesson.CompletedAt, err = addLessonTime(ctx, tx, enrolmentID, lessonID, in.TimeSpentSeconds, &at); err != nil {
			return err
		}
		err = req.Publish(ctx, tx, EventLessonCompleted, LessonCompleted{
			EnrolmentID: enrolmentID, CourseID: l.CourseID, LessonID: lessonID, UserID: l.UserID,
			TimeSpentSeconds: out.Lesson.TimeSpentSeconds, CompletedAt: at,
		})
		if err != nil {
			return err
		}
		out.Progress, err = refreshProgress(ctx, tx, req, enrolmentID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// checkLessonPrerequisites refuses (409 lesson_prerequisites_incomplete,
// naming them) a lesson whose prerequisite lessons in the published version
// the enrolment has not completed.
func checkLessonPrerequisites(ctx context.Context, tx pgx.Tx, enrolmentID string, lesson ContentLesson) error {
	if len(lesson.Prerequisites) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `
		SELECT r.id::text FROM unnest($2::uuid[]) WITH ORDINALITY AS r (id, n)
		WHERE NOT EXISTS (SELECT 1 FROM lesson_progress
		                  WHERE enrolment_id = $1 AND lesson_id = r.id AND completed_at IS NOT NULL)
		ORDER BY r.n`, enrolmentID, lesson.Prerequisites)
	if err != nil {
		return err
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("checking lesson prerequisites: %w", err)
	}
	if len(missing) == 0 {
		return nil
	}
	fields := make([]sdk.FieldError, len(missing))
	for i, id := range missing {
		fields[i] = sdk.FieldError{Field: fmt.Sprintf("prerequisites.%d", i), Message: id}
	}
	e := sdk.Errorf(sdk.ErrConflict, "complete these lessons first: %s", strings.Join(missing, ", ")).WithCode("lesson_prerequisites_incomplete")
	e.Fields = fields
	return e
}

// lessonTime handles POST
// /api/v1/enrolments/{enrolment_id}/lessons/{lesson_id}/time: time spent,
// without completing the lesson.
func (p *Plugin) lessonTime(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	enrolmentID, lessonID, err := enrolmentLessonParams(req)
	if err != nil {
		return nil, err
	}
	var in LessonTime
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var out LessonProgress
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		l, err := lockLearning(ctx, tx, req.Principal, enrolmentID)
		if err != nil {
			return err
		}
		lesson, moduleID, err := learnerLesson(ctx, tx, l.CourseID, lessonID)
		if err != nil {
			return err
		}
		out.Lesson = LessonState{LessonID: lesson.ID, ModuleID: moduleID, Title: lesson.Title, Required: lesson.Required}
		if out.Lesson.TimeSpentSeconds, out.Lesson.CompletedAt, err = addLessonTime(ctx, tx, enrolmentID, lessonID, in.Seconds, nil); err != nil {
			return err
		}
		out.Progress, err = refreshProgress(ctx, tx, req, enrolmentID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func enrolmentLessonParams(req *sdk.Request) (string, string, error) {
	enrolmentID, err := req.UUIDParam("enrolment_id")
	if err != nil {
		return "", "", err
	}
	lessonID, err := req.UUIDParam("lesson_id")
	if err != nil {
		return "", "", err
	}
	return enrolmentID, lessonID, nil
}

// enrolmentProgress handles GET /api/v1/enrolments/{enrolment_id}/progress:
// the snapshot and each lesson of the version it was computed against (the
// latest published one, or the snapshot's own when the course has since
// been unpublished). A waitlisted enrolment has none yet (409
// enrolment_waitlisted); a withdrawn one shows where the learner stopped.
func (p *Plugin) enrolmentProgress(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	enrolmentID, err := req.UUIDParam("enrolment_id")
	if err != nil {
		return nil, err
	}
	var out EnrolmentProgress
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var userID, status string
		err := tx.QueryRow(ctx, `SELECT user_id, status FROM enrolments WHERE id = $1`, enrolmentID).Scan(&userID, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrNotFound, "no enrolment %s", enrolmentID)
		}
		if err != nil {
			return err
		}
		me := req.Principal
		if !(me.IsUser() && me.UserID == userID) && !me.Can(PermEnrolManage) {
			return sdk.Errorf(sdk.ErrNotFound, "no enrolment %s", enrolmentID)
		}
		if out.Progress, err = readSnapshot(ctx, tx, enrolmentID); err != nil {
			return err
		}
		if out.Progress == nil {
			if status == enrolWaitlisted {
				return sdk.Errorf(sdk.ErrConflict, "enrolment %s is on a cohort's waitlist: progress starts with a seat", enrolmentID).WithCode("enrolment_waitlisted")
			}
			return sdk.Errorf(sdk.ErrNotFound, "enrolment %s has no progress: it never had a seat", enrolmentID)
		}
		content, err := publishedContent(ctx, tx, out.Progress.CourseID)
		if errors.Is(err, sdk.ErrNotFound) {
			content, err = versionContent(ctx, tx, out.Progress.CourseID, out.Progress.Version)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT lesson_id::text, time_spent_seconds, completed_at FROM lesson_progress WHERE enrolment_id = $1`, enrolmentID)
		if err != nil {
			return err
		}
		type state struct {
			spent int
			done  *time.Time
		}
		states := map[string]state{}
		for rows.Next() {
			var id string
			var s state
			if err := rows.Scan(&id, &s.spent, &s.done); err != nil {
				rows.Close()
				return err
			}
			if s.done != nil {
				*s.done = s.done.UTC()
			}
			states[id] = s
		}
		if err := rows.Err(); err != nil {
			return err
		}
		out.Lessons = []LessonState{}
		for _, m := range content.Modules {
			for _, l := range m.Lessons {
				s := states[l.ID]
				out.Lessons = append(out.Lessons, LessonState{
					LessonID: l.ID, ModuleID: m.ID, Title: l.Title, Required: l.Required, CompletedAt: s.done, TimeSpentSeconds: s.spent,
				})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
