#!/usr/bin/env bash
# Refreshes the dashboard's vendored front-end library (htmx, from the npm registry) in
# src/serverroom/dashboard/static/vendor/. The dashboard serves it itself: no CDN at run time.
# Run it to move to another htmx version, then commit the file it writes.
set -euo pipefail
HTMX_VERSION="${HTMX_VERSION:-2.0.11}"
cd "$(dirname "$0")/.."
out="src/serverroom/dashboard/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@${HTMX_VERSION}" >/dev/null && tar -xzf htmx.org-*.tgz)
mkdir -p "$out"
cp "$work/package/dist/htmx.min.js" "$out/htmx.min.js"
cp "$work/package/LICENSE" "$out/htmx.LICENSE"
echo "htmx.org@${HTMX_VERSION}" > "$out/VERSIONS"
echo "vendored htmx ${HTMX_VERSION} into $out"
