// Package storage sets up a plugin's storage exactly as the kernel does: the
// schema plugin_<name>, an owner role that runs its migrations, a login role
// the plugin connects as, and forced row-level security keyed on the
// transaction's tenant for every table with a tenant_id column. The kernel's
// supervisor and sdk/plugintest both call Provision, so a plugin's tests run
// against the same database shape as production.
package storage
