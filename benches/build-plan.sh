#!/usr/bin/env bash
# Full-plan benchmark of the builder (outside CI): generates the issue's dataset
# (1 tenant-day, SERIES series x SAMPLES samples (5760) x 3 replicas, Bigchunk) on local disk
# once, then times `blocksconvert build` from plan to uploaded block.
#   usage: benches/build-plan.sh [DIR]      (env SERIES=100000 SAMPLES=1440 for the
#          100k-series shape, PROFILE=realistic for Prometheus-like values instead of
#          random gauges)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/blocksconvert-bench}
series=${SERIES:-20000}
samples=${SAMPLES:-5760}
profile=${PROFILE:-random}
cargo build --release -q -p blocksconvert-cli
bin=target/release/blocksconvert
store="$dir/store-$series"
[ "$samples" = 5760 ] || store="$store-x$samples"
[ "$profile" = random ] || store="$store-$profile"
if [ ! -f "$store/schema.yaml" ]; then
  "$bin" generate --output "$store" --tenants 1 --days 1 --series "$series" \
    --samples-per-series "$samples" --replicas 3 --encoding bigchunk --seed 42 --profile "$profile"
fi
plan=$(find "$store/plans" -name '*.plan.snappy' | head -n 1)
rm -rf "$dir/out" "$dir/markers" "$dir/work"
# Warm the page cache the same way for every run (the target is CPU, not disk).
find "$store/chunks" -type f -print0 | xargs -0 cat > /dev/null
/usr/bin/time -v "$bin" build --plan "$plan" --chunks "$store/chunks" --output "$dir/out" \
  --markers "$dir/markers" --work-dir "$dir/work" --quiet ${BUILD_FLAGS:-} 2> "$dir/time.txt"
grep -E "Elapsed \(wall|Maximum resident|User time|System time|Percent of CPU" "$dir/time.txt"
block=$(find "$dir/out" -name meta.json | head -n 1)
echo "chunk objects: $(du -sb "$store/chunks" | cut -f1) bytes; block: $(du -sb "$(dirname "$block")" | cut -f1) bytes, $(grep -o '"numSamples": *[0-9]*' "$block")"
