package sdk

import (
	"context"
	"io/fs"
	"time"
)

// Plugin is what a plugin author implements: a manifest, and optionally the
// Provisioner and CleanerUpper steps. The kernel drives every plugin
// through the same lifecycle, in this order, and refuses calls out of
// order:
//
//  1. New: the factory given to Serve builds the plugin. No I/O yet.
//  2. Manifest: the kernel reads the manifest, validates it (names, routes,
//     permissions, schemas, events, jobs, configuration) and refuses a bad
//     plugin with every reason at once.
//  3. The kernel creates schema plugin_<name> and the plugin's database
//     roles, applies the manifest's migrations and turns on row-level
//     security for every table with a tenant_id column.
//  4. Provision (Provisioner, optional): the plugin gets its Env (database,
//     host services, logger, operator configuration) and prepares itself.
//  5. Serve: the kernel forwards requests, events and job runs to the
//     handlers the manifest names, and asks for exports and erasures of
//     personal data (Manifest.PersonalData, TenantEraser).
//  6. Cleanup (CleanerUpper, optional): on shutdown, after in-flight
//     requests have drained.
//
// Since: v1.0 (Provision and Cleanup optional since v1.2)
type Plugin interface {
	Manifest() Manifest
}

// Provisioner is a Plugin that prepares itself once its database and host
// services exist (lifecycle step 4). An error stops the plugin from
// loading, with the error in the kernel's log.
//
// Since: v1.2 (part of Plugin in v1.0 and v1.1)
type Provisioner interface {
	Provision(ctx context.Context, env *Env) error
}

// CleanerUpper is a Plugin that releases something of its own at shutdown
// (lifecycle step 6). The SDK closes the database pool itself.
//
// Since: v1.2 (part of Plugin in v1.0 and v1.1)
type CleanerUpper interface {
	Cleanup(ctx context.Context) error
}

// ProtocolVersion is the kernel protocol version this SDK speaks.
//
// Since: v1.0
const ProtocolVersion = 1

// Manifest declares everything the kernel needs to know about a plugin.
//
// Schemas are written as Go types: the SDK generates the OpenAPI and JSON
// Schema documents from them, with the limits of their struct tags (see
// Route), so that a limit is written once and the kernel enforces it.
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
	// embed.FS of migrations/*.sql: the files at its root, or in its
	// "migrations" directory. They run in the plugin's schema, in order,
	// once each. An FS with no migration at all is refused.
	Migrations fs.FS
	// Config is the per-institution configuration: a value of the Go
	// struct type that holds it, whose field values are the defaults
	// (Config: Settings{Label: "points", PerLesson: 10}). The kernel checks
	// an institution's configuration and the operator's block in
	// plugins.hcl against the schema of the type; Config[T] reads the
	// setting in force. Nil: the plugin takes no configuration. A field
	// tagged secret:"true" is a secret setting: the kernel seals it at
	// rest and never shows it back (docs/plugins.md). Since: v1.2
	Config any
	// ConfigSchema is a hand-written JSON Schema of the configuration, for
	// what a Go type cannot say; Config is the usual way.
	ConfigSchema []byte
	// Capabilities are the host services the plugin uses (CapStorage,
	// CapPlatformStorage). The kernel refuses a call of a host service the
	// manifest does not declare (ErrForbidden), and a name it does not know
	// at load. Since: v1.2
	Capabilities []Capability
	// PersonalData describes the personal data the plugin holds, one
	// DataClass per kind: the SDK exports and erases a person's data and an
	// institution's from it, and sdk/plugintest fails the tests of a plugin
	// whose tables have personal columns it does not describe. Since: v1.2
	PersonalData []DataClass
	// NotPersonal lists columns ("table.column") of tables no data class
	// describes that look personal to that check but are not. Since: v1.2
	NotPersonal []string
	// Retention lists the plugin's data that expires, one RetentionClass
	// per kind: the SDK serves ApplyRetention from them (dry run and
	// execution, holds). Since: v1.3
	Retention []RetentionClass
}

// Route is one REST route served by the plugin.
//
// Request and Response are Go values whose types describe the JSON bodies
// (Request: CreateCourse{}, Response: Course{}); the schema of a type is
// generated from its fields and their tags:
//
//	type CreateCourse struct {
//		Title    string `json:"title" minLength:"1" maxLength:"200"`
//		Summary  string `json:"summary,omitempty" maxLength:"2000" doc:"Shown in the catalogue."`
//		Level    string `json:"level,omitempty" enum:"beginner,advanced"`
//		Teachers []string `json:"teachers,omitempty" format:"uuid" maxItems:"10"`
//		PassMark *int   `json:"pass_mark,omitempty" minimum:"0" maximum:"100"`
//	}
//
// A field is required unless its json tag says omitempty or omitzero (or it
// is an Optional); a pointer may be null. The kernel checks a request body
// against the schema before the handler runs, refusing unknown fields, and
// answers 422 naming each wrong field. The tags: doc, format, enum,
// minLength, maxLength, minimum, maximum, minItems, maxItems, pattern,
// default, example, required, readOnly, writeOnly, secret. Named struct types
// become shared schemas in /api/openapi.json. A json.RawMessage (or
// []byte) holding an OpenAPI 3.0 schema object is used as written.
//
// Since: v1.0 (Go types, Query types, Paginated and Stream since v1.2)
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
	// Request and Response describe the JSON bodies (nil: no body).
	Request, Response any
	// Status is the success status for the OpenAPI document (200 if zero).
	Status int
	// Query is a struct value whose fields are the query parameters the
	// route reads (the `query` tag names one, else its json name), with the
	// same tags as bodies; read them with Query[T]. The kernel checks them
	// and forwards only these. A []string of names declares parameters
	// that are plain strings.
	Query any
	// Paginated adds the ?limit= and ?cursor= parameters of a list (read
	// them with Request.Page).
	Paginated bool
	Handler   Handler
	// Stream serves the route instead of Handler, sending the answer as it
	// is written: Server-Sent Events (NewSSE) or a large download. The
	// kernel applies the stream limits of plugins.hcl to it instead of the
	// request timeout. Set Handler or Stream, not both. Since: v1.2
	Stream StreamHandler
	// ContentType is the media type of a Stream route's answer, for
	// /api/openapi.json and as its Content-Type unless the handler sets
	// another; "text/event-stream" (SSEContentType) when empty. Since: v1.2
	ContentType string
}

// Key identifies the route on the wire: "GET /api/v1/leaderboard".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Permission is a permission a plugin introduces.
//
// Since: v1.0
type Permission struct {
	Name        string
	Description string
	// DefaultRoles are the built-in roles (admin, instructor, learner,
	// compliance_officer, auditor) granted it unless an institution changes
	// its roles. (compliance_officer and auditor: Since v1.3.)
	DefaultRoles []string
}

// EventType is an event the plugin publishes.
//
// Since: v1.0 (a Go type as Schema since v1.2)
type EventType struct {
	Type        string // <plugin>.<noun>.<verb>.v<N>
	Description string
	// Schema is a value of the Go type of the event's data
	// (Schema: PointsAwarded{}), turned into a JSON Schema as Route bodies
	// are; a json.RawMessage holding a JSON Schema is used as written.
	Schema any
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

// MustSub is fs.Sub that panics on a bad directory name. Since v1.2 an
// embed.FS of migrations/*.sql can be given as it is.
//
// Since: v1.0
func MustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
