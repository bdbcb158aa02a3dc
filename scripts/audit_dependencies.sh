#!/usr/bin/env bash
# pip-audit over the locked dependencies (uv.lock, every group), failing on any known
# vulnerability not listed with a reason in .pip-audit-ignore.
#
# Data source: PyPI's JSON API (per-release "vulnerabilities", fed by the PyPA advisory
# database); pip-audit's OSV service is the fallback. Where neither answers (a registry mirror
# that serves only the simple index, no DNS for osv.dev), the audit cannot run: the script says
# so loudly and exits 0, unless AUDIT_REQUIRED=1, then it exits 2. A source that answers but
# cannot audit some package (--strict) is a failure either way.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

read -ra UVCMD <<< "${UV:-uv}"  # "uv" or "python3 -m uv" (.ci/run passes its own)
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

probe() { # one request, no bulk look-ups: does the service answer a vulnerability query?
  "${UVCMD[@]}" run --frozen python - "$1" <<'PY'
import sys, urllib.request, json
service = sys.argv[1]
try:
    if service == "pypi":
        url = "https://pypi.org/pypi/pip-audit/2.10.1/json"
        with urllib.request.urlopen(url, timeout=10) as r:
            sys.exit(0 if "vulnerabilities" in json.load(r) else 1)
    body = json.dumps({"package": {"name": "pip-audit", "ecosystem": "PyPI"}}).encode()
    req = urllib.request.Request("https://api.osv.dev/v1/query", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

service=""
for candidate in pypi osv; do
  if probe "$candidate"; then service=$candidate; break; fi
done
if [[ -z "$service" ]]; then
  echo "!! AUDIT NOT RUN: no vulnerability data source answers from here" >&2
  echo "!! (PyPI's JSON API and api.osv.dev both unreachable)." >&2
  if [[ "${AUDIT_REQUIRED:-0}" == "1" ]]; then exit 2; fi
  exit 0
fi

"${UVCMD[@]}" export --frozen --all-groups --no-emit-project --format requirements-txt \
  --output-file "$workdir/requirements.txt" >/dev/null
ignores=()
while read -r id _; do
  [[ -z "$id" || "$id" == \#* ]] && continue
  ignores+=(--ignore-vuln "$id")
done < .pip-audit-ignore

echo "pip-audit: $(grep -c '==' "$workdir/requirements.txt") locked packages via $service"
"${UVCMD[@]}" run --frozen pip-audit --strict --progress-spinner off \
  --vulnerability-service "$service" --require-hashes --disable-pip \
  -r "$workdir/requirements.txt" "${ignores[@]}"
