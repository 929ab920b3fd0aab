#!/usr/bin/env bash
# What only the tests need, beyond scripts/setup-tools.sh --node: Chromium from the system
# packages, which the fleet page test runs headless (driven by the pinned playwright-core).
# Installed with apt-get when /usr/bin/chromium is missing and this runs as root; otherwise it
# says what to install. The devnet never runs this.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup-test-tools: installing chromium (apt-get) for the fleet page test"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; } \
      || echo "setup-test-tools: could not install chromium; the fleet page test will fail until /usr/bin/chromium exists (apt-get install chromium)" >&2
  else
    echo "setup-test-tools: /usr/bin/chromium missing and cannot apt-get here (not root or no apt); install the chromium package for the fleet page test" >&2
  fi
fi
if [ -x /usr/bin/chromium ]; then
  echo "setup-test-tools: $(/usr/bin/chromium --version 2>/dev/null | head -1) at /usr/bin/chromium"
fi
