package authz

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/edulure/edulure/sdk/wire"
)

// Built-in roles every tenant has.
const (
	RoleAdmin      = "admin"
	RoleInstructor = "instructor"
	RoleLearner    = "learner"
	// RoleComplianceOfficer runs the institution's compliance: audit,
	// access reviews, personal data requests, and the permissions plugins
	// such as governance give it; admins assign it (delegation).
	RoleComplianceOfficer = "compliance_officer"
	// RoleAuditor reads what the compliance officer does, changing nothing.
	RoleAuditor = "auditor"
)

// BuiltinRoles lists the built-in roles in display order.
var BuiltinRoles = []string{RoleAdmin, RoleInstructor, RoleLearner, RoleComplianceOfficer, RoleAuditor}

// Permission is one named permission with the built-in roles granted it by default.
type Permission struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Owner       string   `json:"owner"` // "kernel" or a plugin name
	Defaults    []string `json:"default_roles"`
}

// PermissionName is the form of a permission: owner.noun.verb, lowercase
// (the same rule the SDK applies to plugin manifests).
var PermissionName = wire.PermissionName

// KernelPermissions are the permissions of the kernel's own routes.
var KernelPermissions = []Permission{
	{Name: "tenancy.settings.read", Description: "Read the institution's settings", Defaults: []string{RoleAdmin, RoleInstructor, RoleLearner}},
	{Name: "tenancy.settings.update", Description: "Change the institution's settings (name, self-signup, MFA policy)", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.member.read", Description: "List members and their roles", Defaults: []string{RoleAdmin, RoleInstructor, RoleComplianceOfficer, RoleAuditor}},
	{Name: "tenancy.member.invite", Description: "Invite people by email and manage invitations", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.member.update", Description: "Change a member's roles", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.member.remove", Description: "Remove a member from the institution", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.role.read", Description: "List roles and the permission catalogue", Defaults: []string{RoleAdmin, RoleComplianceOfficer, RoleAuditor}},
	{Name: "tenancy.role.manage", Description: "Create, change and delete roles", Defaults: []string{RoleAdmin}},
	{Name: "identity.apikey.read", Description: "List API keys", Defaults: []string{RoleAdmin}},
	{Name: "identity.apikey.create", Description: "Create API keys for service accounts", Defaults: []string{RoleAdmin}},
	{Name: "identity.apikey.revoke", Description: "Revoke API keys", Defaults: []string{RoleAdmin}},
	{Name: "audit.log.read", Description: "Read and verify the institution's audit log", Defaults: []string{RoleAdmin, RoleComplianceOfficer, RoleAuditor}},
	{Name: "tenancy.grant.read", Description: "List the institution's grants (members and their roles, custom roles, API keys) with orphans marked, for access reviews", Defaults: []string{RoleAdmin, RoleComplianceOfficer, RoleAuditor}},
	{Name: "tenancy.plugin.read", Description: "List the plugins installed and their settings for the institution", Defaults: []string{RoleAdmin, RoleInstructor}},
	{Name: "tenancy.plugin.manage", Description: "Enable, disable and configure plugins for the institution", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.event.read", Description: "List the institution's events and their deliveries to plugins", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.event.replay", Description: "Deliver the institution's dead-lettered or past events again", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.event.data.read", Description: "Read the data of the institution's events (it may hold personal data)", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.job.read", Description: "List jobs and the institution's job runs", Defaults: []string{RoleAdmin}},
	{Name: "tenancy.job.run", Description: "Start a plugin's per-institution job on demand", Defaults: []string{RoleAdmin}},
	{Name: "privacy.export.self", Description: "Ask for an export of my own personal data in the institution, and download it", Defaults: []string{RoleAdmin, RoleInstructor, RoleLearner}},
	{Name: "privacy.export.manage", Description: "Export a member's personal data; see and download the institution's exports", Defaults: []string{RoleAdmin, RoleComplianceOfficer}},
	{Name: "privacy.erasure.self", Description: "Ask for my own erasure from the institution (it runs after the institution's cool-off, and can be cancelled until then)", Defaults: []string{RoleAdmin, RoleInstructor, RoleLearner}},
	{Name: "privacy.erasure.manage", Description: "Erase a member's personal data from the institution; see, cancel and resume erasure requests", Defaults: []string{RoleAdmin}},
	{Name: "platform.event.read", Description: "List every event and delivery (platform operators)"},
	{Name: "platform.event.replay", Description: "Deliver any dead-lettered or past event again (platform operators)"},
	{Name: "platform.event.data.read", Description: "Read the data of any event (platform operators)"},
	{Name: "platform.job.read", Description: "List jobs and every run (platform operators)"},
	{Name: "platform.job.run", Description: "Start a platform job on demand (platform operators)"},
	{Name: "platform.plugin.read", Description: "See installed plugins and their health (platform operators)"},
	{Name: "platform.plugin.manage", Description: "Reload plugins.hcl: install, upgrade and remove plugins (platform operators)"},
	{Name: "platform.tenant.create", Description: "Create institutions (platform operators)"},
	{Name: "platform.tenant.read", Description: "List institutions (platform operators)"},
	{Name: "platform.keys.manage", Description: "Rotate and retire token signing keys (platform operators)"},
	{Name: "platform.tenant.offboard", Description: "Offboard an institution: export everything, then erase it from the kernel and every plugin (platform operators)"},
	{Name: "platform.audit.read", Description: "Read and verify the platform audit chain (platform operators)"},
	{Name: "platform.audit.checkpoint", Description: "Verify every audit chain and sign their checkpoints now, rather than at the hourly run (platform operators)"},
}

// Catalogue is the set of known permissions. Safe for concurrent use.
type Catalogue struct {
	mu     sync.RWMutex
	perms  map[string]Permission
	sorted []Permission // perms by name, kept with every change: All is on request paths
}

// NewCatalogue returns a catalogue holding perms, owned by owner.
func NewCatalogue(owner string, perms []Permission) (*Catalogue, error) {
	c := &Catalogue{perms: map[string]Permission{}}
	return c, c.Add(owner, perms)
}

// Add registers permissions. A malformed or already registered name is an error.
func (c *Catalogue) Add(owner string, perms []Permission) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next, err := withPermissions(c.perms, owner, perms)
	if err != nil {
		return err
	}
	c.set(next)
	return nil
}

// set replaces the permissions; the caller holds mu.
func (c *Catalogue) set(perms map[string]Permission) {
	c.perms = perms
	c.sorted = make([]Permission, 0, len(perms))
	for _, p := range perms {
		c.sorted = append(c.sorted, p)
	}
	sort.Slice(c.sorted, func(i, j int) bool { return c.sorted[i].Name < c.sorted[j].Name })
}

// withPermissions returns a copy of have with perms added under owner.
func withPermissions(have map[string]Permission, owner string, perms []Permission) (map[string]Permission, error) {
	next := make(map[string]Permission, len(have)+len(perms))
	for k, v := range have {
		next[k] = v
	}
	for _, p := range perms {
		if !PermissionName.MatchString(p.Name) {
			return nil, fmt.Errorf("permission %q: name must look like owner.noun.verb", p.Name)
		}
		if prev, ok := next[p.Name]; ok {
			return nil, fmt.Errorf("permission %q is already declared by %s", p.Name, prev.Owner)
		}
		for _, r := range p.Defaults {
			if !IsBuiltinRole(r) {
				return nil, fmt.Errorf("permission %q: default role %q is not a built-in role", p.Name, r)
			}
		}
		p.Owner = owner
		next[p.Name] = p
	}
	return next, nil
}

// Has reports whether name is a known permission.
func (c *Catalogue) Has(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.perms[name]
	return ok
}

// All returns the permissions sorted by name.
func (c *Catalogue) All() []Permission {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.sorted)
}

// Defaults returns the built-in roles' default grants.
func (c *Catalogue) Defaults() map[string][]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string][]string{}
	for _, r := range BuiltinRoles {
		out[r] = []string{}
	}
	for _, p := range c.perms {
		for _, r := range p.Defaults {
			out[r] = append(out[r], p.Name)
		}
	}
	for _, ps := range out {
		sort.Strings(ps)
	}
	return out
}

// IsBuiltinRole reports whether r is admin, instructor or learner.
func IsBuiltinRole(r string) bool {
	for _, b := range BuiltinRoles {
		if r == b {
			return true
		}
	}
	return false
}

// Replace swaps all of owner's permissions for perms, atomically: on error
// the catalogue is unchanged. Plugins use it when they load and upgrade.
func (c *Catalogue) Replace(owner string, perms []Permission) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	others := make(map[string]Permission, len(c.perms))
	for name, p := range c.perms {
		if p.Owner != owner {
			others[name] = p
		}
	}
	next, err := withPermissions(others, owner, perms)
	if err != nil {
		return err
	}
	c.set(next)
	return nil
}

// OwnedBy lists owner's permissions, sorted by name.
func (c *Catalogue) OwnedBy(owner string) []Permission {
	var out []Permission
	for _, p := range c.All() {
		if p.Owner == owner {
			out = append(out, p)
		}
	}
	return out
}

// Owner returns who declared a permission ("" when unknown).
func (c *Catalogue) Owner(name string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.perms[name].Owner
}
