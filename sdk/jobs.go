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

// Trigger says why a job run started.
//
// Since: v1.2
type Trigger string

// The triggers of a job run.
const (
	TriggerSchedule Trigger = "schedule"
	TriggerEvent    Trigger = "event"
	TriggerManual   Trigger = "manual"
)

// JobRun is one attempt of a job run.
//
// Since: v1.1
type JobRun struct {
	ID          string // the run's ID, the same for each of its attempts
	Job         string
	TenantID    string  // "" for a platform job
	Trigger     Trigger // schedule, event or manual
	ScheduledAt time.Time
	Attempt     int
	Event       *Event          // the triggering event (Trigger "event")
	Args        json.RawMessage // the arguments of a manual run ("{}" when none)
	Principal   Principal       // who asked for a manual run
	Deadline    time.Time

	output string
	rt     *runtime
}

var _ Scope = (*JobRun)(nil)

// Tenant is the run's institution ("" for a platform job).
func (r *JobRun) Tenant() string { return r.TenantID }

// Tx runs fn in a transaction scoped to the run's institution (none for a
// platform job).
func (r *JobRun) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return r.rt.tx(ctx, r.TenantID, fn)
}

// Publish writes an event to the plugin's outbox inside tx for the run's
// institution.
func (r *JobRun) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error {
	actor, requestID := "", ""
	if r.Event != nil {
		actor, requestID = r.Event.Actor, r.Event.RequestID
	}
	if r.Trigger == TriggerManual {
		actor = r.Principal.Actor()
	}
	return r.rt.publish(ctx, tx, Outgoing{Type: eventType, TenantID: r.TenantID, Actor: actor, RequestID: requestID, Data: data})
}

// Decode reads the arguments of a manual run into v, refusing unknown
// fields.
func (r *JobRun) Decode(v any) error { return decodeJSON(r.Args, v) }

// SetOutput records a one-line account of what the run did; the kernel keeps
// it in the run's history.
func (r *JobRun) SetOutput(s string) { r.output = s }

// Host is the kernel's services, for calls the plugin makes on behalf of
// this work (Membership, Authorize, Audit).
func (r *JobRun) Host() Host { return r.rt.hostOrNone() }

func (r *JobRun) config(ctx context.Context) (json.RawMessage, error) {
	return tenantConfig(ctx, r.rt, r.TenantID)
}
func (r *JobRun) runtime() *runtime { return r.rt }
