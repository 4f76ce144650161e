package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/telemetry"
)

// JobInfo is a declared job as GET /api/v1/jobs lists it.
type JobInfo struct {
	Plugin      string   `json:"plugin"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Schedule    string   `json:"schedule,omitempty"`
	OnEvent     string   `json:"on_event,omitempty"`
	PerTenant   bool     `json:"per_tenant"`
	MaxAttempts int      `json:"max_attempts"`
	Timeout     string   `json:"timeout"`
	Permission  string   `json:"permission"`
	NextRun     *string  `json:"next_run,omitempty"`
	LastRun     *RunInfo `json:"last_run"`
}

// RunInfo is one run and, when asked for, its attempts.
type RunInfo struct {
	ID          string        `json:"id"`
	Plugin      string        `json:"plugin"`
	Job         string        `json:"job"`
	TenantID    *string       `json:"tenant_id"`
	Trigger     string        `json:"trigger"`
	ScheduledAt time.Time     `json:"scheduled_at"`
	EventID     *string       `json:"event_id,omitempty"`
	RequestedBy string        `json:"requested_by"`
	Status      string        `json:"status"`
	Attempts    int           `json:"attempts"`
	MaxAttempts int           `json:"max_attempts"`
	StartedAt   *time.Time    `json:"started_at"`
	FinishedAt  *time.Time    `json:"finished_at"`
	LastError   *string       `json:"last_error"`
	Output      *string       `json:"output"`
	CreatedAt   time.Time     `json:"created_at"`
	History     []AttemptInfo `json:"attempt_history,omitempty"`
}

// AttemptInfo is one attempt of a run.
type AttemptInfo struct {
	Attempt    int        `json:"attempt"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Outcome    string     `json:"outcome"`
	Error      *string    `json:"error"`
}

// Jobs lists the loaded plugins' jobs with their last run visible to tenant
// (uuid.Nil: any institution's, for operators).
func (s *Service) Jobs(ctx context.Context, tenant uuid.UUID) ([]JobInfo, error) {
	out := []JobInfo{}
	for _, p := range s.sup.Loaded() {
		for _, j := range p.Manifest.Jobs {
			attempts, timeout := s.limits(j)
			info := JobInfo{
				Plugin: p.Name, Name: j.Name, Description: j.Description, Schedule: j.Schedule, OnEvent: j.OnEvent,
				PerTenant: j.PerTenant, MaxAttempts: attempts, Timeout: timeout.String(), Permission: RunPermission(j),
			}
			if j.Schedule != "" {
				if sched, err := parseSchedule(j.Schedule); err == nil {
					next := sched.Next(time.Now()).UTC().Format(time.RFC3339)
					info.NextRun = &next
				}
			}
			runs, err := s.Runs(ctx, RunFilter{Plugin: p.Name, Job: j.Name, Tenant: tenant, Limit: 1})
			if err != nil {
				return nil, err
			}
			if len(runs) > 0 {
				info.LastRun = &runs[0]
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// RunPermission is the permission a manual run of j needs.
func RunPermission(j interface {
	GetPermission() string
	GetPerTenant() bool
}) string {
	switch {
	case j.GetPermission() != "":
		return j.GetPermission()
	case j.GetPerTenant():
		return "tenancy.job.run"
	}
	return "platform.job.run"
}

// RunFilter selects runs.
type RunFilter struct {
	Plugin, Job string
	Tenant      uuid.UUID // uuid.Nil: every institution's and the platform's
	Status      string
	Before      *uuid.UUID // cursor: runs older than this one
	Limit       int
}

// Runs lists runs, newest first.
func (s *Service) Runs(ctx context.Context, f RunFilter) ([]RunInfo, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var tenant *uuid.UUID
	if f.Tenant != uuid.Nil {
		tenant = &f.Tenant
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, plugin, job, tenant_id, trigger, scheduled_at, event_id, requested_by, status, attempts, max_attempts,
			started_at, finished_at, last_error, output, created_at
		FROM kernel.job_runs
		WHERE plugin = $1 AND job = $2 AND ($3::uuid IS NULL OR tenant_id = $3)
			AND ($4 = '' OR status = $4) AND ($5::uuid IS NULL OR id < $5)
		ORDER BY id DESC LIMIT $6`, f.Plugin, f.Job, tenant, f.Status, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanRun)
}

func scanRun(row pgx.CollectableRow) (RunInfo, error) {
	var r RunInfo
	var id uuid.UUID
	var tenant, event *uuid.UUID
	err := row.Scan(&id, &r.Plugin, &r.Job, &tenant, &r.Trigger, &r.ScheduledAt, &event, &r.RequestedBy, &r.Status, &r.Attempts, &r.MaxAttempts,
		&r.StartedAt, &r.FinishedAt, &r.LastError, &r.Output, &r.CreatedAt)
	r.ID = id.String()
	if tenant != nil {
		t := tenant.String()
		r.TenantID = &t
	}
	if event != nil {
		e := event.String()
		r.EventID = &e
	}
	return r, err
}

// Run returns one run with its attempts; tenant limits it to an
// institution's runs (uuid.Nil: any).
func (s *Service) Run(ctx context.Context, plugin, job string, id, tenant uuid.UUID) (RunInfo, error) {
	var t *uuid.UUID
	if tenant != uuid.Nil {
		t = &tenant
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, plugin, job, tenant_id, trigger, scheduled_at, event_id, requested_by, status, attempts, max_attempts,
			started_at, finished_at, last_error, output, created_at
		FROM kernel.job_runs WHERE id = $1 AND plugin = $2 AND job = $3 AND ($4::uuid IS NULL OR tenant_id = $4)`, id, plugin, job, t)
	if err != nil {
		return RunInfo{}, err
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return RunInfo{}, sdk.Errorf(sdk.ErrNotFound, "no run %s of job %s/%s", id, plugin, job)
	}
	if err != nil {
		return RunInfo{}, err
	}
	rows, err = s.pool.Query(ctx, `SELECT attempt, started_at, finished_at, outcome, error FROM kernel.job_attempts WHERE run_id = $1 ORDER BY attempt`, id)
	if err != nil {
		return RunInfo{}, err
	}
	r.History, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (AttemptInfo, error) {
		var a AttemptInfo
		err := row.Scan(&a.Attempt, &a.StartedAt, &a.FinishedAt, &a.Outcome, &a.Error)
		return a, err
	})
	return r, err
}

// Trigger starts a manual run of plugin's job for tenant (uuid.Nil for a
// platform job) in tx, and returns its ID.
func (s *Service) Trigger(ctx context.Context, tx pgx.Tx, plugin, job string, tenant uuid.UUID, actor string, args json.RawMessage) (uuid.UUID, error) {
	_, j, ok := s.jobDef(plugin, job)
	if !ok {
		return uuid.Nil, sdk.Errorf(sdk.ErrNotFound, "no loaded plugin %q declares a job %q", plugin, job)
	}
	r := newRun{plugin: plugin, job: job, trigger: "manual", scheduledAt: time.Now(), requestedBy: actor, args: args}
	r.traceparent, _ = telemetry.Inject(ctx) // the asking request's trace, for the run's attempts to link to
	if j.PerTenant {
		if tenant == uuid.Nil {
			return uuid.Nil, sdk.Errorf(sdk.ErrBadRequest, "job %s/%s runs per institution: use a token for an institution", plugin, job)
		}
		r.tenant = &tenant
	}
	ids, err := s.createRuns(ctx, tx, j, []newRun{r})
	if err != nil {
		return uuid.Nil, err
	}
	if len(ids) != 1 {
		return uuid.Nil, fmt.Errorf("the run of %s/%s was not created", plugin, job)
	}
	return ids[0], nil
}

// Job returns a loaded plugin's job declaration.
func (s *Service) Job(plugin, job string) (perTenant bool, permission string, ok bool) {
	_, j, ok := s.jobDef(plugin, job)
	if !ok {
		return false, "", false
	}
	return j.PerTenant, RunPermission(j), true
}
