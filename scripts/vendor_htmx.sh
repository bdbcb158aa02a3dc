#!/usr/bin/env bash
# Refresh the vendored htmx (http_edge/console/static/vendor/htmx) from the npm registry:
#   bash scripts/vendor_htmx.sh 2.0.11
# Writes htmx.min.js, its LICENSE and a VERSION file with the sha256 the unit tests check.
# Needs npm (Node.js); the consoles themselves need no Node.js, no build step and no CDN.
set -euo pipefail
version=${1:?usage: $0 VERSION}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=http_edge/console/static/vendor/htmx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@${version}" >/dev/null && tar xzf "htmx.org-${version}.tgz")
mkdir -p "$target"
cp "$work/package/dist/htmx.min.js" "$work/package/LICENSE" "$target/"
sum=$(sha256sum "$target/htmx.min.js" | cut -d' ' -f1)
cat >"$target/VERSION" <<VERSION
htmx.org ${version}
source: the npm registry, package htmx.org, file dist/htmx.min.js (scripts/vendor_htmx.sh)
sha256: ${sum}
licence: $(head -1 "$target/LICENSE") (LICENSE beside this file)
VERSION
echo "vendored htmx.org ${version} (sha256 ${sum})"
