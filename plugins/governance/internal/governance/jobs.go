package governance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/robfig/cron/v3"

	"github.com/edulure/edulure/sdk"
)

// JobRetention is DataRetentionJob: per institution, every 15 minutes the
// kernel starts it, and it executes retention when the institution's
// schedule (retention_schedule, in retention_time_zone) has a slot due
// that no execution has taken yet. Run on demand (POST
// /api/v1/jobs/governance/data-retention/runs with {"dry_run": true} or
// {}), it executes at once.
const JobRetention = "data-retention"

// RetentionJobArgs are the arguments of a manual run.
type RetentionJobArgs struct {
	DryRun bool `json:"dry_run,omitempty"`
}

// JobReview starts access review campaigns on the institution's
// review_schedule (in its time zone); run on demand, it starts one now.
const JobReview = "access-review"

// ReviewJobArgs are the arguments of a manual run.
type ReviewJobArgs struct {
	Title string `json:"title,omitempty"`
}

func (p *Plugin) jobs() []sdk.Job {
	return []sdk.Job{{
		Name:        JobReview,
		Description: "Starts an access review campaign on the institution's review_schedule, in its time zone (recurring campaigns).",
		Schedule:    "0 * * * *",
		PerTenant:   true,
		MaxAttempts: 3,
		Timeout:     10 * time.Minute,
		Permission:  PermReviewManage,
		Handler:     p.reviewJob,
	}, {
		Name:        JobRetention,
		Description: "DataRetentionJob: applies the institution's retention policies on its schedule, in its time zone; records and signs each execution.",
		Schedule:    "*/15 * * * *",
		PerTenant:   true,
		MaxAttempts: 1, // a failing class is retried inside the run, with backoff, and reported
		Timeout:     time.Hour,
		Permission:  PermRetentionManage,
		Handler:     p.retentionJob,
	}}
}

// dueSlot is the latest time at or before now that schedule names in
// loc, looking back two days; zero when none.
func dueSlot(schedule string, loc *time.Location, now time.Time) (time.Time, error) {
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for t := sched.Next(now.In(loc).Add(-48 * time.Hour)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
		last = t
	}
	return last, nil
}

func (p *Plugin) retentionJob(ctx context.Context, run *sdk.JobRun) error {
	if run.Tenant() == "" {
		return fmt.Errorf("%s runs per institution", JobRetention)
	}
	cfg, err := sdk.Config[Config](ctx, run)
	if err != nil {
		return err
	}
	if run.Trigger == sdk.TriggerManual {
		var args RetentionJobArgs
		if err := run.Decode(&args); err != nil {
			return err
		}
		o, err := p.optionsFor(ctx, run, args.DryRun, "manual", run.ID)
		if err != nil {
			return err
		}
		ex, err := p.executeAndRecord(ctx, run, o, run.Principal)
		if err != nil {
			return err
		}
		run.SetOutput(outputOf(ex))
		return nil
	}
	if !cfg.RetentionEnabled {
		run.SetOutput("retention is disabled for the institution (retention_enabled)")
		return nil
	}
	loc, err := time.LoadLocation(cfg.RetentionTimeZone)
	if err != nil {
		return fmt.Errorf("retention_time_zone %q is not a time zone: %w", cfg.RetentionTimeZone, err)
	}
	slot, err := dueSlot(cfg.RetentionSchedule, loc, p.now())
	if err != nil {
		return fmt.Errorf("retention_schedule %q is not a cron expression: %w", cfg.RetentionSchedule, err)
	}
	if slot.IsZero() {
		run.SetOutput("no scheduled slot in the last two days")
		return nil
	}
	var done, policies bool
	if err := run.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM retention_executions WHERE scheduled_for = $1), EXISTS (SELECT 1 FROM retention_policies)`, slot).Scan(&done, &policies)
	}); err != nil {
		return err
	}
	if done {
		run.SetOutput("the slot of " + slot.Format(time.RFC3339) + " has run")
		return nil
	}
	if !policies {
		// Nothing to apply: no record of nothing every night.
		run.SetOutput("the institution has no retention policy")
		return nil
	}
	o, err := p.optionsFor(ctx, run, cfg.RetentionDryRun, "schedule", run.ID)
	if err != nil {
		return err
	}
	o.scheduledFor = &slot
	ex, err := p.executeAndRecord(ctx, run, o, sdk.Principal{})
	if err != nil {
		return err
	}
	run.SetOutput(outputOf(ex))
	return nil
}

func outputOf(ex Execution) string {
	return fmt.Sprintf("execution %s (%s, dry run %v): %d matched, %d affected, %d failed classes, %d ms", ex.ID, ex.Status, ex.DryRun, ex.Matched, ex.Affected, ex.Failures, ex.DurationMs)
}

func (p *Plugin) reviewJob(ctx context.Context, run *sdk.JobRun) error {
	if run.Tenant() == "" {
		return fmt.Errorf("%s runs per institution", JobReview)
	}
	cfg, err := sdk.Config[Config](ctx, run)
	if err != nil {
		return err
	}
	if run.Trigger == sdk.TriggerManual {
		var args ReviewJobArgs
		if err := run.Decode(&args); err != nil {
			return err
		}
		title := truncate(strings.TrimSpace(args.Title), 200)
		if title == "" {
			title = "Access review " + p.now().UTC().Format("2006-01-02")
		}
		by := pluginActor
		if !run.Principal.Anonymous() {
			by = actor(run.Principal)
		}
		c, err := p.createCampaign(ctx, run, title, by, nil)
		if err != nil {
			return err
		}
		p.audit(ctx, run, run.Principal, run.ID, "governance.review.start", "governance_review", c.ID, map[string]any{"grants": c.Grants, "orphans": c.Orphans, "trigger": "manual"})
		run.SetOutput(fmt.Sprintf("campaign %s: %d grants frozen, %d orphans", c.ID, c.Grants, c.Orphans))
		return nil
	}
	if cfg.ReviewSchedule == "" {
		run.SetOutput("no review_schedule: campaigns start by hand")
		return nil
	}
	loc, err := time.LoadLocation(cfg.RetentionTimeZone)
	if err != nil {
		return fmt.Errorf("retention_time_zone %q is not a time zone: %w", cfg.RetentionTimeZone, err)
	}
	slot, err := dueSlot(cfg.ReviewSchedule, loc, p.now())
	if err != nil {
		return fmt.Errorf("review_schedule %q is not a cron expression: %w", cfg.ReviewSchedule, err)
	}
	if slot.IsZero() {
		run.SetOutput("no scheduled slot in the last two days")
		return nil
	}
	var done bool
	if err := run.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM review_campaigns WHERE scheduled_for = $1)`, slot).Scan(&done)
	}); err != nil {
		return err
	}
	if done {
		run.SetOutput("the campaign of " + slot.Format(time.RFC3339) + " has started")
		return nil
	}
	c, err := p.createCampaign(ctx, run, "Access review "+slot.In(loc).Format("2006-01-02"), pluginActor, &slot)
	if err != nil {
		return err
	}
	p.audit(ctx, run, sdk.Principal{}, run.ID, "governance.review.start", "governance_review", c.ID, map[string]any{"grants": c.Grants, "orphans": c.Orphans, "trigger": "schedule"})
	run.SetOutput(fmt.Sprintf("campaign %s: %d grants frozen, %d orphans", c.ID, c.Grants, c.Orphans))
	return nil
}
