// Package governance is Edulure's governance plugin: an evidence archive
// with chain of custody, retention policies with legal holds, dry runs and
// signed executions, access reviews and erasure receipts
// (docs/governance.md).
package governance

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/edulure/edulure/sdk"
)

// Name is the plugin's name: its schema is plugin_governance.
const Name = "governance"

// Version is the plugin's own version, released independently of the
// kernel.
const Version = "0.1.0"

// Permissions the plugin introduces. Every one is the admins' by default:
// an institution's admins delegate them by defining roles of their own
// (PUT /api/v1/tenant/roles/compliance_officer with the manage and read
// permissions, /auditor with the read ones), since the kernel lets nobody
// grant what they do not hold. docs/governance.md lists both roles.
const (
	PermEvidenceRead    = "governance.evidence.read"    // read incidents and evidence, download (recorded as viewed), export bundles (recorded as exported)
	PermEvidenceManage  = "governance.evidence.manage"  // open incidents, add evidence
	PermRetentionRead   = "governance.retention.read"   // read policies, holds and executions; dry runs
	PermRetentionManage = "governance.retention.manage" // set policies and legal holds, execute retention
	PermReviewRead      = "governance.review.read"      // read access review campaigns and their reports
	PermReviewManage    = "governance.review.manage"    // start and close campaigns, apply revocations
	PermReviewAttest    = "governance.review.attest"    // attest keep or revoke (never one's own grant)
	PermErasureRead     = "governance.erasure.read"     // read erasure receipts
)

// ComplianceOfficerPermissions and AuditorPermissions are what the
// built-in roles compliance_officer and auditor hold of the plugin's
// permissions by default (besides admin, which holds them all).
var (
	ComplianceOfficerPermissions = []string{PermEvidenceRead, PermEvidenceManage, PermRetentionRead, PermRetentionManage,
		PermReviewRead, PermReviewManage, PermReviewAttest, PermErasureRead}
	AuditorPermissions = []string{PermEvidenceRead, PermRetentionRead, PermReviewRead, PermErasureRead}
)

//go:embed migrations/*.sql
var migrations embed.FS

// Plugin is the governance plugin.
type Plugin struct {
	env   *sdk.Env
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

var (
	_ sdk.Plugin      = (*Plugin)(nil)
	_ sdk.Provisioner = (*Plugin)(nil)
)

// New builds the plugin (lifecycle step 1: no I/O), as main.go serves it.
func New() *Plugin { return NewWith() }

// Option changes how NewWith builds the plugin.
type Option func(*Plugin)

// WithClock replaces the clock (the retention schedule's "now" and the
// cutoffs).
func WithClock(now func() time.Time) Option { return func(p *Plugin) { p.now = now } }

// WithSleep replaces the wait between attempts of a failing retention
// call (a test records the backoff instead of waiting it).
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(p *Plugin) { p.sleep = sleep }
}

// NewWith builds the plugin with options.
func NewWith(opts ...Option) *Plugin {
	p := &Plugin{now: time.Now, sleep: sleepCtx}
	for _, o := range opts {
		o(p)
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	var routes []sdk.Route
	for _, group := range [][]sdk.Route{p.evidenceRoutes(), p.retentionRoutes(), p.reviewRoutes(), p.erasureRoutes()} {
		routes = append(routes, group...)
	}
	return sdk.Manifest{
		Name:         Name,
		Version:      Version,
		Description:  "Governance: evidence archive with chain of custody, retention policies and legal holds with signed executions, access reviews, erasure receipts.",
		Capabilities: p.capabilities(),
		Permissions: []sdk.Permission{
			{Name: PermEvidenceRead, Description: "Read incidents and evidence; download and export it (each recorded in the chain of custody).", DefaultRoles: []string{"admin", "compliance_officer", "auditor"}},
			{Name: PermEvidenceManage, Description: "Open incidents and add evidence.", DefaultRoles: []string{"admin", "compliance_officer"}},
			{Name: PermRetentionRead, Description: "Read retention policies, legal holds and executions; run dry runs.", DefaultRoles: []string{"admin", "compliance_officer", "auditor"}},
			{Name: PermRetentionManage, Description: "Set retention policies and legal holds; execute retention.", DefaultRoles: []string{"admin", "compliance_officer"}},
			{Name: PermReviewRead, Description: "Read access review campaigns and their reports.", DefaultRoles: []string{"admin", "compliance_officer", "auditor"}},
			{Name: PermReviewManage, Description: "Start and close access review campaigns; apply their revocations.", DefaultRoles: []string{"admin", "compliance_officer"}},
			{Name: PermReviewAttest, Description: "Attest keep or revoke for grants under review (never one's own).", DefaultRoles: []string{"admin", "compliance_officer"}},
			{Name: PermErasureRead, Description: "Read the signed receipts of completed erasures.", DefaultRoles: []string{"admin", "compliance_officer", "auditor"}},
		},
		Routes:       routes,
		Publishes:    publishedEvents,
		Subscribes:   p.subscriptions(),
		Jobs:         p.jobs(),
		Migrations:   migrations,
		Config:       defaultConfig,
		PersonalData: p.personalData(),
		// A receipt names no one: the erasure's ID, counts per plugin and
		// table, and the kernel's signature (a JWS, not a person's).
		NotPersonal: []string{"erasure_receipts.signature", "erasure_receipts.counts"},
	}
}

// capabilities: the plugin's object storage (evidence), and the three
// privileged host services the operator must allow it in plugins.hcl.
func (p *Plugin) capabilities() []sdk.Capability {
	return []sdk.Capability{sdk.CapStorage, sdk.CapRetention, sdk.CapGrants, sdk.CapSign}
}

// Provision keeps the environment (lifecycle step 4).
func (p *Plugin) Provision(_ context.Context, env *sdk.Env) error {
	if env.DB == nil {
		return errors.New("governance needs its database")
	}
	p.env = env
	return nil
}
