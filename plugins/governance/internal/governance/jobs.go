package governance

import (
	"context"
	"fmt"
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

func (p *Plugin) jobs() []sdk.Job {
	return []sdk.Job{{
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
