// Package authz decides requests with Open Policy Agent. The policy
// (policies/authz.rego) is compiled once into prepared queries; role →
// permission grants are data in OPA's in-memory store: the shipped defaults
// of the built-in roles, and per-tenant custom roles and overrides that tenant
// admins change at run time. The permission catalogue names every permission
// the kernel and the loaded plugins declare (a plugin's from its manifest,
// with the built-in roles it grants them to by default).
package authz
