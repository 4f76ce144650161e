package commerce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// ReconciliationRun is one run of the reconcile-billing job.
type ReconciliationRun struct {
	ID           string     `json:"id" format:"uuid"`
	JobRunID     string     `json:"job_run_id,omitempty" doc:"The kernel's job run (GET /api/v1/jobs/commerce/reconcile-billing/runs/{run})."`
	Trigger      string     `json:"trigger" enum:"schedule,event,manual"`
	Status       string     `json:"status" enum:"running,succeeded,failed"`
	WindowStart  time.Time  `json:"window_start"`
	WindowEnd    time.Time  `json:"window_end"`
	EventsSeen   int        `json:"events_seen" doc:"Stripe events of the window."`
	EventsMissed int        `json:"events_missed" doc:"Of those, events the plugin had not received: processed now."`
	Repaired     int        `json:"repaired" doc:"Orders, subscriptions and entitlements set right."`
	Anomalies    int        `json:"anomalies" doc:"New anomalies reported."`
	Error        string     `json:"error,omitempty"`
	StartedAt    time.Time  `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
}

// ReconcileArgs are the arguments of a manual run of reconcile-billing
// (POST /api/v1/jobs/commerce/reconcile-billing/runs {"args": {...}}).
type ReconcileArgs struct {
	WindowHours  int  `json:"window_hours,omitempty" doc:"How far back to list Stripe's events: 24 when absent, at most 72."`
	GraceMinutes *int `json:"grace_minutes,omitempty" doc:"How long an order may be open, or a paid order wait for its enrolments, before it is looked at: 60 when absent."`
}

func (p *Plugin) reconciliationRoutes() []sdk.Route {
	return []sdk.Route{{
		Method: "GET", Path: "/api/v1/billing/reconciliations", Permission: PermBillingManage,
		Summary:  "Runs of the hourly reconciliation with Stripe, newest first: what each saw, repaired and reported. Start one with POST /api/v1/jobs/commerce/reconcile-billing/runs.",
		Response: sdk.Page[ReconciliationRun]{}, Paginated: true, Handler: p.listReconciliations,
	}}
}

// maxEvents bounds the events one run lists.
const maxEvents = 20000

// reconcile is the reconcile-billing job (the seed's
// BillingReconciliationJob), hourly for each institution with its Stripe
// key set. Each repair is its own transaction, so one failure holds back
// no other; a failure to reach Stripe fails the run, which the kernel
// retries.
//
//  1. Stripe's events of the window (24 hours) that the plugin never
//     received are stored and processed as a webhook would have been: a
//     missed checkout.session.completed pays its order and grants what it
//     bought, a missed expiry releases the promo code, and so on.
//  2. Pending orders whose checkout has expired are looked up at Stripe: a
//     paid session pays the order, an expired one closes it, and an order
//     whose session Stripe does not know is reported
//     (order_unknown_to_stripe). A pending order that never got a session
//     (its buyer left before Stripe answered) fails, and its promo code is
//     released.
//  3. Subscriptions whose period ended without news are fetched from
//     Stripe and their state applied (never reactivating a canceled one).
//  4. Entitlement drift: paid orders without their enrolments and refunded
//     orders with live ones (checkEntitlementDrift).
//  5. Stored events older than 30 days that were processed are deleted:
//     Stripe retries a webhook for 3 days at most.
func (p *Plugin) reconcile(ctx context.Context, run *sdk.JobRun) error {
	var args ReconcileArgs
	if run.Trigger == sdk.TriggerManual {
		if err := run.Decode(&args); err != nil {
			return err
		}
	}
	switch {
	case args.WindowHours == 0:
		args.WindowHours = 24
	case args.WindowHours < 0 || args.WindowHours > 72:
		return sdk.Invalid(sdk.FieldError{Field: "window_hours", Message: "must be 1 to 72"})
	}
	grace := 60 * time.Minute
	if args.GraceMinutes != nil {
		if *args.GraceMinutes < 0 || *args.GraceMinutes > 1440 {
			return sdk.Invalid(sdk.FieldError{Field: "grace_minutes", Message: "must be 0 to 1440"})
		}
		grace = time.Duration(*args.GraceMinutes) * time.Minute
	}
	cfg, err := sdk.Config[Config](ctx, run)
	if err != nil {
		return err
	}
	if cfg.StripeSecretKey == "" {
		run.SetOutput("the institution has no Stripe secret key: nothing to reconcile")
		return nil
	}
	key := cfg.StripeSecretKey
	now := p.now()
	r := ReconciliationRun{Trigger: string(run.Trigger), WindowStart: now.Add(-time.Duration(args.WindowHours) * time.Hour), WindowEnd: now}
	if err := run.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO reconciliation_runs (job_run_id, trigger, window_start, window_end) VALUES ($1, $2, $3, $4) RETURNING id`,
			truncate(run.ID, 100), r.Trigger, r.WindowStart, r.WindowEnd).Scan(&r.ID)
	}); err != nil {
		return err
	}
	err = p.reconcileSteps(ctx, run, key, &r, grace)
	status, msg := "succeeded", ""
	if err != nil {
		status, msg = "failed", truncate(err.Error(), 2000)
	}
	if ferr := run.Tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE reconciliation_runs SET status = $2, events_seen = $3, events_missed = $4, repaired = $5, anomalies = $6,
			error = $7, finished_at = now() WHERE id = $1`, r.ID, status, r.EventsSeen, r.EventsMissed, r.Repaired, r.Anomalies, msg)
		return err
	}); ferr != nil && err == nil {
		err = ferr
	}
	run.SetOutput(fmt.Sprintf("run %s: %d Stripe events, %d missed; %d repaired; %d anomalies", r.ID, r.EventsSeen, r.EventsMissed, r.Repaired, r.Anomalies))
	return err
}

func (p *Plugin) reconcileSteps(ctx context.Context, run *sdk.JobRun, key string, r *ReconciliationRun, grace time.Duration) error {
	// 1. Missed events.
	raws, err := p.stripe.events(ctx, key, r.WindowStart.Unix(), maxEvents)
	if err != nil {
		out, _ := stripeError("listing Stripe's events", err)
		return out
	}
	for _, raw := range raws {
		ev, stored, err := parseEvent(raw)
		if err != nil {
			continue // not an event the plugin could have stored either
		}
		r.EventsSeen++
		var repaired bool
		err = run.Tx(ctx, func(tx pgx.Tx) error {
			var id string
			err := tx.QueryRow(ctx, `INSERT INTO webhook_events (stripe_event_id, type, api_version, livemode, created, payload, source)
				VALUES ($1, $2, $3, $4, $5, $6, 'reconciliation') ON CONFLICT (tenant_id, stripe_event_id) DO NOTHING RETURNING id`,
				ev.ID, ev.Type, ev.APIVersion, ev.Livemode, ev.Created, stored).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // received (and processed, or on its way)
			}
			if err != nil {
				return err
			}
			r.EventsMissed++
			w, err := loadWebhookEvent(ctx, tx, id)
			if err != nil {
				return err
			}
			out, err := p.processIn(ctx, tx, run, w)
			var perm permanent
			if errors.As(err, &perm) {
				return p.recordFailure(ctx, tx, w, err, true)
			}
			if err != nil {
				return err
			}
			repaired = len(out.Changes) > 0
			return finishEvent(ctx, tx, w, out, nil)
		})
		if err != nil {
			return fmt.Errorf("processing missed Stripe event %s: %w", ev.ID, err)
		}
		if repaired {
			r.Repaired++
		}
	}

	// 2. Open orders.
	type open struct {
		id      string
		session *string
	}
	var orders []open
	now := p.now()
	if err := run.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, stripe_session_id FROM orders WHERE status = 'pending'
			AND ((stripe_session_id IS NULL AND created_at <= $1) OR (stripe_session_id IS NOT NULL AND session_expires_at <= $2))
			ORDER BY created_at`, now.Add(-grace), now)
		if err != nil {
			return err
		}
		orders, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (open, error) {
			var o open
			return o, row.Scan(&o.id, &o.session)
		})
		return err
	}); err != nil {
		return err
	}
	for _, o := range orders {
		var raw []byte
		found := true
		if o.session != nil {
			if raw, found, err = p.stripe.getSession(ctx, key, *o.session); err != nil {
				out, _ := stripeError("reading a checkout session", err)
				return out
			}
		}
		err := run.Tx(ctx, func(tx pgx.Tx) error {
			cur, err := loadOrder(ctx, tx, o.id, true)
			if err != nil || cur.Status != orderPending {
				return err
			}
			out := &outcome{}
			switch {
			case o.session == nil:
				err = closeOrder(ctx, tx, cur, orderFailed, "no Stripe checkout was created for it", p.now(), out)
			case !found:
				isNew, err := p.newAnomaly(ctx, tx, run, anomalyInput{Kind: "order_unknown_to_stripe", ObjectType: "order", ObjectID: cur.ID, RunID: r.ID,
					Detail: fmt.Sprintf("order %s is pending with checkout session %s, which Stripe does not know", cur.ID, *o.session)})
				if isNew {
					r.Anomalies++
				}
				return err
			default:
				cs, rerr := readSession(raw)
				if rerr != nil {
					return rerr
				}
				switch {
				case cs.Status == "complete" && (cs.PaymentStatus == "paid" || cs.PaymentStatus == "no_payment_required"):
					err = p.markPaid(ctx, tx, run, cur, "reconciliation: checkout session "+cs.ID+" is paid at Stripe", out)
				case cs.Status == "expired":
					err = closeOrder(ctx, tx, cur, orderExpired, "the checkout expired at Stripe (found by reconciliation)", p.now(), out)
				}
			}
			if err == nil && len(out.Changes) > 0 {
				r.Repaired++
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("reconciling order %s: %w", o.id, err)
		}
	}

	// 3. Subscriptions whose period ended without news.
	var subs []string
	if err := run.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT stripe_subscription_id FROM subscriptions WHERE status NOT IN ('canceled', 'incomplete_expired')
			AND current_period_end <= $1 ORDER BY current_period_end`, now.Add(-grace))
		if err != nil {
			return err
		}
		subs, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}); err != nil {
		return err
	}
	for _, id := range subs {
		raw, found, err := p.stripe.getSubscription(ctx, key, id)
		if err != nil {
			out, _ := stripeError("reading a subscription", err)
			return out
		}
		err = run.Tx(ctx, func(tx pgx.Tx) error {
			if !found {
				isNew, err := p.newAnomaly(ctx, tx, run, anomalyInput{Kind: "subscription_unknown_to_stripe", ObjectType: "subscription", ObjectID: id, RunID: r.ID,
					Detail: fmt.Sprintf("subscription %s is not canceled here, and Stripe does not know it", id)})
				if isNew {
					r.Anomalies++
				}
				return err
			}
			sub, err := readSubscription(raw)
			if err != nil {
				return err
			}
			out := &outcome{}
			if err := p.applySubscription(ctx, tx, run, sub, p.now().Unix(), "", out); err != nil {
				return err
			}
			if len(out.Changes) > 0 {
				r.Repaired++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reconciling subscription %s: %w", id, err)
		}
	}

	// 4. Entitlement drift.
	if err := run.Tx(ctx, func(tx pgx.Tx) error {
		repaired, anomalies, err := p.checkEntitlementDrift(ctx, tx, run, r.ID, grace)
		r.Repaired += repaired
		r.Anomalies += anomalies
		return err
	}); err != nil {
		return fmt.Errorf("checking entitlements: %w", err)
	}

	// 5. Old events.
	return run.Tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM webhook_events WHERE status IN ('processed', 'ignored') AND received_at < $1`, now.Add(-30*24*time.Hour))
		return err
	})
}

func (p *Plugin) listReconciliations(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	where, args := "true", []any{}
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where, args = "(started_at, id) < ($1, $2::uuid)", []any{at, id}
	}
	var items []ReconciliationRun
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, job_run_id, trigger, status, window_start, window_end, events_seen, events_missed, repaired, anomalies,
			error, started_at, finished_at FROM reconciliation_runs WHERE `+where+fmt.Sprintf(` ORDER BY started_at DESC, id DESC LIMIT %d`, page.Limit+1), args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReconciliationRun, error) {
			var r ReconciliationRun
			err := row.Scan(&r.ID, &r.JobRunID, &r.Trigger, &r.Status, &r.WindowStart, &r.WindowEnd, &r.EventsSeen, &r.EventsMissed, &r.Repaired,
				&r.Anomalies, &r.Error, &r.StartedAt, &r.FinishedAt)
			r.WindowStart, r.WindowEnd, r.StartedAt = r.WindowStart.UTC(), r.WindowEnd.UTC(), r.StartedAt.UTC()
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(r ReconciliationRun) []string { return sdk.TimeKey(r.StartedAt, r.ID) }))
}
