#!/usr/bin/env bash
# Installs Debian's chromium (and a font) for the HTML report's browser test,
# tests/test_report_html.py, which skips where no `chromium` is on PATH. Needs root or sudo and
# Debian's package archive; does nothing when chromium is already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    chromium --version
    exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo)
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
chromium --version
