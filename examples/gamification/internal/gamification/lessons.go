package gamification

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// LessonCompleted is what the plugin reads of a courses.lesson.completed.v1
// event. The publisher may add fields to the type; it never removes these.
type LessonCompleted struct {
	UserID   string `json:"user_id"`
	CourseID string `json:"course_id"`
	LessonID string `json:"lesson_id"`
}

func (l *LessonCompleted) validate() error {
	var bad []sdk.FieldError
	for _, f := range []struct{ name, value string }{{"user_id", l.UserID}, {"course_id", l.CourseID}, {"lesson_id", l.LessonID}} {
		switch {
		case f.value == "":
			bad = append(bad, sdk.FieldError{Field: f.name, Message: "is required"})
		case !uuidPattern.MatchString(f.value):
			bad = append(bad, sdk.FieldError{Field: f.name, Message: "must be a UUID"})
		}
	}
	if len(bad) > 0 {
		return sdk.Invalid(bad...)
	}
	return nil
}

// PointsAwarded is the data of gamification.points.awarded.v1
// (awardedEventSchema), published with every award.
type PointsAwarded struct {
	AwardID  string `json:"award_id"`
	UserID   string `json:"user_id"`
	Points   int    `json:"points"`
	Reason   string `json:"reason,omitempty"`
	LessonID string `json:"lesson_id,omitempty"` // awards for a completed lesson
	Total    int64  `json:"total"`               // the user's points after the award
}

// lessonCompleted handles courses.lesson.completed.v1: the member earns the
// institution's points_per_lesson, and gamification.points.awarded.v1 is
// published in the same transaction as the award.
//
// Delivery is at least once. ev.Tx records the event's ID in the plugin's
// inbox in the award's transaction, so a redelivered event awards nothing;
// the unique index awards_lesson also makes a lesson pay once when
// completed again (a new event).
func (p *Plugin) lessonCompleted(ctx context.Context, ev *sdk.Event) error {
	if ev.TenantID == "" {
		return fmt.Errorf("event %s: a completed lesson belongs to an institution, but the event names none", ev.ID)
	}
	var in LessonCompleted
	if err := ev.Decode(&in); err != nil {
		return err
	}
	// An error is retried, then dead-lettered, where an operator sees it:
	// better than awarding points for data the plugin does not understand.
	if err := in.validate(); err != nil {
		return fmt.Errorf("event %s: %w", ev.ID, err)
	}
	in.UserID, in.LessonID = strings.ToLower(in.UserID), strings.ToLower(in.LessonID)

	// Before the transaction: asking the kernel is a round trip, and a
	// transaction should not stay open across it.
	cfg, enabled, err := p.tenantConfig(ctx, ev.TenantID)
	if err != nil {
		return err
	}
	if !enabled || cfg.PointsPerLesson == 0 {
		return nil // turned off since the event was sent, or no points for lessons here
	}

	return ev.Tx(ctx, func(tx pgx.Tx) error {
		a := Award{UserID: in.UserID, Points: cfg.PointsPerLesson, Reason: "completed lesson " + in.LessonID, AwardedBy: "event:" + ev.ID}
		err := tx.QueryRow(ctx, `
			INSERT INTO awards (tenant_id, user_id, points, reason, awarded_by, lesson_id)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant_id, user_id, lesson_id) WHERE lesson_id IS NOT NULL DO NOTHING
			RETURNING id, created_at`,
			ev.TenantID, a.UserID, a.Points, a.Reason, a.AwardedBy, in.LessonID).Scan(&a.ID, &a.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // this lesson earned the member points before
		}
		if err != nil {
			return err
		}
		if a.Total, err = addToTotal(ctx, tx, ev.TenantID, a.UserID, a.Points); err != nil {
			return err
		}
		// In the award's transaction: the event is relayed if and only if
		// the award commits.
		return ev.Publish(ctx, tx, EventPointsAwarded, PointsAwarded{
			AwardID: a.ID, UserID: a.UserID, Points: a.Points, Reason: a.Reason, LessonID: in.LessonID, Total: a.Total,
		})
	})
}

// addToTotal adds points to the user's running total and returns the new
// total.
func addToTotal(ctx context.Context, tx pgx.Tx, tenantID, userID string, points int) (int64, error) {
	var total int64
	err := tx.QueryRow(ctx, `
		INSERT INTO totals (tenant_id, user_id, points) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, user_id) DO UPDATE
			SET points = totals.points + EXCLUDED.points, updated_at = now()
		RETURNING points`,
		tenantID, userID, points).Scan(&total)
	return total, err
}
