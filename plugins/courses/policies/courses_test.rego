# How the kernel's access policy (policies/authz.rego at the repository's
# root) treats the courses plugin's permissions, with the default grants the
# plugin's manifest declares (data.edulure.defaults in data.json, generated
# from the manifest and checked current by internal/courses/policy_test.go).
# Run with the plugin's tests, or: opa test policies/ plugins/courses/policies/
package courses.authz_test

import data.edulure.authz

user := {"type": "user", "id": "0193a1d2-0000-7000-8000-000000000001"}

as_role(role, action) := {"subject": user, "roles": [role], "tenant": "t1", "action": action}

test_learner_learns if {
	authz.allow with input as as_role("learner", "courses.course.read")
	authz.allow with input as as_role("learner", "courses.enrolment.self")
}

test_learner_cannot_author_grade_or_manage if {
	not authz.allow with input as as_role("learner", "courses.course.create")
	not authz.allow with input as as_role("learner", "courses.course.author")
	not authz.allow with input as as_role("learner", "courses.course.manage_all")
	not authz.allow with input as as_role("learner", "courses.submission.grade")
	not authz.allow with input as as_role("learner", "courses.appeal.review")
	not authz.allow with input as as_role("learner", "courses.enrolment.manage")
	not authz.allow with input as as_role("learner", "courses.certificate.read_all")
}

# Instructors author and grade the courses they teach (the plugin checks
# "teaches" per course); they do not manage every course or enrolment.
test_instructor_teaches if {
	authz.allow with input as as_role("instructor", "courses.course.create")
	authz.allow with input as as_role("instructor", "courses.course.author")
	authz.allow with input as as_role("instructor", "courses.submission.grade")
	authz.allow with input as as_role("instructor", "courses.appeal.review")
	not authz.allow with input as as_role("instructor", "courses.course.manage_all")
	not authz.allow with input as as_role("instructor", "courses.enrolment.manage")
	not authz.allow with input as as_role("instructor", "courses.certificate.read_all")
}

test_admin_manages_everything if {
	every perm in ["courses.course.read", "courses.course.create", "courses.course.author", "courses.course.manage_all",
		"courses.enrolment.self", "courses.enrolment.manage", "courses.submission.grade", "courses.appeal.review",
		"courses.certificate.read_all"] {
		authz.allow with input as as_role("admin", perm)
	}
}

# An institution can close self-enrolment to its learners by redefining
# the role; other institutions keep the defaults.
test_institution_overrides_learner if {
	tenants := {"t1": {"roles": {"learner": {"courses.course.read": true}}}}
	not authz.allow with input as as_role("learner", "courses.enrolment.self") with data.edulure.tenants as tenants
	authz.allow with input as as_role("learner", "courses.course.read") with data.edulure.tenants as tenants
	authz.allow with input as object.union(as_role("learner", "courses.enrolment.self"), {"tenant": "t2"}) with data.edulure.tenants as tenants
}

# A custom role: teaching assistants grade, nothing else.
test_custom_teaching_assistant if {
	tenants := {"t1": {"roles": {"ta": {"courses.submission.grade": true, "courses.course.read": true}}}}
	authz.allow with input as as_role("ta", "courses.submission.grade") with data.edulure.tenants as tenants
	not authz.allow with input as as_role("ta", "courses.course.author") with data.edulure.tenants as tenants
}

test_other_institution_resource_denied if {
	not authz.allow with input as object.union(as_role("admin", "courses.course.author"), {"resource": {"type": "course", "id": "c1", "tenant": "t2"}})
	authz.allow with input as object.union(as_role("admin", "courses.course.author"), {"resource": {"type": "course", "id": "c1", "tenant": "t1"}})
}

test_no_institution_no_course_actions if {
	not authz.allow with input as object.union(as_role("admin", "courses.course.read"), {"tenant": ""})
	not authz.allow with input as {"subject": {"type": "user", "id": "op", "operator": true}, "roles": [], "tenant": "", "action": "courses.course.read"}
}

# A key's roles are its creator's current roles: it holds what it was
# given, as far as its creator still does.
test_api_key_holds_what_it_was_given if {
	key := {"type": "apikey", "id": "k1", "permissions": {"courses.enrolment.manage": true}}
	authz.allow with input as {"subject": key, "roles": ["admin"], "tenant": "t1", "action": "courses.enrolment.manage"}
	not authz.allow with input as {"subject": key, "roles": ["admin"], "tenant": "t1", "action": "courses.course.author"}
	not authz.allow with input as {"subject": key, "roles": ["instructor"], "tenant": "t1", "action": "courses.enrolment.manage"}
}
