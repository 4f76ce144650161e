package gamification

import (
	"context"
	"errors"
	"fmt"

	"github.com/edulure/edulure/sdk"
)

// LessonCompleted is what the plugin reads of a courses.lesson.completed.v1
// event. The publisher may add fields to the type; it never removes these.
type LessonCompleted struct {
	UserID   string `json:"user_id"`
	CourseID string `json:"course_id"`
	LessonID string `json:"lesson_id"`
}

// normalize checks the IDs and puts them in lowercase, listing every field
// that is wrong.
func (l *LessonCompleted) normalize() error {
	var bad []sdk.FieldError
	for _, f := range []struct {
		name string
		id   *string
	}{{"user_id", &l.UserID}, {"course_id", &l.CourseID}, {"lesson_id", &l.LessonID}} {
		id, ok := sdk.NormalizeUUID(*f.id)
		switch {
		case *f.id == "":
			bad = append(bad, sdk.FieldError{Field: f.name, Message: "is required"})
		case !ok:
			bad = append(bad, sdk.FieldError{Field: f.name, Message: "must be a UUID"})
		}
		*f.id = id
	}
	if len(bad) > 0 {
		return sdk.Invalid(bad...)
	}
	return nil
}

// lessonCompleted handles courses.lesson.completed.v1: the member earns the
// institution's points_per_lesson, and gamification.points.awarded.v1 is
// published in the same transaction as the award (grant, with the event as
// its Scope).
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
	if err := in.normalize(); err != nil {
		return fmt.Errorf("event %s: %w", ev.ID, err)
	}
	// Read from the kernel, before the transaction: a call to the kernel
	// should not hold one open.
	cfg, err := sdk.Config[Config](ctx, ev)
	if err != nil {
		return err
	}
	if cfg.PointsPerLesson == 0 {
		return nil // no points for lessons here
	}
	a := Award{UserID: in.UserID, Points: cfg.PointsPerLesson, Reason: "completed lesson " + in.LessonID, AwardedBy: "event:" + ev.ID}
	_, err = p.grant(ctx, ev, &a, in.LessonID)
	if errors.Is(err, errNotMember) {
		// No longer a member (or never one): no points, and nothing a
		// retry would change.
		p.env.Logger.Warn("no points for a completed lesson: the user is not a member of the institution",
			"event_id", ev.ID, "tenant", ev.TenantID, "user_id", in.UserID, "request_id", ev.RequestID)
		return nil
	}
	return err
}
