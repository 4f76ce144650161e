package sdk

import (
	"context"
	"encoding/json"
	"io/fs"
	"time"
)

// Plugin is what a plugin author implements. The kernel drives every plugin
// through the same lifecycle, in this order, and refuses calls out of order:
//
//  1. New: the factory given to Serve builds the plugin. No I/O yet.
//  2. Manifest: the kernel reads the manifest, validates it (names, routes,
//     permissions, events, jobs, config schema) and refuses a bad plugin.
//  3. The kernel creates schema plugin_<name> and the plugin's database
//     roles, applies the manifest's migrations and turns on row-level
//     security for every table with a tenant_id column.
//  4. Provision: the plugin gets its Env (database pool as its own role,
//     host services, logger, operator configuration) and prepares itself.
//  5. Serve: the kernel forwards requests to the route handlers.
//  6. Cleanup: on shutdown, after in-flight requests have drained.
//
// Since: v1.0
type Plugin interface {
	Manifest() Manifest
	Provision(ctx context.Context, env *Env) error
	Cleanup(ctx context.Context) error
}

// ProtocolVersion is the kernel protocol version this SDK speaks.
//
// Since: v1.0
const ProtocolVersion = 1

// Manifest declares everything the kernel needs to know about a plugin.
//
// Since: v1.0
type Manifest struct {
	// Name is the plugin's name: lowercase letters, digits and underscores
	// (it names the schema plugin_<name> and prefixes the permissions).
	Name string
	// Version is the plugin's semantic version without a leading v ("1.2.0").
	Version string
	// Description is one line shown to operators and institution admins.
	Description string
	// MinProtocol and MaxProtocol bound the kernel protocol versions the
	// plugin works with; zero means ProtocolVersion.
	MinProtocol, MaxProtocol int
	// Routes the plugin serves, under /api/v1 and outside the kernel's
	// reserved prefixes.
	Routes []Route
	// Permissions the plugin introduces, named <plugin>.<noun>.<verb>.
	Permissions []Permission
	// Publishes lists the event types the plugin publishes.
	Publishes []EventType
	// Subscribes lists the event types the plugin handles, with their handlers.
	Subscribes []Subscription
	// Jobs the plugin declares.
	Jobs []Job
	// Migrations holds numbered SQL files (0001_init.up.sql), usually an
	// embed.FS. They run in the plugin's schema, in order, once each.
	Migrations fs.FS
	// ConfigSchema is the JSON Schema of the per-institution configuration
	// (nil: the plugin takes none).
	ConfigSchema json.RawMessage
}

// Route is one REST route served by the plugin.
//
// Since: v1.0
type Route struct {
	Method string // GET, POST, PUT, PATCH or DELETE
	// Path under /api/v1 with {name} parameters: /api/v1/leaderboard/{user_id}.
	Path string
	// Permission the caller needs, checked by the kernel before the handler
	// runs. Required unless Public.
	Permission string
	// Public routes need no credentials; a token, when sent, is still
	// honoured and its principal passed on.
	Public  bool
	Summary string
	// Request and Response are OpenAPI 3 schema objects of the JSON bodies
	// (nil: no body), merged into the kernel's /api/openapi.json.
	Request, Response json.RawMessage
	// Status is the success status for the OpenAPI document (200 if zero).
	Status int
	// Query names the query parameters the route reads.
	Query   []string
	Handler Handler
}

// Key identifies the route on the wire: "GET /api/v1/leaderboard".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Permission is a permission a plugin introduces.
//
// Since: v1.0
type Permission struct {
	Name        string
	Description string
	// DefaultRoles are the built-in roles (admin, instructor, learner)
	// granted it unless an institution changes its roles.
	DefaultRoles []string
}

// EventType is an event the plugin publishes.
//
// Since: v1.0
type EventType struct {
	Type        string // <plugin>.<noun>.<verb>.v<N>
	Description string
	Schema      json.RawMessage // JSON Schema of the event's data
}

// Job is a job the plugin declares. The kernel runs it on its schedule, when
// its event arrives, or on demand (POST /api/v1/jobs/{plugin}/{job}/runs),
// once per tick across all kernel replicas, retrying a failed attempt with
// backoff up to MaxAttempts.
//
// Since: v1.0 (Handler, MaxAttempts, Timeout and Permission since v1.1)
type Job struct {
	Name        string
	Description string
	Schedule    string // cron, five fields (or @hourly, @daily...); "" when not scheduled
	OnEvent     string // event type that triggers it; "" when none
	PerTenant   bool   // run once per enabled institution rather than once for the platform
	// MaxAttempts before a run is given up; 0: the kernel's default (5).
	MaxAttempts int
	// Timeout of one attempt; 0: the kernel's default (1 minute).
	Timeout time.Duration
	// Permission a caller needs to start a run on demand; "": the kernel's
	// tenancy.job.run (per-tenant jobs) or platform.job.run.
	Permission string
	Handler    JobHandler
}

// MustSub is fs.Sub for embedded migrations that panics on a bad directory
// name (a programming error found at the first run):
//
//	//go:embed migrations/*.sql
//	var migrations embed.FS
//	... Migrations: sdk.MustSub(migrations, "migrations"),
func MustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
