// Package supervisor runs plugin processes: it loads plugins.hcl, starts, checks, restarts and stops plugins, and routes requests to them.
package supervisor
