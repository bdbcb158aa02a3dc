#!/usr/bin/env bash
# pip-audit over the locked dependencies (uv.lock, every group), failing on any known
# vulnerability not listed with a reason in .pip-audit-ignore.
#
# Data source: the package index's per-release vulnerability data (fed by the PyPA advisory
# database), pip-audit's default service. A package the service cannot audit is a failure,
# except where it can audit NONE of them (an index mirror that serves only the simple API):
# then the audit cannot run at all, the script says so loudly and exits 0, unless
# AUDIT_REQUIRED=1, then it exits 2.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

read -ra UVCMD <<< "${UV:-uv}"  # "uv" or "python3 -m uv" (.ci/run passes its own)
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

"${UVCMD[@]}" export --frozen --all-groups --no-emit-project --format requirements-txt \
  --output-file "$workdir/requirements.txt" >/dev/null
ignores=()
while read -r id _; do
  [[ -z "$id" || "$id" == \#* ]] && continue
  ignores+=(--ignore-vuln "$id")
done < .pip-audit-ignore

echo "pip-audit: $(grep -c '==' "$workdir/requirements.txt") locked packages"
# No --strict here: the verdict below tells "could not audit any" from "could not audit some".
"${UVCMD[@]}" run --frozen pip-audit --progress-spinner off --format json \
  --require-hashes --disable-pip -r "$workdir/requirements.txt" "${ignores[@]}" \
  --output "$workdir/audit.json" 2> "$workdir/audit.err" || true

AUDIT_REQUIRED="${AUDIT_REQUIRED:-0}" "${UVCMD[@]}" run --frozen python - \
  "$workdir/audit.json" "$workdir/audit.err" <<'PY'
import json
import os
import sys

report_path, err_path = sys.argv[1], sys.argv[2]
try:
    with open(report_path) as f:
        dependencies = json.load(f)["dependencies"]
except (OSError, ValueError, KeyError):
    print(open(err_path).read(), file=sys.stderr)
    print("!! pip-audit produced no report", file=sys.stderr)
    sys.exit(2)
skipped = [d for d in dependencies if "skip_reason" in d]
vulnerable = [d for d in dependencies if d.get("vulns")]
if dependencies and len(skipped) == len(dependencies):
    print("!! AUDIT NOT RUN: the vulnerability service could audit none of the "
          f"{len(dependencies)} packages from here ({skipped[0]['skip_reason']})", file=sys.stderr)
    sys.exit(2 if os.environ["AUDIT_REQUIRED"] == "1" else 0)
for d in skipped:
    print(f"could not audit {d['name']} {d.get('version', '')}: {d['skip_reason']}")
for d in vulnerable:
    for v in d["vulns"]:
        print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {v['fix_versions']})")
audited = len(dependencies) - len(skipped)
print(f"audited {audited} packages: {len(vulnerable)} vulnerable, {len(skipped)} not audited")
sys.exit(1 if vulnerable or skipped else 0)
PY
