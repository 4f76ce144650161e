package courses

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// OrderPaid is what the plugin reads of commerce.order.paid.v1, the
// commerce plugin's event for a paid order. A course bought is an item
// with a course_id (and optionally the cohort chosen); items without a
// course_id are other products and are ignored, as are the items' other
// fields (price, quantity...). The publisher may add fields; it must keep
// these:
//
//	{"order_id": "ord_123", "user_id": "<uuid of the buyer>",
//	 "items": [{"course_id": "<uuid>", "cohort_id": "<uuid, optional>"}]}
type OrderPaid struct {
	OrderID string          `json:"order_id"`
	UserID  string          `json:"user_id"`
	Items   []OrderPaidItem `json:"items"`
}

// OrderPaidItem is one item of a paid order.
type OrderPaidItem struct {
	CourseID string `json:"course_id,omitempty"`
	CohortID string `json:"cohort_id,omitempty"`
}

// validate normalises the IDs and says what is malformed.
func (o *OrderPaid) validate() error {
	var bad []sdk.FieldError
	o.OrderID = strings.TrimSpace(o.OrderID)
	if o.OrderID == "" || len(o.OrderID) > 200 {
		bad = append(bad, sdk.FieldError{Field: "order_id", Message: "is required, at most 200 characters"})
	}
	var ok bool
	if o.UserID, ok = sdk.NormalizeUUID(strings.TrimSpace(o.UserID)); !ok {
		bad = append(bad, sdk.FieldError{Field: "user_id", Message: "is required and must be a UUID"})
	}
	for i := range o.Items {
		it := &o.Items[i]
		if it.CourseID != "" {
			if it.CourseID, ok = sdk.NormalizeUUID(strings.TrimSpace(it.CourseID)); !ok {
				bad = append(bad, sdk.FieldError{Field: fmt.Sprintf("items.%d.course_id", i), Message: "must be a UUID"})
			}
		}
		if it.CohortID != "" {
			if it.CohortID, ok = sdk.NormalizeUUID(strings.TrimSpace(it.CohortID)); !ok {
				bad = append(bad, sdk.FieldError{Field: fmt.Sprintf("items.%d.cohort_id", i), Message: "must be a UUID"})
			}
		}
	}
	if len(bad) > 0 {
		return sdk.Invalid(bad...)
	}
	return nil
}

// orderPaid handles commerce.order.paid.v1: the buyer is enrolled (source
// order) in each course the order bought, in one transaction with the
// event's inbox entry, so a redelivery enrols nobody twice; the unique
// index enrolments_order makes an order enrol a learner in a course once
// even as a new event. A learner already enrolled is left as they are.
// Publication and self-enrolment are the commerce plugin's business (it
// sold the course); prerequisites are not checked either: a purchase is
// not refused after the money is taken.
//
// What cannot succeed on a retry is skipped with a warning: a buyer who is
// not a member of the institution, a course that does not exist in the
// institution or is not published. Malformed data (no
// order ID, a user ID or course ID that is not a UUID) is an error: the
// kernel retries, then dead-letters the event, where an operator sees it.
//
// An item naming no cohort of a course that runs in cohorts gets the
// soonest cohort that has not ended with a seat free, else the soonest that
// has not ended (waitlisted); a named cohort of another course is replaced
// the same way. With no cohort left to join, the learner is enrolled
// without one, with a warning.
func (p *Plugin) orderPaid(ctx context.Context, ev *sdk.Event) error {
	if ev.TenantID == "" {
		return fmt.Errorf("event %s: a paid order belongs to an institution, but the event names none", ev.ID)
	}
	var o OrderPaid
	if err := ev.Decode(&o); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return fmt.Errorf("event %s: %w", ev.ID, err)
	}
	log := p.env.Logger.With("event_id", ev.ID, "tenant_id", ev.TenantID, "order_id", o.OrderID, "user_id", o.UserID)
	// Before the transaction: a round trip to the kernel. A buyer who is
	// not a member of the institution (no one, or another institution's
	// user) is enrolled nowhere: a retry would not change that.
	m, err := p.membership(ctx, ev.TenantID, o.UserID)
	if err != nil {
		return err
	}
	if !m.Member {
		log.Warn("a paid order names a buyer who is not a member of the institution: skipped")
		return nil
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		for _, it := range o.Items {
			if it.CourseID == "" {
				continue // not a course: another plugin's product
			}
			c, err := loadCourse(ctx, tx, it.CourseID, false)
			if errors.Is(err, sdk.ErrNotFound) {
				log.Warn("a paid order names a course the institution does not have: skipped", "course_id", it.CourseID)
				continue
			}
			if err != nil {
				return err
			}
			if c.Status != "published" {
				log.Warn("a paid order names a course that is not published: skipped", "course_id", it.CourseID, "status", c.Status)
				continue
			}
			if live, err := liveEnrolment(ctx, tx, it.CourseID, o.UserID); err != nil {
				return err
			} else if live != "" {
				continue // enrolled already (by themselves, an admin or this order)
			}
			cohortID, err := orderCohort(ctx, tx, it)
			if err != nil {
				return err
			}
			if it.CohortID != "" && cohortID != it.CohortID {
				log.Warn("a paid order names a cohort of another course: chose one", "course_id", it.CourseID, "cohort_id", it.CohortID, "chosen", cohortID)
			}
			if cohortID == "" && it.CohortID == "" {
				var hasCohorts bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cohorts WHERE course_id = $1)`, it.CourseID).Scan(&hasCohorts); err != nil {
					return err
				}
				if hasCohorts {
					log.Warn("every cohort of a bought course has ended: enrolled without a cohort", "course_id", it.CourseID)
				}
			}
			_, err = insertEnrolment(ctx, tx, ev, newEnrolment{
				courseID: it.CourseID, cohortID: cohortID, userID: o.UserID,
				source: enrolByOrder, orderID: o.OrderID, enrolledBy: "event:" + ev.ID,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// orderCohort is the cohort an order item enrols in: the one it names, if
// it belongs to the course, else the soonest-starting cohort that has not
// ended with a free seat (and nobody waiting), else the soonest that has
// not ended; "" for none.
func orderCohort(ctx context.Context, tx pgx.Tx, it OrderPaidItem) (string, error) {
	if it.CohortID != "" {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cohorts WHERE id = $1 AND course_id = $2)`, it.CohortID, it.CourseID).Scan(&ok)
		if err != nil || ok {
			return it.CohortID, err
		}
	}
	var id string
	err := tx.QueryRow(ctx, `
		SELECT c.id FROM cohorts c
		WHERE c.course_id = $1 AND c.ends_at > now()
		ORDER BY (c.seat_limit IS NULL OR (
		            NOT EXISTS (SELECT 1 FROM enrolments w WHERE w.cohort_id = c.id AND w.status = 'waitlisted')
		            AND c.seat_limit > (SELECT count(*) FROM enrolments e WHERE e.cohort_id = c.id AND e.status IN ('active', 'completed'))
		         )) DESC, c.starts_at, c.id
		LIMIT 1`, it.CourseID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// OrderRefunded is what the plugin reads of commerce.order.refunded.v1,
// the commerce plugin's event for an order refunded in full, and of
// commerce.subscription.ended.v1, for the order of a subscription that
// ended: the order's ID and the buyer. The publisher may add fields.
//
//	{"order_id": "<the order's ID>", "user_id": "<uuid of the buyer>"}
type OrderRefunded struct {
	OrderID string `json:"order_id"`
	UserID  string `json:"user_id"`
}

// orderRefunded handles commerce.order.refunded.v1 and
// commerce.subscription.ended.v1 (both name the order and the buyer): the
// live enrolments
// (active or waitlisted) the order made are withdrawn, each publishing
// courses.enrolment.withdrawn.v1 (with the order's ID), so a seat freed in
// a cohort goes to the waitlist through the promote-waitlist job. A
// completed enrolment stays completed (its record and certificate are
// history), and enrolments the learner made otherwise are not touched. In
// ev.Tx: a redelivered event changes nothing. Malformed data fails the
// delivery (retried, then dead-lettered).
func (p *Plugin) orderRefunded(ctx context.Context, ev *sdk.Event) error {
	if ev.TenantID == "" {
		return fmt.Errorf("event %s: a refunded order belongs to an institution, but the event names none", ev.ID)
	}
	var o OrderRefunded
	if err := ev.Decode(&o); err != nil {
		return err
	}
	o.OrderID = strings.TrimSpace(o.OrderID)
	if o.OrderID == "" || len(o.OrderID) > 200 {
		return fmt.Errorf("event %s: order_id is required, at most 200 characters", ev.ID)
	}
	var ok bool
	if o.UserID, ok = sdk.NormalizeUUID(strings.TrimSpace(o.UserID)); !ok {
		return fmt.Errorf("event %s: user_id is required and must be a UUID", ev.ID)
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT e.id, e.course_id, coalesce(e.cohort_id::text, ''), e.source,
			       e.status = 'active' AND coalesce(c.seat_limit IS NOT NULL, false)
			FROM enrolments e LEFT JOIN cohorts c ON c.id = e.cohort_id
			WHERE e.order_id = $1 AND e.user_id = $2 AND e.source = 'order' AND e.status IN ('active', 'waitlisted')
			ORDER BY e.id FOR UPDATE OF e`, o.OrderID, o.UserID)
		if err != nil {
			return err
		}
		type live struct {
			EnrolmentChanged
			freed bool
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (live, error) {
			var l live
			return l, r.Scan(&l.EnrolmentID, &l.CourseID, &l.CohortID, &l.Source, &l.freed)
		})
		if err != nil {
			return fmt.Errorf("reading the enrolments of refunded order %s: %w", o.OrderID, err)
		}
		for _, l := range list {
			if _, err := tx.Exec(ctx, `UPDATE enrolments SET status = 'withdrawn', withdrawn_at = $2 WHERE id = $1`, l.EnrolmentID, now()); err != nil {
				return err
			}
			ch := l.EnrolmentChanged
			ch.UserID, ch.Status, ch.FreedSeat, ch.OrderID = o.UserID, enrolWithdrawn, l.freed, o.OrderID
			if err := ev.Publish(ctx, tx, EventEnrolmentWithdrawn, ch); err != nil {
				return err
			}
		}
		return nil
	})
}
