# Edulure access control. The kernel evaluates data.edulure.authz.allow before
# any handler (kernel or plugin) sees a request.
#
# input:
#   subject:  {type: "user"|"apikey", id, operator: bool, permissions: {perm: true}}
#   roles:    the caller's roles in the token's tenant; for an API key, the
#             roles its creator holds there now
#   tenant:   the tenant ID from the token ("" when the token has none)
#   action:   the permission the route declares, e.g. "tenancy.member.invite"
#   resource: optional {type, id, tenant}; set for resource-level decisions
#
# data.edulure:
#   defaults:  {role: {perm: true}}                 shipped grants of built-in roles
#   tenants:   {tenant_id: {roles: {role: {perm: true}}}}  per-tenant custom roles
#              and overrides of built-in roles, changed by tenant admins
package edulure.authz

default allow := false

# Platform operators act outside any tenant, and only on platform actions.
allow if {
	input.subject.operator
	platform_action
	not cross_tenant
}

# Users act through the roles of their membership in the token's tenant: a
# role the tenant defines (a custom role, or its version of a built-in one)...
allow if {
	input.subject.type == "user"
	tenant_action
	not cross_tenant
	some role in input.roles
	data.edulure.tenants[input.tenant].roles[role][input.action]
}

# ... or else the shipped default of a built-in role. (The same as
# role_grants below, written out: a function call per role costs a decision
# several microseconds, and this is evaluated before every request.)
allow if {
	input.subject.type == "user"
	tenant_action
	not cross_tenant
	some role in input.roles
	not data.edulure.tenants[input.tenant].roles[role]
	data.edulure.defaults[role][input.action]
}

# API keys act with the permissions they were created with, in their tenant,
# as far as the person who created the key still holds them there (through
# the creator's current roles, input.roles): a key never outlives its
# creator's rights.
allow if {
	input.subject.type == "apikey"
	tenant_action
	not cross_tenant
	input.subject.permissions[input.action]
	some role in input.roles
	data.edulure.tenants[input.tenant].roles[role][input.action]
}

allow if {
	input.subject.type == "apikey"
	tenant_action
	not cross_tenant
	input.subject.permissions[input.action]
	some role in input.roles
	not data.edulure.tenants[input.tenant].roles[role]
	data.edulure.defaults[role][input.action]
}

platform_action if startswith(input.action, "platform.")

tenant_action if {
	input.tenant != ""
	not platform_action
}

# A resource of another tenant is never reachable, whatever the grants.
cross_tenant if {
	input.resource.tenant
	input.resource.tenant != input.tenant
}

# A tenant's own definition of a role wins over the shipped default.
role_grants(role) := grants if {
	grants := data.edulure.tenants[input.tenant].roles[role]
} else := grants if {
	grants := data.edulure.defaults[role]
} else := {}

# Everything the caller may do in the token's tenant: GET /api/v1/me/permissions.
granted contains perm if {
	input.subject.type == "user"
	input.tenant != ""
	some role in input.roles
	some perm, _ in role_grants(role)
}

granted contains perm if {
	input.subject.type == "apikey"
	input.tenant != ""
	some perm, _ in input.subject.permissions
	some role in input.roles
	role_grants(role)[perm]
}
