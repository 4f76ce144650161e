package plugintest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// JobTimeout is the deadline of a job's attempt when the job sets no
// Timeout (the kernel's default).
//
// Since: v1.1
const JobTimeout = time.Minute

// JobRun is one attempt of a job for RunJob, as the kernel would start it.
// The zero JobRun is the first attempt of a manual run of a platform job.
//
// Since: v1.1
type JobRun struct {
	// TenantID is the institution the run is for: required for a PerTenant
	// job, "" for a platform job.
	TenantID string
	// Trigger is "schedule", "event" or "manual"; "": "event" when Event is
	// set, else "manual".
	Trigger sdk.Trigger
	// Event is the triggering event (Trigger "event"); its defaults are
	// Deliver's.
	Event *Event
	// Args are the arguments of a manual run, a JSON object encoded as
	// Event.Data is; nil: {}.
	Args any
	// Principal asked for a manual run; zero: a new user of TenantID with
	// the admin role. The plugin gets it as the kernel rebuilds it from the
	// run's history: kind, ID and institution, no roles or permissions.
	Principal sdk.Principal
	// RunID is the run's ID, the same for each of its attempts; "": a new
	// UUID.
	RunID string
	// Attempt is the attempt number, 1 (the default) on the first.
	Attempt int
	// ScheduledAt is the schedule's tick or when the run was asked for;
	// zero: now.
	ScheduledAt time.Time
}

// RunJob runs one attempt of the plugin's job through the code path of a
// served plugin (RunJob), with the job's Timeout (JobTimeout when it sets
// none) as deadline. It returns what the handler gave JobRun.SetOutput and
// its error as the kernel reads it back: an sdk error keeps its kind (an
// *sdk.Error wrapping the sentinel), any other error is internal and keeps
// its message; a panic is an error too.
//
// RunJob returns ErrSkipped, without calling the handler, for a PerTenant
// job in an institution where the plugin is turned off. A run the kernel
// would never start (a job the plugin does not declare, a PerTenant job
// without an institution or a platform job with one, a bad trigger) fails
// the test.
//
// Since: v1.1
func (h *Harness) RunJob(t testing.TB, job string, run JobRun) (output string, err error) {
	t.Helper()
	j, ok := h.jobs[job]
	if !ok {
		t.Fatalf("plugintest: RunJob: plugin %q has no job %q", h.manifest.Name, job)
	}
	switch {
	case j.PerTenant && run.TenantID == "":
		t.Fatalf("plugintest: RunJob: job %q is PerTenant: the kernel runs it for an institution (set TenantID)", job)
	case !j.PerTenant && run.TenantID != "":
		t.Fatalf("plugintest: RunJob: job %q is a platform job: the kernel runs it for no institution (leave TenantID empty)", job)
	case run.TenantID != "" && !isUUID(run.TenantID):
		t.Fatalf("plugintest: RunJob: tenant ID %q is not a UUID, as the kernel's always are: use NewTenant", run.TenantID)
	}
	if run.Trigger == "" {
		run.Trigger = "manual"
		if run.Event != nil {
			run.Trigger = "event"
		}
	}
	if run.Attempt <= 0 {
		run.Attempt = 1
	}
	in := &pluginv1.RunJobRequest{Job: job, TenantId: run.TenantID, Trigger: string(run.Trigger), RunId: run.RunID, Attempt: uint32(run.Attempt)}
	switch run.Trigger {
	case "schedule":
	case "event":
		if run.Event == nil {
			t.Fatalf("plugintest: RunJob: a run triggered by an event needs its Event")
		}
		in.Event = h.wireEvent(t, *run.Event)
	case "manual":
		p := run.Principal
		if p.Kind == "" {
			p = User(run.TenantID, "admin")
		}
		in.Principal = &pluginv1.Principal{Kind: string(p.Kind), UserId: p.UserID, ApiKeyId: p.APIKeyID, TenantId: run.TenantID, Operator: p.Operator}
	default:
		t.Fatalf("plugintest: RunJob: trigger %q is not schedule, event or manual", run.Trigger)
	}
	in.ArgsJson = jsonObject(t, "job arguments", run.Args)
	if in.RunId == "" {
		in.RunId = newUUID()
	}
	if run.ScheduledAt.IsZero() {
		run.ScheduledAt = time.Now()
	}
	in.ScheduledAtUnixMs = run.ScheduledAt.UnixMilli()
	if run.TenantID != "" {
		if _, enabled := h.tenantConfig(run.TenantID); !enabled {
			return "", ErrSkipped
		}
	}
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = JobTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	in.DeadlineUnixMs = deadline.UnixMilli()
	out := h.rt.RunJob(ctx, in)
	if out.Error != nil {
		return out.Output, decodeError(out.Error)
	}
	return out.Output, nil
}

// decodeError turns a job's wire error back into the error the kernel
// records: an *sdk.Error wrapping its sentinel, or an internal error.
func decodeError(e *pluginv1.Error) error {
	kinds := map[string]error{
		"invalid": sdk.ErrInvalid, "bad_request": sdk.ErrBadRequest, "unauthorized": sdk.ErrUnauthorized,
		"forbidden": sdk.ErrForbidden, "not_found": sdk.ErrNotFound, "conflict": sdk.ErrConflict, "gone": sdk.ErrGone,
		"too_many_requests": sdk.ErrTooManyRequests, "unavailable": sdk.ErrUnavailable, "too_large": sdk.ErrTooLarge,
	}
	kind, ok := kinds[e.Kind]
	if !ok {
		return errors.New("plugin internal error: " + e.Detail)
	}
	out := &sdk.Error{Kind: kind, Code: e.Code, Detail: e.Detail, RetryAfterSeconds: int(e.RetryAfterSeconds)}
	for _, f := range e.Fields {
		out.Fields = append(out.Fields, sdk.FieldError{Field: f.Field, Message: f.Message})
	}
	return out
}
