package courses

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Progress is an enrolment's progress snapshot (course_progress).
type Progress struct {
	EnrolmentID         string     `json:"enrolment_id" format:"uuid"`
	CourseID            string     `json:"course_id" format:"uuid"`
	Version             int        `json:"version" minimum:"1" doc:"The published version the snapshot was computed against."`
	LessonsCompleted    int        `json:"lessons_completed" minimum:"0"`
	LessonsRequired     int        `json:"lessons_required" minimum:"0"`
	AssessmentsPassed   int        `json:"assessments_passed" minimum:"0"`
	AssessmentsRequired int        `json:"assessments_required" minimum:"0"`
	Percent             int        `json:"percent" minimum:"0" maximum:"100"`
	TimeSpentSeconds    int64      `json:"time_spent_seconds" minimum:"0"`
	LastActivityAt      *time.Time `json:"last_activity_at,omitempty"`
	CompletedAt         *time.Time `json:"completed_at,omitempty"`
}

// refreshProgress recomputes an enrolment's progress snapshot against the
// course's latest published version, in tx, after anything that moves it
// (a completed lesson, time spent, a quiz passed, an assignment graded).
// When every required lesson and assessment is done and the enrolment is
// active, the enrolment completes and courses.course.completed.v1 is
// published in the same transaction, with s (the request, event or job run
// doing the work) as its cause: the issue-certificate job runs on it.
// The caller holds the enrolment's row lock (SELECT ... FOR UPDATE), so two
// concurrent changes cannot both complete it.
func refreshProgress(ctx context.Context, tx pgx.Tx, s sdk.Scope, enrolmentID string) (*Progress, error) {
	var userID, courseID, status string
	err := tx.QueryRow(ctx, `SELECT user_id, course_id, status FROM enrolments WHERE id = $1`, enrolmentID).Scan(&userID, &courseID, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("enrolment %s vanished", enrolmentID)
	}
	if err != nil {
		return nil, err
	}
	content, err := publishedContent(ctx, tx, courseID)
	if err != nil {
		return nil, err
	}
	pr := &Progress{EnrolmentID: enrolmentID, CourseID: courseID, Version: content.Version}

	// Required lessons of the version, and those completed.
	var required []string
	for _, l := range content.Lessons() {
		if l.Required {
			required = append(required, l.ID)
		}
	}
	pr.LessonsRequired = len(required)
	err = tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE completed_at IS NOT NULL AND lesson_id = ANY($2::uuid[])),
		       coalesce(sum(time_spent_seconds), 0), max(updated_at)
		FROM lesson_progress WHERE enrolment_id = $1`, enrolmentID, required).
		Scan(&pr.LessonsCompleted, &pr.TimeSpentSeconds, &pr.LastActivityAt)
	if err != nil {
		return nil, fmt.Errorf("counting completed lessons: %w", err)
	}

	// Required assessments of the version, and those passed.
	var quizzes, assignments []string
	for _, q := range content.Quizzes {
		if q.Required {
			quizzes = append(quizzes, q.ID)
		}
	}
	for _, a := range content.Assignments {
		if a.Required {
			assignments = append(assignments, a.ID)
		}
	}
	pr.AssessmentsRequired = len(quizzes) + len(assignments)
	err = tx.QueryRow(ctx, `
		SELECT (SELECT count(DISTINCT quiz_id) FROM quiz_attempts
		         WHERE enrolment_id = $1 AND passed AND quiz_id = ANY($2::uuid[]))
		     + (SELECT count(*) FROM submissions
		         WHERE enrolment_id = $1 AND passed IS TRUE AND assignment_id = ANY($3::uuid[]))`,
		enrolmentID, quizzes, assignments).Scan(&pr.AssessmentsPassed)
	if err != nil {
		return nil, fmt.Errorf("counting passed assessments: %w", err)
	}

	done := pr.LessonsCompleted + pr.AssessmentsPassed
	total := pr.LessonsRequired + pr.AssessmentsRequired
	pr.Percent = 100
	if total > 0 {
		pr.Percent = done * 100 / total
	}
	complete := done == total && status == "active"
	at := now()
	if complete {
		if _, err := tx.Exec(ctx, `UPDATE enrolments SET status = 'completed', completed_at = $2 WHERE id = $1`, enrolmentID, at); err != nil {
			return nil, fmt.Errorf("completing enrolment: %w", err)
		}
		pr.CompletedAt = &at
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO course_progress (enrolment_id, course_id, user_id, version, lessons_completed, lessons_required,
		                             assessments_passed, assessments_required, percent, time_spent_seconds, last_activity_at, completed_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
		ON CONFLICT (enrolment_id) DO UPDATE SET
			version = EXCLUDED.version, lessons_completed = EXCLUDED.lessons_completed, lessons_required = EXCLUDED.lessons_required,
			assessments_passed = EXCLUDED.assessments_passed, assessments_required = EXCLUDED.assessments_required,
			percent = EXCLUDED.percent, time_spent_seconds = EXCLUDED.time_spent_seconds, last_activity_at = EXCLUDED.last_activity_at,
			completed_at = coalesce(course_progress.completed_at, EXCLUDED.completed_at), updated_at = now()
		RETURNING completed_at`,
		enrolmentID, courseID, userID, pr.Version, pr.LessonsCompleted, pr.LessonsRequired,
		pr.AssessmentsPassed, pr.AssessmentsRequired, pr.Percent, pr.TimeSpentSeconds, pr.LastActivityAt, pr.CompletedAt).Scan(&pr.CompletedAt)
	if err != nil {
		return nil, fmt.Errorf("writing the progress snapshot: %w", err)
	}
	if complete {
		err := s.Publish(ctx, tx, EventCourseCompleted, CourseCompleted{
			EnrolmentID: enrolmentID, CourseID: courseID, UserID: userID, Version: content.Version, CompletedAt: at,
		})
		if err != nil {
			return nil, err
		}
	}
	return pr, nil
}
