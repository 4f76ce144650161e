#!/usr/bin/env bash
# Make sure Chromium is installed: the admin console's browser tests
# (kernel/internal/console) drive it with chromedp. Debian's package.
# EDULURE_CHROME names another binary; EDULURE_SKIP_BROWSER=1 skips the
# browser tests (and this install) on a developer's machine.
set -euo pipefail
if [ "${EDULURE_SKIP_BROWSER:-}" = 1 ]; then exit 0; fi
if [ -n "${EDULURE_CHROME:-}" ] && [ -x "$EDULURE_CHROME" ]; then exit 0; fi
for b in chromium chromium-browser google-chrome; do
	if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
echo "Chromium not found; installing it with apt-get (for the console's browser tests)" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
