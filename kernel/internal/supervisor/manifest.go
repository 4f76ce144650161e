package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/robfig/cron/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/edulure/edulure/kernel/internal/authz"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// ReservedResources are the first path segments after /api/v1/ that belong
// to the kernel; no plugin may serve under them.
var ReservedResources = []string{"auth", "me", "tenants", "tenant", "plugins", "admin", "events", "jobs"}

var (
	eventType = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,3}\.v[1-9][0-9]*$`)
	jobName   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	methods   = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
)

// Manifest is a plugin's manifest as the kernel validated it.
type Manifest struct {
	*pluginv1.Manifest
	Routes       []*Route
	ConfigSchema *jsonschema.Schema // nil: the plugin takes no configuration
	Migrations   []storage.Migration
	Permissions  []authz.Permission
}

// Route is one validated plugin route.
type Route struct {
	*pluginv1.Route
	Key  string // "GET /api/v1/leaderboard"
	Path wire.Path
}

// validateManifest checks a manifest against the operator's expectations
// and the kernel's rules. other lists the routes of the other loaded
// plugins (for conflicts); known reports whether a permission name exists
// outside this plugin (the kernel's and other plugins').
func validateManifest(m *pluginv1.Manifest, cfg PluginConfig, protocol int, others map[string][]*Route, known func(string) bool) (*Manifest, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.Name != cfg.Name {
		bad("the binary says its name is %q, but plugins.hcl lists it as %q", m.Name, cfg.Name)
	}
	if m.Version != cfg.Version {
		bad("the binary is version %q, but plugins.hcl expects %q", m.Version, cfg.Version)
	}
	if protocol < int(m.MinProtocol) || protocol > int(m.MaxProtocol) {
		bad("the plugin needs kernel protocol %d..%d; this kernel speaks %d", m.MinProtocol, m.MaxProtocol, protocol)
	}
	out := &Manifest{Manifest: m}
	prefix := cfg.Name + "."

	own := map[string]bool{}
	for _, p := range m.Permissions {
		switch {
		case !authz.PermissionName.MatchString(p.Name):
			bad("permission %q: name must look like %snoun.verb", p.Name, prefix)
		case !strings.HasPrefix(p.Name, prefix):
			bad("permission %q: a plugin's permissions must start with %q", p.Name, prefix)
		case own[p.Name]:
			bad("permission %q is declared twice", p.Name)
		}
		for _, r := range p.DefaultRoles {
			if !authz.IsBuiltinRole(r) {
				bad("permission %q: default role %q is not a built-in role (admin, instructor, learner)", p.Name, r)
			}
		}
		own[p.Name] = true
		out.Permissions = append(out.Permissions, authz.Permission{Name: p.Name, Description: p.Description, Defaults: p.DefaultRoles})
	}

	seen := map[string]*Route{}
	for _, r := range m.Routes {
		key := r.Method + " " + r.Path
		if !slices.Contains(methods, r.Method) {
			bad("route %s: method must be one of %s", key, strings.Join(methods, ", "))
			continue
		}
		path, err := wire.ParsePath(r.Path)
		if err != nil {
			bad("route %s: %v", key, err)
			continue
		}
		if slices.Contains(ReservedResources, path.Resource()) {
			bad("route %s: /api/v1/%s is reserved for the kernel", key, path.Resource())
			continue
		}
		switch {
		case r.Public && r.Permission != "" && !own[r.Permission] && !known(r.Permission):
			bad("route %s: unknown permission %q", key, r.Permission)
		case !r.Public && r.Permission == "":
			bad("route %s: a route that is not public must name a permission", key)
		case !r.Public && !own[r.Permission] && !known(r.Permission):
			bad("route %s: unknown permission %q (declare it in the manifest's permissions)", key, r.Permission)
		case strings.HasPrefix(r.Permission, "platform."):
			bad("route %s: plugins cannot require platform permissions", key)
		}
		for _, js := range [][]byte{r.RequestSchemaJson, r.ResponseSchemaJson} {
			if len(js) == 0 {
				continue
			}
			if _, err := OpenAPISchema(js); err != nil {
				bad("route %s: %v", key, err)
			}
		}
		route := &Route{Route: r, Key: key, Path: path}
		for _, prev := range seen {
			if prev.Method == r.Method && prev.Path.Overlaps(path) {
				bad("route %s overlaps the plugin's own route %s", key, prev.Key)
			}
		}
		for name, routes := range others {
			for _, o := range routes {
				if o.Method == r.Method && o.Path.Overlaps(path) {
					bad("route %s conflicts with route %s of plugin %q", key, o.Key, name)
				}
			}
		}
		seen[key] = route
		out.Routes = append(out.Routes, route)
	}

	published := map[string]bool{}
	for _, e := range m.Publishes {
		switch {
		case !eventType.MatchString(e.Type):
			bad("event type %q: must look like %snoun.verb.v1", e.Type, prefix)
		case !strings.HasPrefix(e.Type, prefix):
			bad("event type %q: a plugin publishes only events named %s...", e.Type, prefix)
		case published[e.Type]:
			bad("event type %q is declared twice", e.Type)
		}
		published[e.Type] = true
		if len(e.SchemaJson) == 0 {
			bad("event type %q: needs a JSON Schema for its data", e.Type)
		} else if _, err := compileSchema("event:"+e.Type, e.SchemaJson); err != nil {
			bad("event type %q: %v", e.Type, err)
		}
	}
	for _, s := range m.Subscribes {
		if !eventType.MatchString(s) {
			bad("subscription %q: not an event type (owner.noun.verb.vN)", s)
		}
	}
	jobs := map[string]bool{}
	for _, j := range m.Jobs {
		if !jobName.MatchString(j.Name) || jobs[j.Name] {
			bad("job %q: name must be unique, lowercase letters, digits, '-' or '_'", j.Name)
		}
		jobs[j.Name] = true
		if j.Schedule == "" && j.OnEvent == "" {
			bad("job %q: needs a schedule or an event that triggers it", j.Name)
		}
		if j.Schedule != "" {
			if _, err := cron.ParseStandard(j.Schedule); err != nil {
				bad("job %q: schedule %q: %v", j.Name, j.Schedule, err)
			}
		}
		if j.OnEvent != "" && !eventType.MatchString(j.OnEvent) {
			bad("job %q: trigger %q is not an event type", j.Name, j.OnEvent)
		}
	}

	last := 0
	for _, mg := range m.Migrations {
		if int(mg.Version) <= last {
			bad("migration %04d_%s: versions must increase", mg.Version, mg.Name)
		}
		last = int(mg.Version)
		out.Migrations = append(out.Migrations, storage.NewMigration(int(mg.Version), mg.Name, mg.Sql))
	}

	if len(m.ConfigSchemaJson) > 0 {
		s, err := compileSchema("config:"+cfg.Name, m.ConfigSchemaJson)
		if err != nil {
			bad("config schema: %v", err)
		}
		out.ConfigSchema = s
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// OpenAPISchema parses and checks a route's request or response schema
// fragment (an OpenAPI 3 schema object).
func OpenAPISchema(raw []byte) (*openapi3.Schema, error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, errors.New("a request or response schema must be a JSON object")
	}
	s := &openapi3.Schema{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if err := s.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("schema is not a valid OpenAPI 3 schema: %w", err)
	}
	return s, nil
}

func compileSchema(name string, raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	url := "mem:///" + strings.ReplaceAll(name, ":", "/") + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}
