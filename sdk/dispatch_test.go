package sdk

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// An ordered subscription handles one institution's events in order and
// stops that institution's sequence at its first failure; other
// institutions and unordered events go on.
func TestDispatchEventsOrdered(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	handler := func(_ context.Context, ev *Event) error {
		mu.Lock()
		seen = append(seen, ev.ID)
		mu.Unlock()
		if ev.ID == "a2" {
			return errors.New("a2 fails")
		}
		return nil
	}
	subs := map[string]Subscription{
		"x.thing.done.v1": {Type: "x.thing.done.v1", Ordered: true, Handler: handler},
		"x.other.done.v1": {Type: "x.other.done.v1", Handler: handler},
	}
	ev := func(id, typ, tenant string) *pluginv1.Event {
		return &pluginv1.Event{Id: id, Type: typ, TenantId: tenant, DataJson: []byte("{}")}
	}
	in := &pluginv1.HandleEventsRequest{Events: []*pluginv1.Event{
		ev("a1", "x.thing.done.v1", "A"), ev("b1", "x.thing.done.v1", "B"), ev("a2", "x.thing.done.v1", "A"),
		ev("u1", "x.other.done.v1", "A"), ev("a3", "x.thing.done.v1", "A"), ev("b2", "x.thing.done.v1", "B"),
		ev("n1", "x.unknown.done.v1", "A"),
	}}
	rt := &runtime{compiled: &compiled{events: subs}, logger: hclog.NewNullLogger()}
	out := rt.handleEvents(context.Background(), in)
	require.Len(t, out.Results, 7)
	byID := map[string]*pluginv1.EventResult{}
	for i, r := range out.Results {
		require.Equal(t, in.Events[i].Id, r.EventId, "results in request order")
		byID[r.EventId] = r
	}
	require.Empty(t, byID["a1"].Error)
	require.Equal(t, "a2 fails", byID["a2"].Error)
	require.True(t, byID["a2"].Attempted)
	require.False(t, byID["a3"].Attempted, "held back behind a2")
	require.NotEmpty(t, byID["a3"].Error)
	require.Empty(t, byID["b1"].Error)
	require.Empty(t, byID["b2"].Error)
	require.Empty(t, byID["u1"].Error, "unordered events are not held back")
	require.Contains(t, byID["n1"].Error, "does not subscribe")
	require.NotContains(t, seen, "a3")
	require.Less(t, indexOf(seen, "a1"), indexOf(seen, "a2"))
	require.Less(t, indexOf(seen, "b1"), indexOf(seen, "b2"))
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// A Batch subscription gets its events grouped by type and institution;
// a failed batch is handled again event by event, so a bad event fails
// alone; in an ordered chain, consecutive events of a Batch subscription
// form one batch, and the chain stops at the first failure.
func TestDispatchEventsBatched(t *testing.T) {
	var mu sync.Mutex
	var batches [][]string
	batch := func(_ context.Context, b *Batch) error {
		var ids []string
		for _, ev := range b.Events {
			ids = append(ids, ev.ID)
		}
		mu.Lock()
		batches = append(batches, ids)
		mu.Unlock()
		for _, ev := range b.Events {
			if ev.ID == "bad" || ev.ID == "o3" {
				return errors.New(ev.ID + " fails")
			}
		}
		return nil
	}
	single := func(_ context.Context, ev *Event) error {
		mu.Lock()
		batches = append(batches, []string{"single:" + ev.ID})
		mu.Unlock()
		return nil
	}
	subs := map[string]Subscription{
		"x.batch.done.v1":   {Type: "x.batch.done.v1", Batch: batch},
		"x.ordered.done.v1": {Type: "x.ordered.done.v1", Ordered: true, Batch: batch},
		"x.single.done.v1":  {Type: "x.single.done.v1", Ordered: true, Handler: single},
	}
	ev := func(id, typ, tenant string) *pluginv1.Event {
		return &pluginv1.Event{Id: id, Type: typ, TenantId: tenant, DataJson: []byte("{}")}
	}
	in := &pluginv1.HandleEventsRequest{Events: []*pluginv1.Event{
		ev("a1", "x.batch.done.v1", "A"), ev("b1", "x.batch.done.v1", "B"), ev("a2", "x.batch.done.v1", "A"),
		ev("c1", "x.batch.done.v1", "C"), ev("bad", "x.batch.done.v1", "C"), ev("c2", "x.batch.done.v1", "C"),
		ev("o1", "x.ordered.done.v1", "A"), ev("o2", "x.ordered.done.v1", "A"), ev("s1", "x.single.done.v1", "A"),
		ev("o3", "x.ordered.done.v1", "A"), ev("o4", "x.ordered.done.v1", "A"), ev("s2", "x.single.done.v1", "A"),
	}}
	rt := &runtime{compiled: &compiled{events: subs}, logger: hclog.NewNullLogger()}
	out := rt.handleEvents(context.Background(), in)
	byID := map[string]*pluginv1.EventResult{}
	for i, r := range out.Results {
		require.Equal(t, in.Events[i].Id, r.EventId, "results in request order")
		byID[r.EventId] = r
	}
	for _, id := range []string{"a1", "a2", "b1", "c1", "c2", "o1", "o2", "s1"} {
		require.Empty(t, byID[id].Error, id)
		require.True(t, byID[id].Attempted, id)
	}
	require.Equal(t, "bad fails", byID["bad"].Error)
	require.Equal(t, "o3 fails", byID["o3"].Error)
	require.True(t, byID["o3"].Attempted)
	for _, id := range []string{"o4", "s2"} {
		require.False(t, byID[id].Attempted, "%s is held back behind o3", id)
	}
	require.Contains(t, batches, []string{"a1", "a2"}, "one institution's events of a type in one batch")
	require.Contains(t, batches, []string{"b1"})
	require.Contains(t, batches, []string{"c1", "bad", "c2"}, "tried as a batch first")
	require.Contains(t, batches, []string{"c1"}, "then event by event")
	require.Contains(t, batches, []string{"c2"})
	require.Contains(t, batches, []string{"o1", "o2"}, "consecutive ordered events of a Batch subscription: one batch")
	require.Contains(t, batches, []string{"o3", "o4"})
	require.Contains(t, batches, []string{"o3"}, "then event by event, stopping at the failure")
	require.NotContains(t, batches, []string{"o4"})
	require.NotContains(t, batches, []string{"single:s2"})
	require.Less(t, slices.IndexFunc(batches, func(b []string) bool { return slices.Equal(b, []string{"o1", "o2"}) }),
		slices.IndexFunc(batches, func(b []string) bool { return slices.Equal(b, []string{"single:s1"}) }), "a chain runs in order")
}
