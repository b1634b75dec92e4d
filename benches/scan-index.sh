#!/usr/bin/env bash
# Scanner benchmark (outside CI): generates an index-only DynamoDB export of ~ROWS index
# rows (default 10M; 10 tenants, 1 day, 3 replicas, 24 chunks per day) once, then times
# `blocksconvert-scanner` on the export with each memory budget in BUDGETS, printing wall,
# CPU and peak RSS. With LIVE=1 it also loads a 200k-row index into dynalite (started
# here, from .test-tools/) and times the live DynamoDB path on it.
#   usage: benches/scan-index.sh [DIR]   (env ROWS, BUDGETS="8MiB 32MiB 128MiB", LIVE=1)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/blocksconvert-scan-bench}
rows=${ROWS:-10000000}
budgets=${BUDGETS:-"8MiB 32MiB 128MiB"}
cargo build --release -q -p blocksconvert-cli -p blocksconvert-scanner
gen=target/release/blocksconvert
scan=target/release/blocksconvert-scanner
# ~73 index rows per series with these settings.
series=$(( rows / 73 / 10 ))
store="$dir/index-$rows"
if [ ! -f "$store/schema.yaml" ]; then
  "$gen" generate --output "$store" --index-only --tenants 10 --series "$series" --days 1 \
    --samples-per-series 240 --chunks-per-day 24 --replicas 3 --seed 42
fi
report() { grep -E "Elapsed \(wall|Maximum resident|User time|System time" "$1" | sed 's/^\s*/  /'; }
for b in $budgets; do
  rm -rf "$dir/out"
  /usr/bin/time -v "$scan" --schema "$store/schema.yaml" --index "$store/dynamodb-export" \
    --plans "$dir/out/plans" --work-dir "$dir/out/work" --memory-budget "$b" --concurrency 2 \
    --quiet > "$dir/scan.txt" 2> "$dir/time.txt"
  echo "export path, memory budget $b: $(tail -n 1 "$dir/scan.txt")"
  report "$dir/time.txt"
done
if [ "${LIVE:-0}" = 1 ]; then
  tools="${BLOCKSCONVERT_TEST_TOOLS:-$PWD/.test-tools}"
  small="$dir/index-200k"
  [ -f "$small/schema.yaml" ] || "$gen" generate --output "$small" --index-only --tenants 2 \
    --series 1400 --days 1 --samples-per-series 240 --chunks-per-day 24 --replicas 3 --seed 42
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  node "$tools/dynalite/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$port" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 > /dev/null 2>&1 &
  dyn=$!
  trap 'kill $dyn' EXIT
  sleep 1
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
  "$gen" load-index --export "$small/dynamodb-export" --dynamodb.endpoint "http://127.0.0.1:$port"
  rm -rf "$dir/out"
  /usr/bin/time -v "$scan" --schema "$small/schema.yaml" --index dynamodb://us-east-1 \
    --dynamodb.endpoint "http://127.0.0.1:$port" --dynamodb.segments 4 --concurrency 4 \
    --plans "$dir/out/plans" --work-dir "$dir/out/work" --quiet > "$dir/scan.txt" 2> "$dir/time.txt"
  echo "live path (dynalite): $(tail -n 1 "$dir/scan.txt")"
  report "$dir/time.txt"
fi
