package sdk

import (
	"encoding/json"
	"fmt"
	"time"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
)

// EncodeManifest is the wire form of m and the handlers by route key. It
// checks only what the plugin itself can get wrong in building it (handlers,
// migration files, JSON); the kernel validates the rest when loading.
//
// Since: v1.0
func EncodeManifest(m Manifest) (*pluginv1.Manifest, map[string]Handler, error) {
	out, h, err := encodeManifest(m)
	if err != nil {
		return nil, nil, err
	}
	return out, h.routes, nil
}

// handlers are a manifest's functions by route key, event type and job name.
type handlers struct {
	routes map[string]Handler
	events map[string]Subscription
	jobs   map[string]Job
}

func encodeManifest(m Manifest) (*pluginv1.Manifest, *handlers, error) {
	out := &pluginv1.Manifest{
		Name: m.Name, Version: m.Version, Description: m.Description,
		MinProtocol: uint32(m.MinProtocol), MaxProtocol: uint32(m.MaxProtocol),
		ConfigSchemaJson: m.ConfigSchema,
	}
	h := &handlers{events: map[string]Subscription{}, jobs: map[string]Job{}}
	for _, sub := range m.Subscribes {
		if sub.Handler == nil {
			return nil, nil, fmt.Errorf("subscription to %s has no handler", sub.Type)
		}
		if _, dup := h.events[sub.Type]; dup {
			return nil, nil, fmt.Errorf("subscription to %s is declared twice", sub.Type)
		}
		if sub.MaxAttempts < 0 {
			return nil, nil, fmt.Errorf("subscription to %s: MaxAttempts cannot be negative", sub.Type)
		}
		h.events[sub.Type] = sub
		out.Subscriptions = append(out.Subscriptions, &pluginv1.Subscription{Type: sub.Type, Ordered: sub.Ordered, MaxAttempts: uint32(sub.MaxAttempts)})
	}
	if out.MinProtocol == 0 {
		out.MinProtocol = ProtocolVersion
	}
	if out.MaxProtocol == 0 {
		out.MaxProtocol = ProtocolVersion
	}
	handlers := map[string]Handler{}
	for _, r := range m.Routes {
		if r.Handler == nil {
			return nil, nil, fmt.Errorf("route %s has no handler", r.Key())
		}
		if _, dup := handlers[r.Key()]; dup {
			return nil, nil, fmt.Errorf("route %s is declared twice", r.Key())
		}
		for _, js := range []json.RawMessage{r.Request, r.Response} {
			if len(js) > 0 && !json.Valid(js) {
				return nil, nil, fmt.Errorf("route %s: request or response schema is not valid JSON", r.Key())
			}
		}
		handlers[r.Key()] = r.Handler
		out.Routes = append(out.Routes, &pluginv1.Route{
			Method: r.Method, Path: r.Path, Permission: r.Permission, Public: r.Public, Summary: r.Summary,
			RequestSchemaJson: r.Request, ResponseSchemaJson: r.Response, SuccessStatus: int32(r.Status), Query: r.Query,
		})
	}
	for _, p := range m.Permissions {
		out.Permissions = append(out.Permissions, &pluginv1.Permission{Name: p.Name, Description: p.Description, DefaultRoles: p.DefaultRoles})
	}
	for _, e := range m.Publishes {
		out.Publishes = append(out.Publishes, &pluginv1.EventType{Type: e.Type, Description: e.Description, SchemaJson: e.Schema})
	}
	for _, j := range m.Jobs {
		if j.Handler == nil {
			return nil, nil, fmt.Errorf("job %s has no handler", j.Name)
		}
		if _, dup := h.jobs[j.Name]; dup {
			return nil, nil, fmt.Errorf("job %s is declared twice", j.Name)
		}
		if j.MaxAttempts < 0 || j.Timeout < 0 {
			return nil, nil, fmt.Errorf("job %s: MaxAttempts and Timeout cannot be negative", j.Name)
		}
		h.jobs[j.Name] = j
		out.Jobs = append(out.Jobs, &pluginv1.Job{
			Name: j.Name, Description: j.Description, Schedule: j.Schedule, OnEvent: j.OnEvent, PerTenant: j.PerTenant,
			MaxAttempts: uint32(j.MaxAttempts), TimeoutSeconds: uint32((j.Timeout + time.Second - 1) / time.Second), Permission: j.Permission,
		})
	}
	migs, err := storage.LoadMigrations(m.Migrations)
	if err != nil {
		return nil, nil, err
	}
	for _, mg := range migs {
		out.Migrations = append(out.Migrations, &pluginv1.Migration{Version: uint32(mg.Version), Name: mg.Name, Sql: mg.SQL})
	}
	if len(m.ConfigSchema) > 0 && !json.Valid(m.ConfigSchema) {
		return nil, nil, fmt.Errorf("the config schema is not valid JSON")
	}
	h.routes = handlers
	return out, h, nil
}
