#!/usr/bin/env bash
# Validates deploy/ with the checkers the package registries offer:
#   - kustomize (kubectl's built-in) renders the base and the example overlay, and
#     kubernetes-validate (PyPI) checks every rendered object against the Kubernetes
#     OpenAPI schemas, strictly (unknown fields are errors);
#   - every service config in the ConfigMaps is loaded by the service binary itself
#     (`--print-config`), so a key the binary does not know fails here, not in a pod;
#   - the Dockerfile copies only binaries this workspace builds;
#   - promtool checks the alert rules and runs their unit tests, and parses every
#     dashboard query (wrapped as recording rules);
#   - the dashboard JSON is type-checked against Grafana's published dashboard schema
#     (@grafana/schema, npm) with TypeScript, excess properties included.
# Metric names used by the dashboard and the alerts are checked against what the
# services export by the end-to-end test (tests/tests/end_to_end.rs).
# Needs: kubectl, promtool, python3, node/npm (scripts/test.sh installs the rest).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${BLOCKSCONVERT_TEST_TOOLS:-$PWD/.test-tools}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q -p blocksconvert-cli -p blocksconvert-scanner -p blocksconvert-scheduler -p blocksconvert-builder
command -v kubectl >/dev/null || { echo "check-deploy: kubectl (for kustomize) is missing" >&2; exit 1; }
if [ ! -x "$tools/deploy-venv/bin/kubernetes-validate" ]; then
  echo "installing kubernetes-validate 1.37.0 into $tools/deploy-venv…"
  rm -rf "$tools/deploy-venv"
  python3 -m venv "$tools/deploy-venv"
  "$tools/deploy-venv/bin/pip" install -q 'kubernetes-validate==1.37.0'
fi
if [ ! -x "$tools/deploy-npm/node_modules/.bin/tsc" ] || [ ! -d "$tools/deploy-npm/node_modules/@grafana/schema" ]; then
  echo "installing typescript 5.9.3 and @grafana/schema 13.2.3 into $tools/deploy-npm…"
  npm install --prefix "$tools/deploy-npm" --no-fund --no-audit --loglevel=error \
    typescript@5.9.3 @grafana/schema@13.2.3
fi

echo "--- kustomize + Kubernetes schemas"
for k in deploy/kubernetes/base deploy/kubernetes/overlays/example; do
  out="$work/$(basename "$k").yaml"
  kubectl kustomize "$k" > "$out"
  "$tools/deploy-venv/bin/kubernetes-validate" --strict --kubernetes-version 1.32.0 "$out"
done

echo "--- service configs load in their binaries"
for k in base example; do
  "$tools/deploy-venv/bin/python" - "$work/$k.yaml" "$work/$k" <<'PY'
import os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
os.makedirs(sys.argv[2], exist_ok=True)
maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("blocksconvert-config")]
assert maps, "no blocksconvert-config ConfigMap rendered"
for name, text in maps[0]["data"].items():
    open(os.path.join(sys.argv[2], name), "w").write(text)
PY
  for svc in scanner scheduler builder; do
    target/debug/blocksconvert-$svc --config.file "$work/$k/$svc.yaml" --print-config > /dev/null \
      || { echo "deploy ($k): $svc.yaml is not a valid blocksconvert-$svc config" >&2; exit 1; }
  done
done

echo "--- Dockerfile binaries"
for bin in $(grep -o 'target/release/blocksconvert[a-z-]*' deploy/Dockerfile | sort -u); do
  [ -x "target/debug/${bin#target/release/}" ] || { echo "Dockerfile copies $bin, which the workspace does not build" >&2; exit 1; }
done

echo "--- alert rules"
promtool check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && promtool test rules alerts.test.yaml)

echo "--- dashboard queries"
python3 - deploy/grafana/blocksconvert.json "$work/dashboard-rules.yaml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append((p.get("title", "?"), t["expr"]))
walk(d["panels"])
assert exprs, "dashboard has no queries"
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        # Grafana's interval variables become a fixed range for the parser.
        e = e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
print(f"{len(exprs)} queries")
PY
promtool check rules "$work/dashboard-rules.yaml"

echo "--- dashboard schema (@grafana/schema)"
{
  echo "import type { Dashboard } from '@grafana/schema';"
  printf 'export const dashboard = %s satisfies Dashboard;\n' "$(cat deploy/grafana/blocksconvert.json)"
} > "$work/dashboard.ts"
ln -s "$tools/deploy-npm/node_modules" "$work/node_modules"
"$tools/deploy-npm/node_modules/.bin/tsc" --noEmit --strict --skipLibCheck \
  --moduleResolution bundler --module esnext --target es2022 "$work/dashboard.ts"
echo "deploy/ OK"
