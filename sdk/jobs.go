package sdk

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// JobHandler runs one attempt of a job. Returning an error fails the
// attempt; the kernel retries with backoff until the job's MaxAttempts. The
// context ends at the job's timeout.
//
// Since: v1.1
type JobHandler func(ctx context.Context, run *JobRun) error

// JobRun is one attempt of a job run.
//
// Since: v1.1
type JobRun struct {
	ID          string // the run's ID, the same for each of its attempts
	Job         string
	TenantID    string // "" for a platform job
	Trigger     string // "schedule", "event" or "manual"
	ScheduledAt time.Time
	Attempt     int
	Event       *Event          // the triggering event (Trigger "event")
	Args        json.RawMessage // the arguments of a manual run ("{}" when none)
	Principal   Principal       // who asked for a manual run
	Deadline    time.Time

	output string
	db     *DB
}

// Tx runs fn in a transaction scoped to the run's institution (none for a
// platform job).
func (r *JobRun) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if r.db == nil {
		return Errorf(ErrUnavailable, "the plugin has no database")
	}
	return r.db.InTenant(ctx, r.TenantID, fn)
}

// Publish writes an event to the plugin's outbox inside tx for the run's
// institution.
func (r *JobRun) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error {
	actor, requestID := "", ""
	if r.Event != nil {
		actor, requestID = r.Event.Actor, r.Event.RequestID
	}
	if r.Trigger == "manual" {
		actor = r.Principal.Actor()
	}
	return r.db.Publish(ctx, tx, Outgoing{Type: eventType, TenantID: r.TenantID, Actor: actor, RequestID: requestID, Data: data})
}

// SetOutput records a one-line account of what the run did; the kernel keeps
// it in the run's history.
func (r *JobRun) SetOutput(s string) { r.output = s }
