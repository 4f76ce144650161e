package courses

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// EventMemberRemoved is the kernel's event for a member who left or was
// removed from an institution.
const EventMemberRemoved = "tenancy.member.removed.v1"

// memberRemoved handles tenancy.member.removed.v1: the person's live
// enrolments (active or waitlisted) are withdrawn, each publishing
// courses.enrolment.withdrawn.v1, so the seats they held go to the
// waitlist through the promote-waitlist job; completed enrolments and
// their certificates stay. They stop teaching every course that has
// another instructor (a course they taught alone keeps them, for an admin
// to reassign). In ev.Tx: a redelivered event changes nothing.
func (p *Plugin) memberRemoved(ctx context.Context, ev *sdk.Event) error {
	if ev.TenantID == "" {
		return fmt.Errorf("event %s: a removed member belongs to an institution, but the event names none", ev.ID)
	}
	var in struct {
		UserID string `json:"user_id"`
	}
	if err := ev.Decode(&in); err != nil {
		return err
	}
	if !sdk.IsUUID(in.UserID) {
		return fmt.Errorf("event %s: user_id %q is not a UUID", ev.ID, in.UserID)
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT e.id, e.course_id, coalesce(e.cohort_id::text, ''), e.status, e.source, coalesce(e.order_id, ''),
			       e.status = 'active' AND coalesce(c.seat_limit IS NOT NULL, false)
			FROM enrolments e LEFT JOIN cohorts c ON c.id = e.cohort_id
			WHERE e.user_id = $1 AND e.status IN ('active', 'waitlisted')
			ORDER BY e.id FOR UPDATE OF e`, in.UserID)
		if err != nil {
			return err
		}
		type live struct {
			EnrolmentChanged
			freed bool
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (live, error) {
			var l live
			var status string
			err := r.Scan(&l.EnrolmentID, &l.CourseID, &l.CohortID, &status, &l.Source, &l.OrderID, &l.freed)
			return l, err
		})
		if err != nil {
			return fmt.Errorf("reading the enrolments of removed member %s: %w", in.UserID, err)
		}
		for _, l := range list {
			if _, err := tx.Exec(ctx, `UPDATE enrolments SET status = 'withdrawn', withdrawn_at = $2 WHERE id = $1`, l.EnrolmentID, now()); err != nil {
				return err
			}
			ch := l.EnrolmentChanged
			ch.UserID, ch.Status, ch.FreedSeat = in.UserID, "withdrawn", l.freed
			if err := ev.Publish(ctx, tx, EventEnrolmentWithdrawn, ch); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `
			DELETE FROM course_instructors ci WHERE ci.user_id = $1
			AND EXISTS (SELECT 1 FROM course_instructors o WHERE o.course_id = ci.course_id AND o.user_id <> $1)`, in.UserID)
		return err
	})
}
