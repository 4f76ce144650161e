// Package tenancy stores institutions (tenants), their members and roles,
// custom role definitions and invitations. A user may belong to several
// tenants; every function that reads or changes tenant data takes the tenant
// ID explicitly, and callers take it from the caller's token, never from a
// request body, query or header.
package tenancy
