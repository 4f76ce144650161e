# How the kernel's access policy (policies/authz.rego at the repository's
# root) treats the commerce plugin's permissions, with the default grants
# the plugin's manifest declares (data.edulure.defaults in data.json,
# generated from the manifest and checked current by
# internal/commerce/policy_test.go).
# Run with the plugin's tests, or: opa test policies/ plugins/commerce/policies/
package commerce.authz_test

import data.edulure.authz

user := {"type": "user", "id": "0193a1d2-0000-7000-8000-000000000001"}

as_role(role, action) := {"subject": user, "roles": [role], "tenant": "t1", "action": action}

test_learner_buys if {
	authz.allow with input as as_role("learner", "commerce.catalogue.read")
	authz.allow with input as as_role("learner", "commerce.checkout.create")
	authz.allow with input as as_role("learner", "commerce.order.self")
}

# Learners and instructors neither sell, refund nor see others' orders.
test_learner_and_instructor_do_not_sell_or_refund if {
	every role in ["learner", "instructor"] {
		every perm in ["commerce.catalogue.manage", "commerce.promo.manage", "commerce.order.manage", "commerce.order.refund", "commerce.billing.manage"] {
			not authz.allow with input as as_role(role, perm)
		}
	}
}

test_admin_runs_the_shop if {
	every perm in ["commerce.catalogue.read", "commerce.catalogue.manage", "commerce.promo.manage", "commerce.checkout.create",
		"commerce.order.self", "commerce.order.manage", "commerce.order.refund", "commerce.billing.manage"] {
		authz.allow with input as as_role("admin", perm)
	}
}

# A custom role: a bookkeeper refunds and reads orders, and changes no
# price.
test_custom_bookkeeper if {
	tenants := {"t1": {"roles": {"bookkeeper": {"commerce.order.manage": true, "commerce.order.refund": true}}}}
	authz.allow with input as as_role("bookkeeper", "commerce.order.refund") with data.edulure.tenants as tenants
	not authz.allow with input as as_role("bookkeeper", "commerce.catalogue.manage") with data.edulure.tenants as tenants
}

# An institution that stops selling to learners: others keep the defaults.
test_institution_closes_checkout if {
	tenants := {"t1": {"roles": {"learner": {"commerce.catalogue.read": true, "commerce.order.self": true}}}}
	not authz.allow with input as as_role("learner", "commerce.checkout.create") with data.edulure.tenants as tenants
	authz.allow with input as object.union(as_role("learner", "commerce.checkout.create"), {"tenant": "t2"}) with data.edulure.tenants as tenants
}

test_other_institution_order_denied if {
	not authz.allow with input as object.union(as_role("admin", "commerce.order.refund"), {"resource": {"type": "order", "id": "o1", "tenant": "t2"}})
	authz.allow with input as object.union(as_role("admin", "commerce.order.refund"), {"resource": {"type": "order", "id": "o1", "tenant": "t1"}})
}

# A key holds what it was given, as far as its creator still does.
test_api_key_holds_what_it_was_given if {
	key := {"type": "apikey", "id": "k1", "permissions": {"commerce.order.manage": true}}
	authz.allow with input as {"subject": key, "roles": ["admin"], "tenant": "t1", "action": "commerce.order.manage"}
	not authz.allow with input as {"subject": key, "roles": ["admin"], "tenant": "t1", "action": "commerce.order.refund"}
	not authz.allow with input as {"subject": key, "roles": ["learner"], "tenant": "t1", "action": "commerce.order.manage"}
}
