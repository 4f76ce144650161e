package plugintest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// The kernel's rules for manifests (kernel/internal/supervisor/manifest.go),
// those that need no JSON Schema, OpenAPI or cron parser: a plugin that
// passes its tests is not refused at load for a mistake the harness could
// have named.
var (
	permissionName    = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,3}$`)
	eventTypeName     = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,3}\.v[1-9][0-9]*$`)
	jobName           = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	routeMethods      = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	builtinRoles      = []string{"admin", "instructor", "learner"}
	reservedResources = []string{"auth", "me", "tenants", "tenant", "plugins", "admin", "events", "jobs"}
)

// validateManifest lists everything wrong with m that the kernel refuses.
func validateManifest(m sdk.Manifest) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := sdk.EncodeManifest(m); err != nil {
		bad("%v", err)
	}
	if !storage.PluginName.MatchString(m.Name) {
		bad("name %q: must be 2-31 lowercase letters, digits or underscores, starting with a letter", m.Name)
	}
	prefix := m.Name + "."
	own := map[string]bool{}
	for _, p := range m.Permissions {
		switch {
		case !permissionName.MatchString(p.Name):
			bad("permission %q: name must look like %snoun.verb", p.Name, prefix)
		case !strings.HasPrefix(p.Name, prefix):
			bad("permission %q: a plugin's permissions must start with %q", p.Name, prefix)
		case own[p.Name]:
			bad("permission %q is declared twice", p.Name)
		}
		for _, r := range p.DefaultRoles {
			if !slices.Contains(builtinRoles, r) {
				bad("permission %q: default role %q is not a built-in role (admin, instructor, learner)", p.Name, r)
			}
		}
		own[p.Name] = true
	}
	type seenRoute struct {
		key  string
		path wire.Path
	}
	var seen []seenRoute
	for _, r := range m.Routes {
		key := r.Key()
		if !slices.Contains(routeMethods, r.Method) {
			bad("route %s: method must be one of %s", key, strings.Join(routeMethods, ", "))
			continue
		}
		path, err := wire.ParsePath(r.Path)
		if err != nil {
			bad("route %s: %v", key, err)
			continue
		}
		if slices.Contains(reservedResources, path.Resource()) {
			bad("route %s: /api/v1/%s is reserved for the kernel", key, path.Resource())
			continue
		}
		switch {
		case !r.Public && r.Permission == "":
			bad("route %s: a route that is not public must name a permission", key)
		case r.Permission != "" && !permissionName.MatchString(r.Permission):
			bad("route %s: unknown permission %q (declare it in the manifest's permissions)", key, r.Permission)
		case strings.HasPrefix(r.Permission, "platform."):
			bad("route %s: plugins cannot require platform permissions", key)
		case strings.HasPrefix(r.Permission, prefix) && !own[r.Permission]:
			bad("route %s: unknown permission %q (declare it in the manifest's permissions)", key, r.Permission)
		}
		for _, js := range []json.RawMessage{r.Request, r.Response} {
			if b := bytes.TrimSpace(js); len(b) > 0 && (b[0] != '{' || !json.Valid(b)) {
				bad("route %s: a request or response schema must be a JSON object", key)
			}
		}
		for _, prev := range seen {
			if strings.HasPrefix(prev.key, r.Method+" ") && prev.path.Overlaps(path) {
				bad("route %s overlaps the plugin's own route %s", key, prev.key)
			}
		}
		seen = append(seen, seenRoute{key, path})
	}
	published := map[string]bool{}
	for _, e := range m.Publishes {
		switch {
		case !eventTypeName.MatchString(e.Type):
			bad("event type %q: must look like %snoun.verb.v1", e.Type, prefix)
		case !strings.HasPrefix(e.Type, prefix):
			bad("event type %q: a plugin publishes only events named %s...", e.Type, prefix)
		case published[e.Type]:
			bad("event type %q is declared twice", e.Type)
		}
		published[e.Type] = true
		if len(e.Schema) == 0 || !json.Valid(e.Schema) {
			bad("event type %q: needs a JSON Schema for its data", e.Type)
		}
	}
	for _, s := range m.Subscribes {
		if !eventTypeName.MatchString(s) {
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
		if j.Schedule != "" && len(strings.Fields(j.Schedule)) != 5 && !strings.HasPrefix(j.Schedule, "@") {
			bad("job %q: schedule %q: a cron schedule has five fields", j.Name, j.Schedule)
		}
		if j.OnEvent != "" && !eventTypeName.MatchString(j.OnEvent) {
			bad("job %q: trigger %q is not an event type", j.Name, j.OnEvent)
		}
	}
	return errors.Join(errs...)
}
