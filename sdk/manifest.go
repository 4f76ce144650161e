package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"reflect"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// compiled is a manifest turned into its wire form, with what serving it
// needs: the handlers by route key, event type and job name, the compiled
// schemas of the events it publishes, and its configuration's defaults.
type compiled struct {
	wire    *pluginv1.Manifest
	routes  map[string]Handler
	streams map[string]streamRoute
	// optionalBody holds the routes whose Request schema requires
	// nothing: an empty body is a request without one.
	optionalBody map[string]bool
	events       map[string]Subscription
	jobs         map[string]Job

	publishes  map[string]*jsonschema.Schema
	classes    []DataClass               // Manifest.PersonalData
	retention  map[string]RetentionClass // Manifest.Retention by name
	configType reflect.Type              // of Manifest.Config; nil without one
	configBase []byte                    // Manifest.Config as JSON: the defaults
}

// compileManifest checks what the plugin itself can get wrong in building
// its manifest (handlers, migration files, Go types that have no schema)
// and makes the wire form; the kernel validates the rest when loading, by
// the rules of wire.CheckManifest.
func compileManifest(m Manifest) (*compiled, error) {
	out := &pluginv1.Manifest{
		Name: m.Name, Version: m.Version, Description: m.Description,
		MinProtocol: uint32(m.MinProtocol), MaxProtocol: uint32(m.MaxProtocol),
	}
	for _, c := range m.Capabilities {
		out.Capabilities = append(out.Capabilities, string(c))
	}
	if out.MinProtocol == 0 {
		out.MinProtocol = ProtocolVersion
	}
	if out.MaxProtocol == 0 {
		out.MaxProtocol = ProtocolVersion
	}
	c := &compiled{wire: out, routes: map[string]Handler{}, streams: map[string]streamRoute{}, optionalBody: map[string]bool{},
		events: map[string]Subscription{}, jobs: map[string]Job{}, publishes: map[string]*jsonschema.Schema{}}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	gen := schema.NewGenerator(m.Name + ".")
	for _, r := range m.Routes {
		_, dup := c.routes[r.Key()]
		if _, sdup := c.streams[r.Key()]; sdup || dup {
			bad("route %s is declared twice", r.Key())
			continue
		}
		switch {
		case r.Handler == nil && r.Stream == nil:
			bad("route %s has no handler (Handler, or Stream for a streamed answer)", r.Key())
			continue
		case r.Handler != nil && r.Stream != nil:
			bad("route %s has both a Handler and a Stream: set one", r.Key())
			continue
		case r.Stream != nil && r.Response != nil:
			bad("route %s: a streamed route's answer is not a JSON body: declare its ContentType rather than a Response", r.Key())
			continue
		case r.Stream == nil && r.ContentType != "":
			bad("route %s: ContentType is for streamed routes (Stream)", r.Key())
			continue
		case r.Stream != nil:
			ct := r.ContentType
			if ct == "" {
				ct = SSEContentType
			}
			if _, _, err := mime.ParseMediaType(ct); err != nil {
				bad("route %s: ContentType %q is not a media type", r.Key(), r.ContentType)
				continue
			}
			c.streams[r.Key()] = streamRoute{handler: r.Stream, contentType: ct}
		default:
			c.routes[r.Key()] = r.Handler
		}
		wr := &pluginv1.Route{Method: r.Method, Path: r.Path, Permission: r.Permission, Public: r.Public, Summary: r.Summary, SuccessStatus: int32(r.Status),
			Stream: r.Stream != nil, StreamContentType: r.ContentType}
		var err error
		if wr.RequestSchemaJson, err = routeSchema(gen, r.Request); err != nil {
			bad("route %s: request: %v", r.Key(), err)
		}
		if wr.ResponseSchemaJson, err = routeSchema(gen, r.Response); err != nil {
			bad("route %s: response: %v", r.Key(), err)
		}
		if wr.QueryParams, err = queryParams(r); err != nil {
			bad("route %s: %v", r.Key(), err)
		}
		for _, q := range wr.QueryParams {
			wr.Query = append(wr.Query, q.Name)
		}
		out.Routes = append(out.Routes, wr)
	}
	if comps := gen.Components(); len(comps) > 0 {
		b, err := json.Marshal(comps)
		if err != nil {
			bad("encoding the schemas of route bodies: %v", err)
		}
		out.ComponentsJson = b
	}
	for _, r := range out.Routes {
		if len(r.RequestSchemaJson) > 0 && !wire.BodyRequired(r.RequestSchemaJson, out.ComponentsJson) {
			c.optionalBody[r.Method+" "+r.Path] = true
		}
	}
	for _, p := range m.Permissions {
		out.Permissions = append(out.Permissions, &pluginv1.Permission{Name: p.Name, Description: p.Description, DefaultRoles: p.DefaultRoles})
	}
	for _, e := range m.Publishes {
		js, err := eventSchema(m.Name, e.Schema)
		if err != nil {
			bad("event %s: %v", e.Type, err)
			continue
		}
		out.Publishes = append(out.Publishes, &pluginv1.EventType{Type: e.Type, Description: e.Description, SchemaJson: js})
		if s, err := schema.Compile("event "+e.Type, js); err != nil {
			bad("event %s: %v", e.Type, err)
		} else {
			c.publishes[e.Type] = s
		}
	}
	for _, sub := range m.Subscribes {
		_, dup := c.events[sub.Type]
		switch {
		case sub.Handler == nil && sub.Batch == nil:
			bad("subscription to %s has no handler (Handler, or Batch for batches)", sub.Type)
		case sub.Handler != nil && sub.Batch != nil:
			bad("subscription to %s has both a Handler and a Batch handler: set one", sub.Type)
		case dup:
			bad("subscription to %s is declared twice", sub.Type)
		case sub.MaxAttempts < 0:
			bad("subscription to %s: MaxAttempts cannot be negative", sub.Type)
		case sub.CatchUp.policy == wire.CatchUpSince && sub.CatchUp.since.IsZero(),
			sub.CatchUp.policy == wire.CatchUpWindow && sub.CatchUp.window <= 0:
			bad("subscription to %s: CatchUpSince needs a time and CatchUpWindow a positive duration", sub.Type)
		default:
			c.events[sub.Type] = sub
			ws := &pluginv1.Subscription{Type: sub.Type, Ordered: sub.Ordered, MaxAttempts: uint32(sub.MaxAttempts)}
			sub.CatchUp.wire(ws)
			out.Subscriptions = append(out.Subscriptions, ws)
		}
	}
	for _, j := range m.Jobs {
		switch {
		case j.Handler == nil:
			bad("job %s has no handler", j.Name)
		case c.jobs[j.Name].Handler != nil:
			bad("job %s is declared twice", j.Name)
		case j.MaxAttempts < 0 || j.Timeout < 0:
			bad("job %s: MaxAttempts and Timeout cannot be negative", j.Name)
		default:
			c.jobs[j.Name] = j
			out.Jobs = append(out.Jobs, &pluginv1.Job{
				Name: j.Name, Description: j.Description, Schedule: j.Schedule, OnEvent: j.OnEvent, PerTenant: j.PerTenant,
				MaxAttempts: uint32(j.MaxAttempts), TimeoutSeconds: uint32((j.Timeout + time.Second - 1) / time.Second), Permission: j.Permission,
			})
		}
	}
	migs, err := storage.LoadMigrations(m.Migrations)
	if err != nil {
		bad("%v", err)
	}
	for _, mg := range migs {
		out.Migrations = append(out.Migrations, &pluginv1.Migration{Version: uint32(mg.Version), Name: mg.Name, Sql: mg.SQL})
	}
	switch {
	case m.Config != nil && len(m.ConfigSchema) > 0:
		bad("set Config or ConfigSchema, not both")
	case m.Config != nil:
		if out.ConfigSchemaJson, err = configSchema(m.Config); err != nil {
			bad("config: %v", err)
		}
		c.configType = reflect.TypeOf(m.Config)
		c.configBase, _ = json.Marshal(m.Config) // configSchema encoded it
	case len(m.ConfigSchema) > 0:
		if !json.Valid(m.ConfigSchema) {
			bad("the config schema is not valid JSON")
		}
		out.ConfigSchemaJson = m.ConfigSchema
		if js, err := withoutSecretValues(m.ConfigSchema); err == nil {
			out.ConfigSchemaJson = js
		}
	}
	out.PersonalData, c.classes = personalData(m)
	out.Retention, c.retention = retentionClasses(m)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// personalData is the wire form of the manifest's personal data. A Go
// plugin always serves the calls: the SDK exports and erases from the
// classes, and erases an institution from the catalog.
func personalData(m Manifest) (*pluginv1.PersonalDataManifest, []DataClass) {
	out := &pluginv1.PersonalDataManifest{Served: true, NotPersonal: m.NotPersonal}
	for _, dc := range m.PersonalData {
		wc := &pluginv1.PersonalDataClass{
			Name: dc.Name, Table: dc.Table, Subject: dc.Subject, Purpose: dc.Purpose, Retention: dc.Retention,
			OnErase: string(dc.OnErase), NotPersonal: dc.NotPersonal, ObjectPrefix: dc.Objects,
			Custom: dc.Export != nil || dc.Erase != nil,
		}
		if wc.OnErase == "" && dc.Subject == "" {
			wc.OnErase = string(Keep)
		}
		if th := dc.Through; th != nil {
			wc.Through = &pluginv1.PersonalDataThrough{Column: th.Column, Table: th.Table, Key: th.Key}
		}
		for _, col := range dc.Columns {
			wc.Columns = append(wc.Columns, &pluginv1.PersonalDataColumn{Name: col.Name, Kind: string(col.Kind), Description: col.Description})
		}
		out.Classes = append(out.Classes, wc)
	}
	return out, m.PersonalData
}

// streamRoute is a streamed route's handler and media type.
type streamRoute struct {
	handler     StreamHandler
	contentType string
}

// raw reports whether v is a schema written by hand (JSON), and its bytes.
func raw(v any) ([]byte, bool) {
	switch b := v.(type) {
	case json.RawMessage:
		return b, true
	case []byte:
		return b, true
	}
	return nil, false
}

func routeSchema(gen *schema.Generator, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := raw(v); ok {
		if len(b) > 0 && !json.Valid(b) {
			return nil, errors.New("schema is not valid JSON")
		}
		return b, nil
	}
	ref, err := gen.Schema(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ref)
}

func queryParams(r Route) ([]*pluginv1.QueryParam, error) {
	var out []*pluginv1.QueryParam
	switch q := r.Query.(type) {
	case nil:
	case []string:
		for _, name := range q {
			out = append(out, &pluginv1.QueryParam{Name: name, SchemaJson: []byte(`{"type":"string"}`)})
		}
	default:
		params, err := schema.Params(q)
		if err != nil {
			return nil, err
		}
		for _, p := range params {
			b, err := json.Marshal(p.Schema)
			if err != nil {
				return nil, err
			}
			out = append(out, &pluginv1.QueryParam{Name: p.Name, SchemaJson: b, Required: p.Required, Description: p.Description})
		}
	}
	if r.Paginated {
		for _, p := range paginationParams {
			if !declared(out, p.Name) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// paginationParams are what Paginated declares: what Request.Page reads.
var paginationParams = []*pluginv1.QueryParam{
	{Name: "limit", SchemaJson: []byte(`{"type":"integer","minimum":1,"maximum":100,"default":50}`), Description: "Items per page (1 to 100, 50 when absent)."},
	{Name: "cursor", SchemaJson: []byte(`{"type":"string","maxLength":512}`), Description: "The next_cursor of the previous page."},
}

func declared(ps []*pluginv1.QueryParam, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// eventSchema is the JSON Schema of an event's data: as written, or made
// from a Go value's type.
func eventSchema(plugin string, v any) ([]byte, error) {
	if v == nil {
		return nil, errors.New("needs a JSON Schema of its data (Schema: a value of the data's Go type)")
	}
	if b, ok := raw(v); ok {
		return b, nil
	}
	gen := schema.NewGenerator(plugin + ".")
	ref, err := gen.Schema(v)
	if err != nil {
		return nil, err
	}
	return schema.JSONSchemaOf(ref, gen.Components(), false)
}

// configSchema is the JSON Schema of the configuration type, strict, with
// the value's fields as the defaults.
func configSchema(v any) ([]byte, error) {
	ref, err := schema.NewInlineGenerator().Schema(v)
	if err != nil {
		return nil, err
	}
	s := ref.Value
	if s == nil || !s.Type.Is("object") {
		return nil, fmt.Errorf("the configuration must be a struct, not %T", v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the defaults: %w", err)
	}
	var defaults map[string]any
	if err := json.Unmarshal(b, &defaults); err != nil {
		return nil, fmt.Errorf("the configuration must encode as a JSON object: %w", err)
	}
	for name, p := range s.Properties {
		if d, ok := defaults[name]; ok && p.Value != nil {
			p.Value.Default = d
		}
	}
	s.Required = nil // every setting has its default
	js, err := schema.JSONSchemaOf(openapi3.NewSchemaRef("", s), nil, true)
	if err != nil {
		return nil, err
	}
	return withoutSecretValues(js)
}

// withoutSecretValues drops the defaults and examples of the secret
// settings from a configuration schema: the schema is shown to every
// institution's admins, and a secret is never shown.
func withoutSecretValues(js []byte) ([]byte, error) {
	secrets := wire.ConfigSecrets(js)
	if len(secrets) == 0 {
		return js, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	props, _ := doc["properties"].(map[string]any)
	for _, name := range secrets {
		dropValues(props[name])
	}
	return json.Marshal(doc)
}

// dropValues drops the value keywords of schema v and of the schemas in it.
func dropValues(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "default")
		delete(x, "example")
		delete(x, "examples")
		for k, e := range x {
			switch k {
			case "enum", "const":
			case "properties", "patternProperties", "$defs", "definitions":
				if m, ok := e.(map[string]any); ok { // schemas by name: the names are not keywords
					for _, sub := range m {
						dropValues(sub)
					}
				}
			default:
				dropValues(e)
			}
		}
	case []any:
		for _, e := range x {
			dropValues(e)
		}
	}
}

// retentionClasses is the wire form of the manifest's retention classes.
func retentionClasses(m Manifest) ([]*pluginv1.RetentionClass, map[string]RetentionClass) {
	var out []*pluginv1.RetentionClass
	byName := map[string]RetentionClass{}
	for _, rc := range m.Retention {
		wc := &pluginv1.RetentionClass{
			Name: rc.Name, Description: rc.Description, Table: rc.Table, TimeColumn: rc.TimeColumn,
			Subject: rc.Subject, HoldColumns: rc.HoldColumns, Custom: rc.Apply != nil,
		}
		for _, a := range rc.Actions {
			wc.Actions = append(wc.Actions, string(a))
		}
		out = append(out, wc)
		byName[rc.Name] = rc
	}
	return out, byName
}
