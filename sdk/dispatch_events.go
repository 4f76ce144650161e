package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// eventConcurrency bounds the handlers one batch runs at once.
const eventConcurrency = 16

// DispatchEvents runs a delivered batch through the plugin's subscriptions
// as a served plugin does: unordered events concurrently, each ordered
// subscriptions' events one institution at a time in batch order, stopping an
// institution's sequence at its first failure (the rest are reported as not
// attempted). A panicking handler fails its event only. sdk/plugintest calls
// it so that a plugin's tests take the production code path.
//
// Since: v1.1
func DispatchEvents(ctx context.Context, logger hclog.Logger, subs map[string]Subscription, in *pluginv1.HandleEventsRequest, db *DB) *pluginv1.HandleEventsResponse {
	results := make([]*pluginv1.EventResult, len(in.Events))
	// Ordered events form one sequence per institution (across the plugin's
	// ordered subscriptions, as the kernel orders them); the rest stand alone.
	var chains [][]int
	index := map[string]int{}
	for i, ev := range in.Events {
		sub, ok := subs[ev.Type]
		if !ok || !sub.Ordered {
			chains = append(chains, []int{i})
			continue
		}
		k := ev.TenantId
		if c, ok := index[k]; ok {
			chains[c] = append(chains[c], i)
			continue
		}
		index[k] = len(chains)
		chains = append(chains, []int{i})
	}
	sem := make(chan struct{}, eventConcurrency)
	var wg sync.WaitGroup
	for _, chain := range chains {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			failed := false
			for _, i := range chain {
				ev := in.Events[i]
				if failed {
					results[i] = &pluginv1.EventResult{EventId: ev.Id, Error: "held back: an earlier event of this institution failed", Attempted: false}
					continue
				}
				err := handleEvent(ctx, logger, subs, ev, db)
				results[i] = &pluginv1.EventResult{EventId: ev.Id, Attempted: true}
				if err != nil {
					results[i].Error = err.Error()
					failed = true
				}
			}
		}()
	}
	wg.Wait()
	return &pluginv1.HandleEventsResponse{Results: results}
}

func handleEvent(ctx context.Context, logger hclog.Logger, subs map[string]Subscription, in *pluginv1.Event, db *DB) (err error) {
	sub, ok := subs[in.Type]
	if !ok {
		return fmt.Errorf("the plugin does not subscribe to %s", in.Type)
	}
	ev := decodeEvent(in, db)
	defer func() {
		if v := recover(); v != nil {
			logger.Error("event handler panicked", "event_type", ev.Type, "event_id", ev.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	if err = sub.Handler(ctx, ev); err != nil {
		logger.Warn("event handler failed", "event_type", ev.Type, "event_id", ev.ID, "tenant", ev.TenantID, "attempt", ev.Attempt, "error", err)
	}
	return err
}

func decodeEvent(in *pluginv1.Event, db *DB) *Event {
	return &Event{
		ID: in.Id, Type: in.Type, TenantID: in.TenantId, Actor: in.Actor,
		OccurredAt: time.UnixMilli(in.OccurredAtUnixMs).UTC(), RequestID: in.RequestId,
		Source: in.Source, Data: orEmptyObject(in.DataJson), Attempt: int(in.Attempt), db: db,
	}
}

// DispatchJob runs one attempt of a job as a served plugin does. A panic
// becomes a failed attempt.
//
// Since: v1.1
func DispatchJob(ctx context.Context, logger hclog.Logger, jobs map[string]Job, in *pluginv1.RunJobRequest, db *DB) (out *pluginv1.RunJobResponse) {
	job, ok := jobs[in.Job]
	if !ok {
		return &pluginv1.RunJobResponse{Error: EncodeError(Errorf(ErrNotFound, "the plugin has no job %q", in.Job))}
	}
	run := &JobRun{
		ID: in.RunId, Job: in.Job, TenantID: in.TenantId, Trigger: in.Trigger,
		ScheduledAt: time.UnixMilli(in.ScheduledAtUnixMs).UTC(), Attempt: int(in.Attempt),
		Args: orEmptyObject(in.ArgsJson), Principal: decodePrincipal(in.Principal), db: db,
	}
	if in.Event != nil {
		run.Event = decodeEvent(in.Event, db)
	}
	if in.DeadlineUnixMs > 0 {
		run.Deadline = time.UnixMilli(in.DeadlineUnixMs)
	}
	defer func() {
		if v := recover(); v != nil {
			logger.Error("job panicked", "job", in.Job, "run", in.RunId, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			out = &pluginv1.RunJobResponse{Error: &pluginv1.Error{Kind: "internal", Detail: fmt.Sprintf("the job panicked: %v", v)}}
		}
	}()
	if err := job.Handler(ctx, run); err != nil {
		logger.Warn("job attempt failed", "job", in.Job, "run", in.RunId, "tenant", in.TenantId, "attempt", in.Attempt, "error", err)
		e := EncodeError(err)
		// A job's failure is read by operators, not clients: keep its detail.
		var se *Error
		if !errors.As(err, &se) {
			e.Detail = err.Error()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			e.Detail = "timed out: " + err.Error()
		}
		return &pluginv1.RunJobResponse{Error: e, Output: run.output}
	}
	return &pluginv1.RunJobResponse{Output: run.output}
}
