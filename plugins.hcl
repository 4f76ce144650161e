# Plugins the kernel loads. The plugin runtime (supervisor, checksum
# verification, per-institution enablement) is not built yet; until it is,
# this file lists no plugins and the kernel does not read it.
