package sdk

import (
	"context"
	"errors"
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
