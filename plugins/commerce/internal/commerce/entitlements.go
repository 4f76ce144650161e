package commerce

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// enrolmentChanged is what the plugin reads of the courses plugin's
// courses.enrolment.created.v1, .promoted.v1 and .withdrawn.v1: the
// enrolments it made for orders (order_id, since courses 0.4.0).
type enrolmentChanged struct {
	EnrolmentID string `json:"enrolment_id"`
	CourseID    string `json:"course_id"`
	UserID      string `json:"user_id"`
	Status      string `json:"status"`
	Source      string `json:"source"`
	OrderID     string `json:"order_id"`
}

// onEnrolment keeps order_enrolments: what the courses plugin did with
// each order's courses, for the entitlement drift check. Enrolments not
// made for an order of this plugin are ignored.
func (p *Plugin) onEnrolment(ctx context.Context, ev *sdk.Event) error {
	var e enrolmentChanged
	if err := ev.Decode(&e); err != nil {
		return err
	}
	orderID, ok := sdk.NormalizeUUID(e.OrderID)
	if !ok || e.Source != "order" {
		return nil
	}
	enrolment, ok1 := sdk.NormalizeUUID(e.EnrolmentID)
	course, ok2 := sdk.NormalizeUUID(e.CourseID)
	user, ok3 := sdk.NormalizeUUID(e.UserID)
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("event %s: enrolment_id, course_id and user_id must be UUIDs", ev.ID)
	}
	switch e.Status {
	case "active", "waitlisted", "completed", "withdrawn":
	default:
		return fmt.Errorf("event %s: status %q is not an enrolment's", ev.ID, e.Status)
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO order_enrolments (order_id, course_id, enrolment_id, user_id, status)
			SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM orders WHERE id = $1)
			ON CONFLICT (order_id, course_id) DO UPDATE SET status = EXCLUDED.status, enrolment_id = EXCLUDED.enrolment_id, updated_at = now()
			WHERE order_enrolments.status <> 'withdrawn' OR EXCLUDED.status = 'withdrawn'`,
			orderID, course, enrolment, user, e.Status)
		return err
	})
}

// checkEntitlements compares paid and refunded orders with what the
// courses plugin did, for orders settled before grace ago: a paid order
// whose course has no enrolment is reported, and its paid event published
// again (courses enrols once per order and course, so this is safe); a
// refunded order whose enrolment is still live is reported, and its
// refunded event published again. Each anomaly (and so each repair) once.
func (p *Plugin) checkEntitlementDrift(ctx context.Context, tx pgx.Tx, s sdk.Scope, runID string, grace time.Duration) (repaired, anomalies int, err error) {
	cutoff := p.now().Add(-grace)
	rows, err := tx.Query(ctx, `
		SELECT o.id, e->>'course_id' FROM orders o JOIN order_items i ON i.order_id = o.id, jsonb_array_elements(i.entitlements) e
		WHERE o.status = 'paid' AND o.paid_at <= $1
		  AND NOT EXISTS (SELECT 1 FROM order_enrolments x WHERE x.order_id = o.id AND x.course_id = (e->>'course_id')::uuid)
		ORDER BY o.paid_at, o.id`, cutoff)
	if err != nil {
		return 0, 0, err
	}
	type miss struct{ order, course string }
	missing, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (miss, error) {
		var m miss
		return m, r.Scan(&m.order, &m.course)
	})
	if err != nil {
		return 0, 0, err
	}
	rows, err = tx.Query(ctx, `
		SELECT DISTINCT o.id FROM orders o JOIN order_enrolments x ON x.order_id = o.id
		WHERE o.status = 'refunded' AND o.refunded_at <= $1 AND x.status IN ('active', 'waitlisted')`, cutoff)
	if err != nil {
		return 0, 0, err
	}
	live, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, err
	}
	for _, m := range missing {
		isNew, err := p.newAnomaly(ctx, tx, s, anomalyInput{Kind: "entitlement_missing", ObjectType: "order", ObjectID: m.order + "/" + m.course, Repaired: true, RunID: runID,
			Detail: fmt.Sprintf("order %s is paid, but no enrolment in course %s was made for it: its %s event was published again", m.order, m.course, EventOrderPaid)})
		if err != nil || !isNew {
			if err != nil {
				return 0, 0, err
			}
			continue
		}
		anomalies++
		o, err := loadOrder(ctx, tx, m.order, false)
		if err != nil {
			return 0, 0, err
		}
		if err := s.Publish(ctx, tx, EventOrderPaid, OrderPaid{OrderID: o.ID, UserID: o.UserID, Currency: o.Currency, AmountTotal: o.AmountTotal, Items: o.paidItems()}); err != nil {
			return 0, 0, err
		}
		repaired++
	}
	for _, id := range live {
		isNew, err := p.newAnomaly(ctx, tx, s, anomalyInput{Kind: "entitlement_not_revoked", ObjectType: "order", ObjectID: id, Repaired: true, RunID: runID,
			Detail: fmt.Sprintf("order %s is refunded, but an enrolment it granted is live: its %s event was published again", id, EventOrderRefunded)})
		if err != nil {
			return 0, 0, err
		}
		if !isNew {
			continue
		}
		anomalies++
		o, err := loadOrder(ctx, tx, id, false)
		if err != nil {
			return 0, 0, err
		}
		if err := s.Publish(ctx, tx, EventOrderRefunded, OrderRefunded{OrderID: o.ID, UserID: o.UserID, Currency: o.Currency, AmountTotal: o.AmountTotal,
			AmountRefunded: o.AmountRefunded, Items: o.paidItems()}); err != nil {
			return 0, 0, err
		}
		repaired++
	}
	return repaired, anomalies, nil
}
