# How the kernel's access policy (policies/authz.rego at the repository's
# root) treats the governance plugin's permissions, with the default grants
# the plugin's manifest declares (data.edulure.defaults in data.json,
# generated from the manifest and checked current by
# internal/governance/policy_test.go), including the built-in roles
# compliance_officer and auditor.
# Run with the plugin's tests, or: opa test policies/ plugins/governance/policies/
package governance.authz_test

import data.edulure.authz

user := {"type": "user", "id": "0193a1d2-0000-7000-8000-000000000001"}

as_role(role, action) := {"subject": user, "roles": [role], "tenant": "t1", "action": action}

all_permissions := ["governance.evidence.read", "governance.evidence.manage", "governance.retention.read", "governance.retention.manage",
	"governance.review.read", "governance.review.manage", "governance.review.attest", "governance.erasure.read"]

read_permissions := ["governance.evidence.read", "governance.retention.read", "governance.review.read", "governance.erasure.read"]

# An institution that narrowed its auditor role: the auditor there reads
# no evidence.
narrowed := {"t1": {"roles": {"auditor": {p: true | some p in read_permissions; p != "governance.evidence.read"}}}}

test_admin_holds_everything if {
	every perm in all_permissions {
		authz.allow with input as as_role("admin", perm)
	}
}

# Nothing of governance is an instructor's or a learner's by default.
test_instructor_and_learner_hold_nothing if {
	every role in ["learner", "instructor"] {
		every perm in all_permissions {
			not authz.allow with input as as_role(role, perm)
		}
	}
}

# The built-in compliance officer holds all of it by default (admins
# delegate by assigning the role).
test_compliance_officer_by_default if {
	every perm in all_permissions {
		authz.allow with input as as_role("compliance_officer", perm)
	}
}

test_auditor_reads_only if {
	every perm in read_permissions {
		authz.allow with input as as_role("auditor", perm)
	}
	every perm in ["governance.evidence.manage", "governance.retention.manage", "governance.review.manage", "governance.review.attest"] {
		not authz.allow with input as as_role("auditor", perm)
	}
}

# A role an institution changes is changed there only.
test_roles_stay_in_their_institution if {
	not authz.allow with input as as_role("auditor", "governance.evidence.read") with data.edulure.tenants as narrowed
	authz.allow with input as as_role("auditor", "governance.retention.read") with data.edulure.tenants as narrowed
	authz.allow with input as object.union(as_role("auditor", "governance.evidence.read"), {"tenant": "t2"}) with data.edulure.tenants as narrowed
}

test_other_institution_resource_denied if {
	not authz.allow with input as object.union(as_role("admin", "governance.evidence.read"), {"resource": {"type": "evidence", "id": "e1", "tenant": "t2"}})
	authz.allow with input as object.union(as_role("admin", "governance.evidence.read"), {"resource": {"type": "evidence", "id": "e1", "tenant": "t1"}})
}

# A key holds what it was given, as far as its creator still does.
test_api_key_holds_what_it_was_given if {
	key := {"type": "apikey", "id": "k1", "permissions": {"governance.evidence.read": true}}
	authz.allow with input as {"subject": key, "roles": ["admin"], "tenant": "t1", "action": "governance.evidence.read"}
	not authz.allow with input as {"subject": key, "roles": ["admin"], "tenant": "t1", "action": "governance.retention.manage"}
	not authz.allow with input as {"subject": key, "roles": ["learner"], "tenant": "t1", "action": "governance.evidence.read"}
}
