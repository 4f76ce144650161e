package telemetry

import (
	"context"
	"embed"
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edulure/edulure/sdk"
)

// Name is the plugin's name: its database schema is plugin_telemetry.
const Name = "telemetry"

// Version is the plugin's own version, released independently of the
// kernel.
const Version = "0.2.0"

// Permissions the plugin introduces (docs/telemetry.md, "Permissions").
const (
	PermConsentSelf   = "telemetry.consent.self"   // record and read one's own consent
	PermConsentManage = "telemetry.consent.manage" // read and record others' consent
	PermPolicyManage  = "telemetry.policy.manage"  // publish consent policies
	PermEventSelf     = "telemetry.event.self"     // send and read one's own statements
	PermEventIngest   = "telemetry.event.ingest"   // send statements for any member, from an allowed source
	PermAggregateRead = "telemetry.aggregate.read" // read aggregates and freshness (analysts)
	PermExportRun     = "telemetry.export.run"     // run and list exports
)

//go:embed migrations/*.sql
var migrations embed.FS

// Plugin is the telemetry plugin.
type Plugin struct {
	env     *sdk.Env
	metrics *metrics
}

var (
	_ sdk.Plugin      = (*Plugin)(nil)
	_ sdk.Provisioner = (*Plugin)(nil)
)

// New builds the plugin (lifecycle step 1: no I/O).
func New() *Plugin { return &Plugin{metrics: newMetrics()} }

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	var routes []sdk.Route
	for _, group := range [][]sdk.Route{p.consentRoutes(), p.ingestRoutes(), p.freshnessRoutes(), p.aggregateRoutes(), p.exportRoutes()} {
		routes = append(routes, group...)
	}
	return sdk.Manifest{
		Name:        Name,
		Version:     Version,
		Description: "Telemetry: consent, learning statements (xAPI), aggregates and hourly warehouse exports.",
		Permissions: []sdk.Permission{
			{Name: PermConsentSelf, Description: "Record and read one's own consent decisions.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermConsentManage, Description: "Read and record the consent decisions of other members.", DefaultRoles: []string{"admin"}},
			{Name: PermPolicyManage, Description: "Publish versions of the institution's consent policies.", DefaultRoles: []string{"admin"}},
			{Name: PermEventSelf, Description: "Send and read one's own learning statements.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermEventIngest, Description: "Send statements for any member from an allowed server-side source.", DefaultRoles: []string{"admin"}},
			{Name: PermAggregateRead, Description: "Read aggregates and freshness (grant it to an analyst role).", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermExportRun, Description: "Run and list warehouse exports.", DefaultRoles: []string{"admin"}},
		},
		Routes:       routes,
		Subscribes:   p.subscriptions(),
		Jobs:         p.jobs(),
		Migrations:   migrations,
		Config:       defaults,
		Capabilities: []sdk.Capability{sdk.CapStorage},
		PersonalData: p.personalData(),
		Retention:    p.retention(),
	}
}

// Provision keeps the environment, registers the metrics and makes sure
// the coming days have their partitions.
func (p *Plugin) Provision(ctx context.Context, env *sdk.Env) error {
	if env.DB == nil {
		return errors.New("telemetry needs its database")
	}
	p.env = env
	if err := p.metrics.register(env.Metrics); err != nil {
		return err
	}
	return p.ensurePartitions(ctx)
}

// blank reports whether s holds only whitespace.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

// registerer is prometheus.Registerer; nil in a plugin served without one.
type registerer = prometheus.Registerer
