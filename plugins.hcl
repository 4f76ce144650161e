# The plugins this kernel runs (EDULURE_PLUGINS_FILE, default ./plugins.hcl).
#
# `make run` does not use this file: it builds every plugin into bin/plugins/
# and writes .data/plugins.hcl with their current checksums. For a real
# deployment, list each plugin here; the sha256 is `sha256sum <binary>`:
#
# plugin "gamification" {
#   path               = "bin/plugins/gamification"
#   version            = "0.1.0"
#   sha256             = "<64 hex characters>"
#   enabled_by_default = true
#   config = {
#     label = "XP"
#   }
#   limits {
#     max_concurrent_requests = 64
#     request_timeout         = "10s"
#     db_connections          = 4
#     storage_bytes           = "10GiB"
#     storage_object_bytes    = "1GiB"
#   }
# }
#
# A plugin that needs a privileged host service names it; the governance
# plugin needs three (docs/governance.md):
#
# plugin "governance" {
#   path               = "bin/plugins/governance"
#   version            = "0.1.0"
#   sha256             = "<64 hex characters>"
#   enabled_by_default = true
#   capabilities       = ["retention", "grants", "sign"]
# }
#
# Then start the kernel, or POST /api/v1/plugins/reload (or send SIGHUP) to a
# running one. README.md ("Plugins and plugins.hcl") explains each field.
