package gamification

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/edulure/edulure/sdk"
)

// Name is the plugin's name: its schema is plugin_gamification.
const Name = "gamification"

// Permissions the plugin introduces.
const (
	PermAward = "gamification.points.award"
	PermRead  = "gamification.leaderboard.read"
)

// Event types.
const (
	EventPointsAwarded   = "gamification.points.awarded.v1"
	EventLessonCompleted = "courses.lesson.completed.v1"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Plugin is the gamification plugin.
type Plugin struct {
	env      *sdk.Env
	defaults Config // the schema's defaults, then the operator's
}

var _ sdk.Plugin = (*Plugin)(nil)

// New builds the plugin (lifecycle step 1: no I/O).
func New() *Plugin { return &Plugin{} }

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:        Name,
		Version:     "0.2.0",
		Description: "Points and a leaderboard per institution.",
		Permissions: []sdk.Permission{
			{Name: PermAward, Description: "Award points to a member.", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermRead, Description: "Read the leaderboard.", DefaultRoles: []string{"admin", "instructor", "learner"}},
		},
		Routes: []sdk.Route{
			{
				Method: "GET", Path: "/api/v1/leaderboard", Permission: PermRead,
				Summary: "The institution's leaderboard, highest first",
				Query:   []string{"limit"}, Response: leaderboardSchema,
				Handler: sdk.HandlerFunc(p.leaderboard),
			},
			{
				Method: "POST", Path: "/api/v1/leaderboard/points", Permission: PermAward,
				Summary: "Award points to a member", Status: http.StatusCreated,
				Request: awardRequestSchema, Response: awardSchema,
				Handler: sdk.HandlerFunc(p.award),
			},
			{
				Method: "GET", Path: "/api/v1/leaderboard/users/{user_id}", Permission: PermRead,
				Summary:  "A member's points and rank",
				Response: standingSchema,
				Handler:  sdk.HandlerFunc(p.standing),
			},
			{
				Method: "GET", Path: "/api/v1/leaderboard/snapshots/latest", Permission: PermRead,
				Summary:  "The latest nightly snapshot of the top of the leaderboard",
				Response: snapshotSchema,
				Handler:  sdk.HandlerFunc(p.latestSnapshot),
			},
		},
		// An award, by a member or for a lesson, publishes
		// gamification.points.awarded.v1 in its transaction.
		Publishes: []sdk.EventType{
			{Type: EventPointsAwarded, Description: "Points were awarded to a member.", Schema: awardedEventSchema},
		},
		// Each completed lesson earns the member points_per_lesson
		// (lessons.go).
		Subscribes: []sdk.Subscription{
			{Type: EventLessonCompleted, Handler: p.lessonCompleted},
		},
		// Nightly, per institution, and on demand through the kernel
		// (POST /api/v1/jobs/gamification/leaderboard-snapshot/runs).
		Jobs: []sdk.Job{
			{
				Name: SnapshotJob, Description: "Copy the top of the leaderboard, to show past standings.",
				Schedule: "0 2 * * *", PerTenant: true, MaxAttempts: 3, Timeout: time.Minute,
				Handler: p.snapshot,
			},
		},
		Migrations:   sdk.MustSub(migrationFiles, "migrations"),
		ConfigSchema: configSchema,
	}
}

// Provision keeps the environment and reads the operator's configuration
// (lifecycle step 4). A bad configuration stops the plugin from loading,
// with a message saying what is wrong.
func (p *Plugin) Provision(_ context.Context, env *sdk.Env) error {
	defaults, err := parseConfig(schemaDefaults, env.OperatorConfig)
	if err != nil {
		return fmt.Errorf("the config block of plugin %q in plugins.hcl: %w", Name, err)
	}
	if env.DB == nil {
		return errors.New("gamification needs its database")
	}
	p.env, p.defaults = env, defaults
	return nil
}

// Cleanup has nothing to release: the SDK closes the database pool.
func (p *Plugin) Cleanup(context.Context) error { return nil }

// Config is the plugin's configuration (configSchema). The operator's
// config block in plugins.hcl sets defaults for the whole installation;
// an institution's own configuration overrides them.
type Config struct {
	// Label is what the institution calls points ("XP", "stars").
	Label string `json:"label"`
	// PointsPerLesson is awarded for each completed lesson
	// (courses.lesson.completed.v1); 0 awards nothing.
	PointsPerLesson int `json:"points_per_lesson"`
}

var schemaDefaults = Config{Label: "points", PointsPerLesson: 10}

// parseConfig reads raw (a JSON object) over base and checks it as
// configSchema does.
func parseConfig(base Config, raw json.RawMessage) (Config, error) {
	c := base
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("must be an object with label and points_per_lesson: %w", err)
		}
	}
	if n := utf8.RuneCountInString(c.Label); n > 20 {
		return Config{}, fmt.Errorf("label: must be at most 20 characters, not %d", n)
	}
	if c.PointsPerLesson < 0 || c.PointsPerLesson > 1000 {
		return Config{}, fmt.Errorf("points_per_lesson: must be between 0 and 1000, not %d", c.PointsPerLesson)
	}
	return c, nil
}

// config is the configuration in force for the request's institution. The
// kernel has validated the institution's part against configSchema.
func (p *Plugin) config(req *sdk.Request) (Config, error) {
	c, err := parseConfig(p.defaults, req.Config)
	if err != nil {
		return Config{}, fmt.Errorf("reading the institution's configuration: %w", err)
	}
	return c, nil
}

// tenantConfig is the configuration in force for an institution outside a
// request (an event, a job), read from the kernel, and whether the plugin
// is enabled there.
func (p *Plugin) tenantConfig(ctx context.Context, tenantID string) (Config, bool, error) {
	raw, enabled, err := p.env.Host.TenantConfig(ctx, tenantID)
	if err != nil {
		return Config{}, false, fmt.Errorf("reading the configuration of institution %s: %w", tenantID, err)
	}
	c, err := parseConfig(p.defaults, raw)
	if err != nil {
		return Config{}, false, fmt.Errorf("reading the configuration of institution %s: %w", tenantID, err)
	}
	return c, enabled, nil
}

var configSchema = json.RawMessage(`{
	"type": "object",
	"additionalProperties": false,
	"properties": {
		"label": {"type": "string", "maxLength": 20, "default": "points"},
		"points_per_lesson": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 10}
	}
}`)

var awardedEventSchema = json.RawMessage(`{
	"type": "object",
	"required": ["award_id", "user_id", "points", "total"],
	"properties": {
		"award_id": {"type": "string", "format": "uuid"},
		"user_id": {"type": "string", "format": "uuid"},
		"points": {"type": "integer", "minimum": 1, "maximum": 1000},
		"reason": {"type": "string", "maxLength": 200},
		"lesson_id": {"type": "string", "format": "uuid"},
		"total": {"type": "integer"}
	}
}`)
