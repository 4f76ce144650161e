package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/robfig/cron/v3"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// Catch-up policies of a subscription (Subscription.catch_up). Since: v1.2
const (
	CatchUpNone     = "none"
	CatchUpRetained = "retained"
	CatchUpSince    = "since"
	CatchUpWindow   = "window"
)

// CatchUpPolicies are the values Subscription.catch_up may take ("" is none).
var CatchUpPolicies = []string{"", CatchUpNone, CatchUpRetained, CatchUpSince, CatchUpWindow}

// The rules a manifest can be judged by on its own. The kernel applies them
// at load (adding what needs its state: the operator's expectations, other
// plugins' routes, the permission catalogue, schema compilers), and
// sdk/plugintest applies them in a plugin's tests, so both refuse the same
// mistakes with the same words.
var (
	// PluginName is the form of a plugin's name (it names schema plugin_<name>).
	PluginName = regexp.MustCompile(`^[a-z][a-z0-9_]{1,30}$`)
	// PermissionName is owner.noun.verb, lowercase.
	PermissionName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,3}$`)
	// EventType is owner.noun.verb.vN.
	EventType = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,3}\.v[1-9][0-9]*$`)
	// JobName is a job's name within its plugin.
	JobName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	// Methods are the HTTP methods a route may use.
	Methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	// BuiltinRoles are the roles every institution has.
	BuiltinRoles = []string{"admin", "instructor", "learner", "compliance_officer", "auditor"}
	// ReservedResources are the first path segments after /api/v1/ that
	// belong to the kernel.
	ReservedResources = []string{"auth", "me", "tenants", "tenant", "plugins", "admin", "events", "jobs", "blobs"}
	// Semver is a semantic version (semver.org 2.0.0) without a leading "v".
	Semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	// QueryName is the form of a query parameter's name.
	QueryName = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,62}$`)
	// ComponentName is the form of a component schema's name after the
	// plugin's prefix.
	ComponentName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	// Capabilities are the host services a manifest may declare (Since:
	// v1.2): the kernel serves a plugin only those it declares.
	Capabilities = []string{CapStorage, CapPlatformStorage, CapRetention, CapGrants, CapSign}
	// PrivilegedCapabilities are the capabilities the operator must allow
	// a plugin in its block of plugins.hcl (capabilities = [...]) before
	// the kernel loads a manifest declaring them (Since: v1.3).
	PrivilegedCapabilities = []string{CapRetention, CapGrants, CapSign}
)

// The capabilities.
const (
	// CapStorage: object storage scoped to the plugin and one institution.
	CapStorage = "storage"
	// CapPlatformStorage: object storage scoped to the plugin and the
	// platform, for platform jobs.
	CapPlatformStorage = "platform_storage"
	// CapRetention: list every enabled plugin's retention classes in a
	// tenant and ask a plugin to apply retention. Privileged. Since: v1.3
	CapRetention = "retention"
	// CapGrants: list a tenant's grants and revoke one on behalf of a
	// principal. Privileged. Since: v1.3
	CapGrants = "grants"
	// CapSign: have the kernel sign a payload with its Ed25519 keyring.
	// Privileged. Since: v1.3
	CapSign = "sign"
)

// CheckedRoute is a route that passed CheckManifest, with its parsed path
// and compiled contract.
type CheckedRoute struct {
	*pluginv1.Route
	Key      string // "GET /api/v1/leaderboard"
	Path     Path
	Contract *Contract
	// Components are the manifest's component schemas (JSON), which the
	// route's schemas may refer to.
	Components []byte
}

// CheckManifest returns the routes that passed and every breach of the
// rules above. A route's permission outside the plugin's own prefix is
// passed on: whether it exists is for the kernel's catalogue to say.
// Route schemas are checked as OpenAPI 3.0 schema objects (OpenAPISchema).
func CheckManifest(m *pluginv1.Manifest) ([]*CheckedRoute, []error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !PluginName.MatchString(m.Name) {
		bad("name %q: must be 2-31 lowercase letters, digits or underscores, starting with a letter", m.Name)
	}
	if !Semver.MatchString(m.Version) {
		bad("version %q: must be a semantic version MAJOR.MINOR.PATCH without a leading v, e.g. \"0.1.0\"", m.Version)
	}
	prefix := m.Name + "."
	components, err := checkComponents(m, prefix)
	if err != nil {
		bad("%v", err)
	}

	own := map[string]bool{}
	for _, p := range m.Permissions {
		switch {
		case !PermissionName.MatchString(p.Name):
			bad("permission %q: name must look like %snoun.verb", p.Name, prefix)
		case !strings.HasPrefix(p.Name, prefix):
			bad("permission %q: a plugin's permissions must start with %q", p.Name, prefix)
		case own[p.Name]:
			bad("permission %q is declared twice", p.Name)
		}
		for _, r := range p.DefaultRoles {
			if !slices.Contains(BuiltinRoles, r) {
				bad("permission %q: default role %q is not a built-in role (admin, instructor, learner)", p.Name, r)
			}
		}
		own[p.Name] = true
	}

	var routes []*CheckedRoute
	for _, r := range m.Routes {
		key := r.Method + " " + r.Path
		if !slices.Contains(Methods, r.Method) {
			bad("route %s: method must be one of %s", key, strings.Join(Methods, ", "))
			continue
		}
		path, err := ParsePath(r.Path)
		if err != nil {
			bad("route %s: %v", key, err)
			continue
		}
		if slices.Contains(ReservedResources, path.Resource()) {
			bad("route %s: /api/v1/%s is reserved for the kernel", key, path.Resource())
			continue
		}
		switch {
		case !r.Public && r.Permission == "":
			bad("route %s: a route that is not public must name a permission", key)
		case r.Permission != "" && !PermissionName.MatchString(r.Permission):
			bad("route %s: unknown permission %q (declare it in the manifest's permissions)", key, r.Permission)
		case strings.HasPrefix(r.Permission, "platform."):
			bad("route %s: plugins cannot require platform permissions", key)
		case strings.HasPrefix(r.Permission, prefix) && !own[r.Permission]:
			bad("route %s: unknown permission %q (declare it in the manifest's permissions)", key, r.Permission)
		}
		switch {
		case r.Stream && len(r.ResponseSchemaJson) > 0:
			bad("route %s: a streamed route has no JSON response schema (stream_content_type names its media type)", key)
		case !r.Stream && r.StreamContentType != "":
			bad("route %s: stream_content_type is for streamed routes", key)
		case r.StreamContentType != "":
			if _, _, err := mime.ParseMediaType(r.StreamContentType); err != nil {
				bad("route %s: stream_content_type %q is not a media type", key, r.StreamContentType)
			}
		}
		for _, js := range [][]byte{r.RequestSchemaJson, r.ResponseSchemaJson} {
			if len(js) > 0 {
				if _, err := OpenAPISchemaIn(js, components); err != nil {
					bad("route %s: %v", key, err)
				}
			}
		}
		seenParam := map[string]bool{}
		for _, q := range r.QueryParams {
			switch {
			case !QueryName.MatchString(q.Name):
				bad("route %s: query parameter %q: a name is lowercase letters, digits, '_' or '.'", key, q.Name)
			case seenParam[q.Name]:
				bad("route %s: query parameter %q is declared twice", key, q.Name)
			}
			seenParam[q.Name] = true
		}
		contract, err := CompileContract(r, m.ComponentsJson)
		if err != nil {
			bad("route %s: %v", key, err)
			continue
		}
		for _, prev := range routes {
			if prev.Method == r.Method && prev.Path.Overlaps(path) {
				bad("route %s overlaps the plugin's own route %s", key, prev.Key)
			}
		}
		routes = append(routes, &CheckedRoute{Route: r, Key: key, Path: path, Contract: contract, Components: m.ComponentsJson})
	}

	published := map[string]bool{}
	for _, e := range m.Publishes {
		switch {
		case !EventType.MatchString(e.Type):
			bad("event type %q: must look like %snoun.verb.v1", e.Type, prefix)
		case !strings.HasPrefix(e.Type, prefix):
			bad("event type %q: a plugin publishes only events named %s...", e.Type, prefix)
		case published[e.Type]:
			bad("event type %q is declared twice", e.Type)
		}
		published[e.Type] = true
		if len(e.SchemaJson) == 0 || !json.Valid(e.SchemaJson) {
			bad("event type %q: needs a JSON Schema for its data", e.Type)
		}
	}
	subscribed := map[string]bool{}
	for _, s := range m.Subscribes {
		if !EventType.MatchString(s) {
			bad("subscription %q: not an event type (owner.noun.verb.vN)", s)
		}
		subscribed[s] = true
	}
	for _, s := range m.Subscriptions {
		switch {
		case !EventType.MatchString(s.Type):
			bad("subscription %q: not an event type (owner.noun.verb.vN)", s.Type)
		case subscribed[s.Type]:
			bad("subscription %q is declared twice", s.Type)
		case s.MaxAttempts > 100:
			bad("subscription %q: at most 100 attempts", s.Type)
		case !slices.Contains(CatchUpPolicies, s.CatchUp):
			bad("subscription %q: catch_up %q is not one of none, retained, since, window", s.Type, s.CatchUp)
		case s.CatchUp == CatchUpSince && s.CatchUpSinceUnixMs <= 0:
			bad("subscription %q: catch_up since needs catch_up_since_unix_ms", s.Type)
		case s.CatchUp == CatchUpWindow && s.CatchUpWindowSeconds <= 0:
			bad("subscription %q: catch_up window needs catch_up_window_seconds", s.Type)
		}
		subscribed[s.Type] = true
	}
	jobs := map[string]bool{}
	for _, j := range m.Jobs {
		if !JobName.MatchString(j.Name) || jobs[j.Name] {
			bad("job %q: name must be unique, lowercase letters, digits, '-' or '_'", j.Name)
		}
		jobs[j.Name] = true
		if j.Schedule != "" {
			if _, err := cron.ParseStandard(j.Schedule); err != nil {
				bad("job %q: schedule %q: %v (five fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @every 1h)", j.Name, j.Schedule, err)
			}
		}
		if j.OnEvent != "" && !EventType.MatchString(j.OnEvent) {
			bad("job %q: trigger %q is not an event type", j.Name, j.OnEvent)
		}
		if j.MaxAttempts > 25 {
			bad("job %q: at most 25 attempts", j.Name)
		}
		if j.TimeoutSeconds > 24*3600 {
			bad("job %q: a timeout of at most 24 hours", j.Name)
		}
		if j.Permission != "" && !own[j.Permission] {
			bad("job %q: permission %q is not one the plugin declares", j.Name, j.Permission)
		}
	}
	last := uint32(0)
	for _, mg := range m.Migrations {
		if mg.Version <= last {
			bad("migration %04d_%s: versions must increase", mg.Version, mg.Name)
		}
		last = mg.Version
	}
	if len(m.ConfigSchemaJson) > 0 && !json.Valid(m.ConfigSchemaJson) {
		bad("config schema: not valid JSON")
	}
	caps := map[string]bool{}
	for _, c := range m.Capabilities {
		switch {
		case !slices.Contains(Capabilities, c):
			bad("capability %q: unknown (known: %s)", c, strings.Join(Capabilities, ", "))
		case caps[c]:
			bad("capability %q is declared twice", c)
		}
		caps[c] = true
	}
	checkPersonalData(m, bad)
	checkRetention(m, bad)
	return routes, errs
}

// checkComponents reads the manifest's component schemas: each named with
// the plugin's prefix and a valid OpenAPI 3.0 schema.
func checkComponents(m *pluginv1.Manifest, prefix string) (openapi3.Schemas, error) {
	if len(m.ComponentsJson) == 0 {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(m.ComponentsJson, &raw); err != nil {
		return nil, fmt.Errorf("components: not a JSON object of schemas: %w", err)
	}
	var errs []error
	out := openapi3.Schemas{}
	for name, js := range raw {
		if !strings.HasPrefix(name, prefix) || !ComponentName.MatchString(strings.TrimPrefix(name, prefix)) {
			errs = append(errs, fmt.Errorf("component %q: names must be %q followed by letters, digits, '.', '_' or '-'", name, prefix))
			continue
		}
		ref := &openapi3.SchemaRef{}
		if err := json.Unmarshal(js, ref); err != nil {
			errs = append(errs, fmt.Errorf("component %q: %w", name, err))
			continue
		}
		out[name] = ref
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := resolve(out, nil); err != nil {
		return nil, fmt.Errorf("components: %w", err)
	}
	return out, nil
}
