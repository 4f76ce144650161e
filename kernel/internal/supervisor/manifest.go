package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/edulure/edulure/kernel/internal/authz"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// Manifest is a plugin's manifest as the kernel validated it.
type Manifest struct {
	*pluginv1.Manifest
	Routes       []*Route
	ConfigSchema *jsonschema.Schema // nil: the plugin takes no configuration
	Migrations   []storage.Migration
	Permissions  []authz.Permission
	// EventSchemas are the compiled schemas of the types it publishes.
	EventSchemas map[string]*jsonschema.Schema
	// Subscriptions are its event subscriptions (subscribes and
	// subscriptions of the wire manifest, merged).
	Subscriptions []*pluginv1.Subscription
	// Secrets are the configuration's secret settings (wire.ConfigSecrets):
	// sealed at rest, never shown, delivered only inside the configuration.
	Secrets []string
}

// Route is one validated plugin route.
type Route = wire.CheckedRoute

// validateManifest checks a manifest: first the rules it can be judged by
// alone (wire.CheckManifest, which sdk/plugintest applies too), then what
// needs the kernel: the operator's expectations, the negotiated protocol,
// permissions of other owners, other plugins' routes (others), and the
// compilers of JSON Schemas, OpenAPI fragments and cron schedules. known
// reports whether a permission exists outside this plugin.
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
	routes, ruleErrs := wire.CheckManifest(m)
	errs = append(errs, ruleErrs...)
	for _, c := range m.Capabilities {
		if slices.Contains(wire.PrivilegedCapabilities, c) && !slices.Contains(cfg.Capabilities, c) {
			bad("capability %q is privileged and the operator has not allowed it to plugin %q: add capabilities = [%q] to its block in plugins.hcl to allow it", c, cfg.Name, c)
		}
	}
	out := &Manifest{Manifest: m, Routes: routes, EventSchemas: map[string]*jsonschema.Schema{}}
	for _, t := range m.Subscribes {
		out.Subscriptions = append(out.Subscriptions, &pluginv1.Subscription{Type: t})
	}
	out.Subscriptions = append(out.Subscriptions, m.Subscriptions...)
	prefix := cfg.Name + "."
	for _, p := range m.Permissions {
		out.Permissions = append(out.Permissions, authz.Permission{Name: p.Name, Description: p.Description, Defaults: p.DefaultRoles})
	}
	for _, r := range routes {
		if r.Permission != "" && !strings.HasPrefix(r.Permission, prefix) && !strings.HasPrefix(r.Permission, "platform.") && !known(r.Permission) {
			bad("route %s: unknown permission %q (declare it in the manifest's permissions)", r.Key, r.Permission)
		}
		for name, theirs := range others {
			for _, o := range theirs {
				if o.Method == r.Method && o.Path.Overlaps(r.Path) {
					bad("route %s conflicts with route %s of plugin %q", r.Key, o.Key, name)
				}
			}
		}
	}
	for _, e := range m.Publishes {
		if json.Valid(e.SchemaJson) && len(e.SchemaJson) > 0 {
			sch, err := schema.Compile("event "+e.Type, e.SchemaJson) // the SDK's compiler, so relay and publish agree
			if err != nil {
				bad("event type %q: %v", e.Type, err)
			}
			out.EventSchemas[e.Type] = sch
		}
	}
	for _, mg := range m.Migrations {
		out.Migrations = append(out.Migrations, storage.NewMigration(int(mg.Version), mg.Name, mg.Sql))
	}
	if len(m.ConfigSchemaJson) > 0 && json.Valid(m.ConfigSchemaJson) {
		sch, err := wire.CompileConfig(cfg.Name, m.ConfigSchemaJson)
		if err != nil {
			bad("%v", err)
		}
		out.ConfigSchema = sch
		out.Secrets = wire.ConfigSecrets(m.ConfigSchemaJson)
	}
	if len(errs) == 0 {
		// The operator's block in plugins.hcl, against the schema: each
		// wrong setting named with where it is written. No message repeats
		// a value.
		for _, v := range wire.CheckConfig(out.ConfigSchema, cfg.Config, "config") {
			bad("%s%s: %s", cfg.where(v.Field), v.Field, v.Message)
		}
		errs = append(errs, literalSecrets(out.Secrets, cfg)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// OpenAPISchema parses a route's request or response schema fragment (an
// OpenAPI 3.0 schema object; wire.CheckManifest has checked it at load).
func OpenAPISchema(raw []byte) (*openapi3.Schema, error) { return wire.OpenAPISchema(raw) }

// literalSecrets refuses a secret setting written as a value in plugins.hcl:
// an operator gives one with env() or file(), so that the file holds none.
func literalSecrets(secrets []string, cfg PluginConfig) []error {
	if len(secrets) == 0 {
		return nil
	}
	var given map[string]json.RawMessage
	if json.Unmarshal(cfg.Config, &given) != nil {
		return nil
	}
	var errs []error
	for _, name := range secrets {
		if _, ok := given[name]; ok && !cfg.ConfigExternal[name] {
			field := "config." + name
			errs = append(errs, fmt.Errorf(`%s%s: is a secret setting: write env("VARIABLE") or file("/path/to/secret") instead of its value; plugins.hcl never holds a secret`, cfg.where(field), field))
		}
	}
	return errs
}
