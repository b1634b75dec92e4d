#!/usr/bin/env bash
# Peak memory of `blocksconvert build` as one tenant-day grows 50x (outside CI).
# For each series count in SERIES_LIST (default "20000 200000 1000000"): generates a
# store once (SERIES series x 120 samples, one replica, so one chunk object per
# series), then builds its plan with --memory-budget BUDGET (default 64MiB) and prints
# wall time, CPU time, peak RSS and what the block writer spilled.
# BIN=path runs another build of the binary on the same stores (a baseline).
#   usage: benches/build-memory.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/blocksconvert-memory}
budget=${BUDGET:-64MiB}
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p blocksconvert-cli
fi
bin=${BIN:-$PWD/target/release/blocksconvert}
printf '%-9s %-8s %9s %9s %12s %14s\n' series budget wall_s cpu_s max_rss_MiB spilled_MiB
for series in ${SERIES_LIST:-20000 200000 1000000}; do
  store="$dir/store-$series"
  if [ ! -f "$store/schema.yaml" ]; then
    "$bin" generate --output "$store" --tenants 1 --days 1 --series "$series" \
      --samples-per-series 120 --replicas 1 --encoding bigchunk --seed 7 >/dev/null
  fi
  plan=$(find "$store/plans" -name '*.plan*' | head -n 1)
  rm -rf "$dir/out" "$dir/markers" "$dir/work"
  /usr/bin/time -v "$bin" build --plan "$plan" --chunks "$store/chunks" --output "$dir/out" \
    --markers "$dir/markers" --work-dir "$dir/work" --memory-budget "$budget" --quiet \
    > "$dir/build-$series.out" 2> "$dir/time-$series.txt"
  wall=$(awk -F': ' '/Elapsed \(wall/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$dir/time-$series.txt")
  cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$dir/time-$series.txt")
  rss=$(awk -F': ' '/Maximum resident/ { printf "%.1f", $2 / 1024 }' "$dir/time-$series.txt")
  spilled=$(find "$dir/markers" -name '*.json' -print0 2>/dev/null | xargs -0 -r cat |
    grep -o '"spill_bytes": *[0-9]*' | awk -F: '{ s += $2 } END { printf "%.1f", s / 1048576 }')
  printf '%-9s %-8s %9s %9.2f %12s %14s\n' "$series" "$budget" "$wall" "$cpu" "$rss" "${spilled:-?}"
done
