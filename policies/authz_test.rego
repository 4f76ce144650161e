package edulure.authz_test

import data.edulure.authz

defaults := {
	"admin": {"tenancy.member.invite": true, "tenancy.role.manage": true},
	"instructor": {"tenancy.member.read": true},
	"learner": {},
}

tenants := {"t1": {"roles": {
	"instructor": {"tenancy.member.read": true, "tenancy.member.invite": true},
	"ta": {"tenancy.member.read": true},
}}}

user(roles) := {"subject": {"type": "user", "id": "u1"}, "roles": roles, "tenant": "t1"}

test_admin_default_grant if {
	authz.allow with input as object.union(user(["admin"]), {"action": "tenancy.member.invite"})
		with data.edulure.defaults as defaults
}

test_learner_denied if {
	not authz.allow with input as object.union(user(["learner"]), {"action": "tenancy.member.invite"})
		with data.edulure.defaults as defaults
}

test_tenant_override_of_builtin_role if {
	authz.allow with input as object.union(user(["instructor"]), {"action": "tenancy.member.invite"})
		with data.edulure.defaults as defaults
		with data.edulure.tenants as tenants
}

test_override_applies_to_its_tenant_only if {
	inp := object.union(user(["instructor"]), {"action": "tenancy.member.invite", "tenant": "t2"})
	not authz.allow with input as inp
		with data.edulure.defaults as defaults
		with data.edulure.tenants as tenants
}

test_custom_role if {
	authz.allow with input as object.union(user(["ta"]), {"action": "tenancy.member.read"})
		with data.edulure.defaults as defaults
		with data.edulure.tenants as tenants
}

test_unknown_role_grants_nothing if {
	not authz.allow with input as object.union(user(["ghost"]), {"action": "tenancy.member.read"})
		with data.edulure.defaults as defaults
		with data.edulure.tenants as tenants
}

test_no_tenant_no_tenant_action if {
	inp := object.union(user(["admin"]), {"action": "tenancy.member.invite", "tenant": ""})
	not authz.allow with input as inp with data.edulure.defaults as defaults
}

test_cross_tenant_resource_denied if {
	inp := object.union(user(["admin"]), {"action": "tenancy.member.invite", "resource": {"tenant": "t2"}})
	not authz.allow with input as inp with data.edulure.defaults as defaults
}

test_same_tenant_resource_allowed if {
	inp := object.union(user(["admin"]), {"action": "tenancy.member.invite", "resource": {"tenant": "t1"}})
	authz.allow with input as inp with data.edulure.defaults as defaults
}

test_operator_platform_only if {
	op := {"subject": {"type": "user", "id": "o", "operator": true}, "roles": [], "tenant": ""}
	authz.allow with input as object.union(op, {"action": "platform.tenant.create"})
	not authz.allow with input as object.union(op, {"action": "tenancy.member.invite"})
}

test_tenant_admin_cannot_do_platform_actions if {
	inp := object.union(user(["admin"]), {"action": "platform.tenant.create"})
	not authz.allow with input as inp with data.edulure.defaults as {"admin": {"platform.tenant.create": true}}
}

# An API key's input.roles are its creator's current roles.
apikey(perms, creator_roles) := {"subject": {"type": "apikey", "id": "k", "permissions": perms}, "roles": creator_roles, "tenant": "t1"}

test_apikey_scoped_permissions if {
	key := apikey({"tenancy.member.read": true}, ["instructor"])
	authz.allow with input as object.union(key, {"action": "tenancy.member.read"}) with data.edulure.defaults as defaults
	not authz.allow with input as object.union(key, {"action": "tenancy.member.invite"}) with data.edulure.defaults as defaults
}

test_apikey_limited_to_what_its_creator_holds_now if {
	key := apikey({"tenancy.member.read": true, "tenancy.member.invite": true}, ["instructor"])
	authz.allow with input as object.union(key, {"action": "tenancy.member.read"}) with data.edulure.defaults as defaults
	# The key holds invite, its creator (an instructor by default) does not...
	not authz.allow with input as object.union(key, {"action": "tenancy.member.invite"}) with data.edulure.defaults as defaults
	# ... unless the institution's version of the creator's role grants it.
	authz.allow with input as object.union(key, {"action": "tenancy.member.invite"})
		with data.edulure.defaults as defaults
		with data.edulure.tenants as tenants
	authz.granted == {"tenancy.member.read"} with input as key with data.edulure.defaults as defaults
}

test_apikey_of_a_creator_without_roles_does_nothing if {
	key := apikey({"tenancy.member.read": true}, [])
	not authz.allow with input as object.union(key, {"action": "tenancy.member.read"}) with data.edulure.defaults as defaults
	count(authz.granted) == 0 with input as key with data.edulure.defaults as defaults
}

test_granted_lists_union_of_roles if {
	g := authz.granted with input as user(["instructor", "ta"])
		with data.edulure.defaults as defaults
		with data.edulure.tenants as tenants
	g == {"tenancy.member.read", "tenancy.member.invite"}
}
