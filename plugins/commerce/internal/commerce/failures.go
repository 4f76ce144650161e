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

// WebhookFailure is a Stripe event whose processing failed.
type WebhookFailure struct {
	ID             string     `json:"id" format:"uuid"`
	WebhookEventID string     `json:"webhook_event_id" format:"uuid"`
	StripeEventID  string     `json:"stripe_event_id"`
	Type           string     `json:"type"`
	Error          string     `json:"error"`
	Attempts       int        `json:"attempts"`
	Status         string     `json:"status" enum:"open,resolved"`
	FirstFailedAt  time.Time  `json:"first_failed_at"`
	LastFailedAt   time.Time  `json:"last_failed_at"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy     *string    `json:"resolved_by,omitempty" format:"uuid" doc:"Who replayed it; absent when a later delivery succeeded."`
}

// ReplayRequest is the body of POST
// /api/v1/billing/webhook-failures/{failure_id}/replay.
type ReplayRequest struct {
	DryRun bool `json:"dry_run,omitempty" doc:"Show what the replay would change, and change nothing."`
}

// ReplayResult says what a replay changed, or would change.
type ReplayResult struct {
	FailureID string   `json:"failure_id" format:"uuid"`
	DryRun    bool     `json:"dry_run"`
	Succeeded bool     `json:"succeeded" doc:"The event was processed (in a dry run: would be)."`
	Error     string   `json:"error,omitempty" doc:"Why processing failed again."`
	Changes   []Change `json:"changes"`
	Notes     []string `json:"notes"`
	Status    string   `json:"status" enum:"open,resolved" doc:"The failure's status after the replay."`
}

// ListFailuresQuery filters GET /api/v1/billing/webhook-failures.
type ListFailuresQuery struct {
	Status string `query:"status" enum:"open,resolved" doc:"open when absent."`
}

func (p *Plugin) failureRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "GET", Path: "/api/v1/billing/webhook-failures", Permission: PermBillingManage,
			Summary:  "Stripe events whose processing failed (open ones unless status says otherwise), the latest first, with the error.",
			Response: sdk.Page[WebhookFailure]{}, Query: ListFailuresQuery{}, Paginated: true, Handler: p.listFailures,
		},
		{
			Method: "POST", Path: "/api/v1/billing/webhook-failures/{failure_id}/replay", Permission: PermBillingManage,
			Summary: "Process a failed Stripe event again; with dry_run, show what it would change and change nothing.",
			Request: ReplayRequest{}, Response: ReplayResult{}, Handler: p.replayFailure,
		},
		{
			Method: "GET", Path: "/api/v1/billing/anomalies", Permission: PermBillingManage,
			Summary:  "Billing anomalies found by reconciliation or processing, newest first.",
			Response: sdk.Page[BillingAnomaly]{}, Paginated: true, Handler: p.listAnomalies,
		},
	}
}

const failureColumns = `f.id, f.webhook_event_id, e.stripe_event_id, e.type, f.error, f.attempts, f.status, f.first_failed_at, f.last_failed_at, f.resolved_at, f.resolved_by`

func scanFailure(row pgx.Row) (*WebhookFailure, error) {
	var f WebhookFailure
	err := row.Scan(&f.ID, &f.WebhookEventID, &f.StripeEventID, &f.Type, &f.Error, &f.Attempts, &f.Status, &f.FirstFailedAt, &f.LastFailedAt, &f.ResolvedAt, &f.ResolvedBy)
	f.FirstFailedAt, f.LastFailedAt = f.FirstFailedAt.UTC(), f.LastFailedAt.UTC()
	return &f, err
}

func (p *Plugin) listFailures(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListFailuresQuery](req)
	if err != nil {
		return nil, err
	}
	if q.Status == "" {
		q.Status = "open"
	}
	where, args := "f.status = $1", []any{q.Status}
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where += " AND (f.last_failed_at, f.id) < ($2, $3::uuid)"
		args = append(args, at, id)
	}
	var items []WebhookFailure
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+failureColumns+` FROM webhook_failures f JOIN webhook_events e ON e.id = f.webhook_event_id
			WHERE `+where+fmt.Sprintf(` ORDER BY f.last_failed_at DESC, f.id DESC LIMIT %d`, page.Limit+1), args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookFailure, error) {
			f, err := scanFailure(r)
			if err != nil {
				return WebhookFailure{}, err
			}
			return *f, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(f WebhookFailure) []string { return sdk.TimeKey(f.LastFailedAt, f.ID) }))
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// replayFailure handles POST .../webhook-failures/{failure_id}/replay: the
// stored event is processed again by the same code as a delivery, in the
// request's transaction. A dry run rolls that transaction back (its
// events, never committed, are never delivered) and answers what it would
// have changed. A replay that fails again answers 200 with the error and
// keeps the failure open, with its attempts counted.
func (p *Plugin) replayFailure(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("failure_id")
	if err != nil {
		return nil, err
	}
	var in ReplayRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	res := ReplayResult{FailureID: id, DryRun: in.DryRun, Changes: []Change{}, Notes: []string{}}
	var failed error
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		f, err := scanFailure(tx.QueryRow(ctx, `SELECT `+failureColumns+` FROM webhook_failures f JOIN webhook_events e ON e.id = f.webhook_event_id
			WHERE f.id = $1 FOR UPDATE OF f`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrNotFound, "no webhook failure %s", id)
		}
		if err != nil {
			return err
		}
		if f.Status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "webhook failure %s is resolved", id).WithCode("failure_resolved")
		}
		w, err := loadWebhookEvent(ctx, tx, f.WebhookEventID)
		if err != nil {
			return err
		}
		out, err := p.processIn(ctx, tx, req, w)
		if err != nil {
			failed = err
			res.Error, res.Status = err.Error(), "open"
			if in.DryRun {
				return errDryRun
			}
			return p.recordFailure(ctx, tx, w, err, true)
		}
		res.Succeeded, res.Status = true, "resolved"
		res.Changes, res.Notes = append(res.Changes, out.Changes...), append(res.Notes, out.Notes...)
		if in.DryRun {
			res.Status = "open"
			return errDryRun
		}
		by := req.Principal.ID()
		return finishEvent(ctx, tx, w, out, &by)
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	if failed != nil {
		p.env.Logger.Warn("a replayed Stripe event failed again", "tenant_id", req.Tenant(), "failure_id", id, "error", failed)
	}
	return sdk.JSON(http.StatusOK, res)
}
