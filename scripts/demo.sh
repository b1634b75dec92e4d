#!/usr/bin/env bash
# The README's first command: generate a synthetic Cortex chunk store (chunks, DynamoDB
# export of the index, schema.yaml) in a temporary directory, convert it to TSDB blocks
# with `blocksconvert convert` (scanner, scheduler and builders in one process; no cloud,
# no server), check the blocks sample for sample with `blocksconvert verify`, and show
# one block. `--small` keeps it tiny (CI runs it that way); `--keep` keeps the directory.
set -euo pipefail
cd "$(dirname "$0")/.."

series=1000
keep=false
for a in "$@"; do
  case "$a" in
    --small) series=40 ;;
    --keep) keep=true ;;
    *) echo "usage: $0 [--small] [--keep]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/blocksconvert-demo.XXXXXX")
if $keep; then echo "working in $work"; else trap 'rm -rf "$work"' EXIT; fi
bin=target/release/blocksconvert
# The first build compiles a few hundred crates (the AWS SDK among them): say so, and
# let cargo show its progress (a bar on a terminal, one line per crate otherwise)
# instead of minutes of silence.
if [ ! -x "$bin" ]; then
  echo "--- building blocksconvert (release; the first build takes 10-30 minutes on 2 cores)"
fi
cargo build --release -p blocksconvert-cli

echo "--- generate a Cortex chunk store (2 tenants x 2 days, $series series each)"
"$bin" generate --output "$work/store" --tenants 2 --days 2 --series "$series" \
  --samples-per-series 2880 --encoding bigchunk,xor,doubledelta --schema v10,v11 --seed 7

echo "--- convert: index export -> plans -> blocks (local directories)"
"$bin" convert --schema "$work/store/schema.yaml" --index "$work/store/dynamodb-export" \
  --chunks "$work/store/chunks" --output "$work/blocks" --work-dir "$work/convert"

echo "--- verify: the blocks against the chunk store, sample for sample"
"$bin" verify --schema "$work/store/schema.yaml" --index "$work/store/dynamodb-export" \
  --chunks "$work/store/chunks" --blocks "$work/blocks" --work-dir "$work/verify"

echo "--- one block"
block=$(find "$work/blocks/tenant-0" -mindepth 1 -maxdepth 1 -type d | sort | sed -n 1p)
"$bin" inspect block "$block" | head -n 12
