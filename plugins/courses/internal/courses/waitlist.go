package courses

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// promoteWaitlist is the promote-waitlist job, run on
// courses.enrolment.withdrawn.v1: when the withdrawal freed a seat in a
// cohort, the oldest waitlisted enrolments of the cohort get the free
// seats. It runs in a job rather than in the withdrawal's request so that
// a withdrawal stays quick and a failure here is retried on its own. A
// re-run (a retry, a redelivered event) finds no free seat and promotes
// nobody.
func (p *Plugin) promoteWaitlist(ctx context.Context, run *sdk.JobRun) error {
	if run.Event == nil {
		return sdk.Errorf(sdk.ErrInvalid, "promote-waitlist runs on %s; for every cohort at once run %s", EventEnrolmentWithdrawn, JobPromoteWaitlists)
	}
	var ev EnrolmentChanged
	if err := run.Event.Decode(&ev); err != nil {
		return err
	}
	if !ev.FreedSeat || ev.CohortID == "" {
		run.SetOutput("no seat freed")
		return nil
	}
	cohortID, ok := sdk.NormalizeUUID(ev.CohortID)
	if !ok {
		return fmt.Errorf("event %s: cohort_id %q is not a UUID", run.Event.ID, ev.CohortID)
	}
	var n int
	err := run.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		n, err = promoteCohort(ctx, tx, run, cohortID)
		return err
	})
	if err != nil {
		return err
	}
	run.SetOutput(fmt.Sprintf("promoted %d", n))
	return nil
}

// promoteWaitlists is the scheduled promote-waitlists job: every cohort of
// the institution with free seats and people waiting is filled from its
// waitlist (after a seat limit was raised or removed, or a missed
// promote-waitlist run). Each cohort is filled in its own transaction, so
// one failing cohort does not hold back the others.
func (p *Plugin) promoteWaitlists(ctx context.Context, run *sdk.JobRun) error {
	var cohorts []string
	err := run.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT c.id::text FROM cohorts c JOIN courses co ON co.id = c.course_id AND co.status = 'published'
			WHERE EXISTS (SELECT 1 FROM enrolments w WHERE w.cohort_id = c.id AND w.status = 'waitlisted')
			  AND (c.seat_limit IS NULL OR c.seat_limit >
			       (SELECT count(*) FROM enrolments e WHERE e.cohort_id = c.id AND e.status IN ('active', 'completed')))
			ORDER BY c.starts_at, c.id`)
		if err != nil {
			return err
		}
		cohorts, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return fmt.Errorf("finding cohorts with free seats: %w", err)
	}
	total := 0
	var errs []error
	for _, id := range cohorts {
		err := run.Tx(ctx, func(tx pgx.Tx) error {
			n, err := promoteCohort(ctx, tx, run, id)
			total += n
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cohort %s: %w", id, err))
		}
	}
	run.SetOutput(fmt.Sprintf("promoted %d", total))
	return errors.Join(errs...)
}

// promoteCohort gives the cohort's free seats to its oldest waitlisted
// enrolments (by waitlisted_at, then ID), in tx: each becomes active, gets
// its progress snapshot and courses.enrolment.promoted.v1 is published. It
// takes the cohort's lock first, as enrolments do, so seats are counted by
// one transaction at a time. A cohort of a course that is no longer
// published promotes nobody: there is nothing to learn there now. It
// returns how many it promoted.
func promoteCohort(ctx context.Context, tx pgx.Tx, s sdk.Scope, cohortID string) (int, error) {
	var limit *int
	var published bool
	err := tx.QueryRow(ctx, `
		SELECT c.seat_limit, co.status = 'published'
		FROM cohorts c JOIN courses co ON co.id = c.course_id
		WHERE c.id = $1 FOR UPDATE OF c`, cohortID).Scan(&limit, &published)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil // deleted with its course since
	}
	if err != nil {
		return 0, fmt.Errorf("locking cohort %s: %w", cohortID, err)
	}
	if !published {
		return 0, nil
	}
	var free *int // nil: no limit, every waiter gets a seat
	if limit != nil {
		var taken int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM enrolments WHERE cohort_id = $1 AND status IN ('active', 'completed')`, cohortID).Scan(&taken); err != nil {
			return 0, fmt.Errorf("counting the seats of cohort %s: %w", cohortID, err)
		}
		n := *limit - taken
		if n <= 0 {
			return 0, nil
		}
		free = &n
	}
	rows, err := tx.Query(ctx, `
		SELECT id::text, course_id::text, user_id::text, source, coalesce(order_id, '') FROM enrolments
		WHERE cohort_id = $1 AND status = 'waitlisted'
		ORDER BY waitlisted_at, id LIMIT $2 FOR UPDATE`, cohortID, free)
	if err != nil {
		return 0, err
	}
	waiters, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EnrolmentChanged, error) {
		e := EnrolmentChanged{CohortID: cohortID, Status: enrolActive}
		return e, r.Scan(&e.EnrolmentID, &e.CourseID, &e.UserID, &e.Source, &e.OrderID)
	})
	if err != nil {
		return 0, fmt.Errorf("reading the waitlist of cohort %s: %w", cohortID, err)
	}
	for _, w := range waiters {
		if _, err := tx.Exec(ctx, `UPDATE enrolments SET status = 'active', activated_at = $2 WHERE id = $1`, w.EnrolmentID, now()); err != nil {
			return 0, fmt.Errorf("promoting enrolment %s: %w", w.EnrolmentID, err)
		}
		if err := s.Publish(ctx, tx, EventEnrolmentPromoted, w); err != nil {
			return 0, err
		}
		if _, err := refreshProgress(ctx, tx, s, w.EnrolmentID); err != nil {
			return 0, err
		}
	}
	return len(waiters), nil
}
