#!/usr/bin/env bash
# The README's first command: generate a synthetic Cortex chunk store in a temporary
# directory (no cloud, no server), inspect it, scan its index export into plans, and
# build a block from every plan.
# `--small` keeps it tiny (CI runs it that way).
set -euo pipefail
cd "$(dirname "$0")/.."

series=1000
if [ "${1:-}" = "--small" ]; then series=40; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/blocksconvert-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build -q --release -p blocksconvert-cli -p blocksconvert-scanner
bin=target/release/blocksconvert
scanner=target/release/blocksconvert-scanner

"$bin" generate --out "$work/store" --tenants 2 --days 2 --series "$series" \
  --samples-per-series 2880 --encoding bigchunk,xor,doubledelta --schema v10,v11 --seed 7

echo "--- schema.yaml"
cat "$work/store/schema.yaml"
echo "--- one chunk object"
chunk=$(find "$work/store/chunks/tenant-0" -type f | sort | sed -n 1p)
"$bin" inspect chunk "$chunk" | head -n 12
echo "--- the same chunk as JSON (first 300 bytes)"
"$bin" inspect chunk "$chunk" --json | head -c 300; echo

echo "--- scan the index export into plans (one per tenant-day)"
"$scanner" --schema "$work/store/schema.yaml" --index "$work/store/dynamodb-export" \
  --plans "$work/plans" --work-dir "$work/scan" --quiet 2> "$work/scan.log" || { cat "$work/scan.log"; exit 1; }
find "$work/plans" -type f | sort

echo "--- build every plan into blocks (local directories, no cloud)"
for plan in $(find "$work/plans" -name '*.plan.snappy' | sort); do
  "$bin" build --plan "$plan" --chunks "$work/store/chunks" --output "$work/blocks" \
    --markers "$work/markers" --work-dir "$work/build" --quiet
done
echo "--- one block"
block=$(find "$work/blocks/tenant-0" -mindepth 1 -maxdepth 1 -type d | sort | sed -n 1p)
"$bin" inspect block "$block" | head -n 12
