package gamification

import (
	"context"
	"embed"
	"net/http"
	"time"

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
var migrations embed.FS

// Plugin is the gamification plugin.
type Plugin struct {
	// env is the kernel's services (membership, audit) and the logger.
	env *sdk.Env
}

var (
	_ sdk.Plugin      = (*Plugin)(nil)
	_ sdk.Provisioner = (*Plugin)(nil)
)

// New builds the plugin (lifecycle step 1: no I/O).
func New() *Plugin { return &Plugin{} }

// Config is the plugin's configuration. Its schema, with the limits of the
// tags, is what the kernel checks the operator's block in plugins.hcl and
// each institution's settings against; the manifest's value holds the
// defaults. sdk.Config gives the setting in force: the institution's over
// the operator's over these defaults.
type Config struct {
	Label           string `json:"label" maxLength:"20" doc:"What the institution calls points (\"XP\", \"stars\")."`
	PointsPerLesson int    `json:"points_per_lesson" minimum:"0" maximum:"1000" doc:"Points for each completed lesson; 0 awards nothing."`
}

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:        Name,
		Version:     "0.4.0",
		Description: "Points and a leaderboard per institution.",
		Permissions: []sdk.Permission{
			{Name: PermAward, Description: "Award points to a member.", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermRead, Description: "Read the leaderboard.", DefaultRoles: []string{"admin", "instructor", "learner"}},
		},
		Routes: []sdk.Route{
			{
				Method: "GET", Path: "/api/v1/leaderboard", Permission: PermRead,
				Summary: "The institution's leaderboard, highest first",
				Query:   LeaderboardQuery{}, Response: Leaderboard{},
				Handler: p.leaderboard,
			},
			{
				Method: "POST", Path: "/api/v1/leaderboard/points", Permission: PermAward,
				Summary: "Award points to a member", Status: http.StatusCreated,
				Request: AwardRequest{}, Response: Award{},
				Handler: p.award,
			},
			{
				Method: "GET", Path: "/api/v1/leaderboard/users/{user_id}", Permission: PermRead,
				Summary:  "A member's points and rank",
				Response: Standing{},
				Handler:  p.standing,
			},
			{
				Method: "GET", Path: "/api/v1/leaderboard/snapshots/latest", Permission: PermRead,
				Summary:  "The latest nightly snapshot of the top of the leaderboard",
				Response: Snapshot{},
				Handler:  p.latestSnapshot,
			},
		},
		// An award, by a member or for a lesson, publishes
		// gamification.points.awarded.v1 in its transaction.
		Publishes: []sdk.EventType{
			{Type: EventPointsAwarded, Description: "Points were awarded to a member.", Schema: PointsAwarded{}},
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
		Migrations: migrations,
		Config:     Config{Label: "points", PointsPerLesson: 10},
		// What the plugin holds about people, for the kernel's exports and
		// erasures (personal.go).
		PersonalData: p.personalData(),
	}
}

// Provision keeps the kernel's services (lifecycle step 4): an award asks
// whether its user is a member, and writes an audit entry.
func (p *Plugin) Provision(_ context.Context, env *sdk.Env) error {
	p.env = env
	return nil
}
