package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// eventConcurrency bounds the handlers one batch runs at once.
const eventConcurrency = 16

// handleEvents runs a delivered batch through the plugin's subscriptions:
// unordered events concurrently, each ordered subscription's events one
// institution at a time in batch order, stopping an institution's sequence
// at its first failure (the rest are reported as not attempted). A
// panicking handler fails its event only.
func (rt *runtime) handleEvents(ctx context.Context, in *pluginv1.HandleEventsRequest) *pluginv1.HandleEventsResponse {
	results := make([]*pluginv1.EventResult, len(in.Events))
	// Ordered events form one sequence per institution (across the plugin's
	// ordered subscriptions, as the kernel orders them); the rest stand alone.
	var chains [][]int
	index := map[string]int{}
	for i, ev := range in.Events {
		sub, ok := rt.events[ev.Type]
		if !ok || !sub.Ordered {
			chains = append(chains, []int{i})
			continue
		}
		if c, ok := index[ev.TenantId]; ok {
			chains[c] = append(chains[c], i)
			continue
		}
		index[ev.TenantId] = len(chains)
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
				err := rt.handleEvent(ctx, ev)
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

func (rt *runtime) handleEvent(ctx context.Context, in *pluginv1.Event) (err error) {
	sub, ok := rt.events[in.Type]
	if !ok {
		return fmt.Errorf("the plugin does not subscribe to %s", in.Type)
	}
	ev := rt.decodeEvent(in)
	ctx, end := rt.traceWork(ctx, in.Traceparent, "event "+in.Type, trace.SpanKindConsumer,
		attribute.String("edulure.event.type", in.Type), attribute.String("edulure.event.id", in.Id), attribute.Int("edulure.event.attempt", int(in.Attempt)))
	defer func() {
		if v := recover(); v != nil {
			rt.logger.Error("event handler panicked", "event_type", ev.Type, "event_id", ev.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", v)
		}
		if err != nil {
			end(kindName(err))
		} else {
			end("")
		}
	}()
	if err = sub.Handler(ctx, ev); err != nil {
		rt.logger.Warn("event handler failed", "event_type", ev.Type, "event_id", ev.ID, "tenant", ev.TenantID, "attempt", ev.Attempt, "error", err)
	}
	return err
}

func (rt *runtime) decodeEvent(in *pluginv1.Event) *Event {
	return &Event{
		ID: in.Id, Type: in.Type, TenantID: in.TenantId, Actor: in.Actor,
		OccurredAt: time.UnixMilli(in.OccurredAtUnixMs).UTC(), RequestID: in.RequestId,
		Source: in.Source, Data: orEmptyObject(in.DataJson), Attempt: int(in.Attempt), rt: rt,
	}
}

// runJob runs one attempt of a job. A panic becomes a failed attempt.
func (rt *runtime) runJob(ctx context.Context, in *pluginv1.RunJobRequest) (out *pluginv1.RunJobResponse) {
	job, ok := rt.jobs[in.Job]
	if !ok {
		return &pluginv1.RunJobResponse{Error: encodeError(Errorf(ErrNotFound, "the plugin has no job %q", in.Job))}
	}
	run := &JobRun{
		ID: in.RunId, Job: in.Job, TenantID: in.TenantId, Trigger: Trigger(in.Trigger),
		ScheduledAt: time.UnixMilli(in.ScheduledAtUnixMs).UTC(), Attempt: int(in.Attempt),
		Args: orEmptyObject(in.ArgsJson), Principal: decodePrincipal(in.Principal), rt: rt,
	}
	if in.Event != nil {
		run.Event = rt.decodeEvent(in.Event)
	}
	if in.DeadlineUnixMs > 0 {
		run.Deadline = time.UnixMilli(in.DeadlineUnixMs)
	}
	ctx, end := rt.traceWork(ctx, in.Traceparent, "job "+in.Job, trace.SpanKindServer,
		attribute.String("edulure.job", in.Job), attribute.String("edulure.job.run_id", in.RunId), attribute.Int("edulure.job.attempt", int(in.Attempt)))
	defer func() {
		if v := recover(); v != nil {
			rt.logger.Error("job panicked", "job", in.Job, "run", in.RunId, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			out = &pluginv1.RunJobResponse{Error: &pluginv1.Error{Kind: "internal", Detail: fmt.Sprintf("the job panicked: %v", v)}}
		}
		end(out.GetError().GetKind())
	}()
	if err := job.Handler(ctx, run); err != nil {
		rt.logger.Warn("job attempt failed", "job", in.Job, "run", in.RunId, "tenant", in.TenantId, "attempt", in.Attempt, "error", err)
		e := encodeError(err)
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
