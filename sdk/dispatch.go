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

// heldBack is the result of an ordered event not attempted because an
// earlier one of its institution failed.
const heldBack = "held back: an earlier event of this institution failed"

// handleEvents runs a delivered batch through the plugin's subscriptions:
// unordered events concurrently (those of a Batch subscription grouped by
// type and institution, a batch each), each ordered subscription's events
// one institution at a time in batch order (consecutive events of one
// Batch subscription as one batch), stopping an institution's sequence at
// its first failure (the rest are reported as not attempted). A panicking
// handler fails its event (or batch) only.
func (rt *runtime) handleEvents(ctx context.Context, in *pluginv1.HandleEventsRequest) *pluginv1.HandleEventsResponse {
	results := make([]*pluginv1.EventResult, len(in.Events))
	// Ordered events form one sequence per institution (across the plugin's
	// ordered subscriptions, as the kernel orders them); a Batch
	// subscription's unordered events one group per type and institution;
	// the rest stand alone.
	type unit struct {
		chain bool
		idx   []int
	}
	var units []*unit
	chains := map[string]*unit{}
	groups := map[[2]string]*unit{}
	for i, ev := range in.Events {
		sub, ok := rt.events[ev.Type]
		switch {
		case ok && sub.Ordered:
			if u := chains[ev.TenantId]; u != nil {
				u.idx = append(u.idx, i)
				continue
			}
			chains[ev.TenantId] = &unit{chain: true, idx: []int{i}}
			units = append(units, chains[ev.TenantId])
		case ok && sub.Batch != nil:
			key := [2]string{ev.Type, ev.TenantId}
			if u := groups[key]; u != nil {
				u.idx = append(u.idx, i)
				continue
			}
			groups[key] = &unit{idx: []int{i}}
			units = append(units, groups[key])
		default:
			units = append(units, &unit{idx: []int{i}})
		}
	}
	sem := make(chan struct{}, eventConcurrency)
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if !u.chain {
				for i, err := range rt.handleRun(ctx, in.Events, u.idx, false) {
					results[u.idx[i]] = eventResult(in.Events[u.idx[i]], err)
				}
				return
			}
			// A chain, in runs of consecutive events of one Batch
			// subscription (or single events), stopping at a failure.
			failed := false
			for start := 0; start < len(u.idx); {
				end := start + 1
				if rt.events[in.Events[u.idx[start]].Type].Batch != nil {
					for end < len(u.idx) && in.Events[u.idx[end]].Type == in.Events[u.idx[start]].Type {
						end++
					}
				}
				run := u.idx[start:end]
				if failed {
					for _, i := range run {
						results[i] = &pluginv1.EventResult{EventId: in.Events[i].Id, Error: heldBack, Attempted: false}
					}
				} else {
					for k, err := range rt.handleRun(ctx, in.Events, run, true) {
						i := run[k]
						switch {
						case failed:
							results[i] = &pluginv1.EventResult{EventId: in.Events[i].Id, Error: heldBack, Attempted: false}
						default:
							results[i] = eventResult(in.Events[i], err)
							failed = err != nil
						}
					}
				}
				start = end
			}
		}()
	}
	wg.Wait()
	return &pluginv1.HandleEventsResponse{Results: results}
}

func eventResult(ev *pluginv1.Event, err error) *pluginv1.EventResult {
	r := &pluginv1.EventResult{EventId: ev.Id, Attempted: true}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// handleRun handles the events at idx (of one Batch subscription and
// institution, or a single event) and returns an error for each. A failed
// batch of several is handled again one event per batch, in order; for an
// ordered subscription that stops at the first failure (the errors of the
// events after it are nil: the caller holds them back).
func (rt *runtime) handleRun(ctx context.Context, evs []*pluginv1.Event, idx []int, ordered bool) []error {
	errs := make([]error, len(idx))
	first := evs[idx[0]]
	sub, ok := rt.events[first.Type]
	if !ok || sub.Batch == nil {
		for k, i := range idx {
			errs[k] = rt.handleEvent(ctx, evs[i])
		}
		return errs
	}
	batch := make([]*Event, len(idx))
	for k, i := range idx {
		batch[k] = rt.decodeEvent(evs[i])
	}
	err := rt.handleBatch(ctx, sub, batch)
	if err == nil || len(batch) == 1 {
		for k := range errs {
			errs[k] = err
		}
		return errs
	}
	for k, ev := range batch {
		if errs[k] = rt.handleBatch(ctx, sub, []*Event{ev}); errs[k] != nil && ordered {
			break
		}
	}
	return errs
}

func (rt *runtime) handleBatch(ctx context.Context, sub Subscription, evs []*Event) (err error) {
	b := &Batch{Type: sub.Type, TenantID: evs[0].TenantID, Events: evs, rt: rt}
	defer func() {
		if v := recover(); v != nil {
			rt.logger.Error("event batch handler panicked", "event_type", b.Type, "events", len(evs), "first_event_id", evs[0].ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	if err = sub.Batch(ctx, b); err != nil {
		rt.logger.Warn("event batch handler failed", "event_type", b.Type, "events", len(evs), "first_event_id", evs[0].ID, "tenant", b.TenantID, "error", err)
	}
	return err
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
