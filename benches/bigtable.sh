#!/usr/bin/env bash
# Bigtable benchmark (outside CI), against Google's emulator started here:
#  1. scanner rows/s: a generated index (~ROWS rows, default 200k) scanned from its
#     DynamoDB export and, loaded in Cortex's bigtable-hashed layout, from Bigtable;
#  2. chunk fetch: `blocksconvert convert` of the corpus (index from its export both
#     times) with the chunks in a local directory and in Cortex's Bigtable chunk tables.
# Prints wall, CPU and peak RSS of each run (`/usr/bin/time -v`).
#   usage: benches/bigtable.sh [DIR]   (env ROWS)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/blocksconvert-bigtable-bench}
rows=${ROWS:-200000}
corpus=${BLOCKSCONVERT_CORPUS:-$PWD/../shared/fixtures/cortex-corpus}
emulator=${BLOCKSCONVERT_CBTEMULATOR:-/usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator}
cargo build --release -q -p blocksconvert-cli -p blocksconvert-scanner
bc=target/release/blocksconvert
scan=target/release/blocksconvert-scanner
mkdir -p "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$emulator" -host 127.0.0.1 -port "$port" > /dev/null 2>&1 &
emu=$!
trap 'kill $emu' EXIT
export BIGTABLE_EMULATOR_HOST="127.0.0.1:$port"
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do sleep 0.1; done
report() { grep -E "Elapsed \(wall|Maximum resident|User time|System time" "$1" | sed 's/^\s*/  /'; }

# 1. Scanner: export path vs Bigtable (same rows, same settings).
series=$(( rows / 73 / 2 ))
store="$dir/index-$rows"
[ -f "$store/schema.yaml" ] || "$bc" generate --output "$store" --index-only --tenants 2 \
  --series "$series" --days 1 --samples-per-series 240 --chunks-per-day 24 --replicas 3 --seed 42
sed 's/store: aws-dynamo/store: bigtable-hashed/; s/store: aws$/store: bigtable-hashed/' \
  "$store/schema.yaml" > "$dir/schema-bigtable.yaml"
"$bc" load-index --export "$store/dynamodb-export" --bigtable bigtable://bench/index \
  --bigtable.layout bigtable-hashed
for source in export bigtable; do
  rm -rf "$dir/out"
  if [ "$source" = export ]; then
    args=(--schema "$store/schema.yaml" --index "$store/dynamodb-export")
  else
    args=(--schema "$dir/schema-bigtable.yaml" --index bigtable://bench/index --bigtable.ranges 4)
  fi
  /usr/bin/time -v "$scan" "${args[@]}" --concurrency 2 --plans "$dir/out/plans" \
    --work-dir "$dir/out/work" --quiet > "$dir/scan.txt" 2> "$dir/time.txt"
  echo "scanner, $source: $(tail -n 1 "$dir/scan.txt")"
  report "$dir/time.txt"
done

# 2. Chunk fetch: the corpus's chunks from a directory vs from Bigtable chunk tables.
"$bc" load-index --dump "$corpus/bigtable/bigtable-hashed" --bigtable bigtable://bench/chunks
sed 's/store: bigtable-hashed/store: aws-dynamo/' "$corpus/bigtable/schema-bigtable-hashed.yaml" \
  > "$dir/schema-chunks.yaml"
for chunks in directory bigtable; do
  rm -rf "$dir/convert"
  if [ "$chunks" = directory ]; then
    args=(--schema "$corpus/schema.yaml" --chunks "$corpus/chunks")
  else
    args=(--schema "$dir/schema-chunks.yaml" --chunks bigtable://bench/chunks)
  fi
  /usr/bin/time -v "$bc" convert "${args[@]}" --index "$corpus/dynamodb-export" \
    --output "$dir/convert/blocks" --work-dir "$dir/convert/work" --builders 1 \
    > "$dir/convert.txt" 2> "$dir/time.txt"
  echo "convert, chunks from $chunks: $(grep -E 'chunks|tenant-days' "$dir/convert.txt" | tr -s ' ' | tr '\n' ';')"
  report "$dir/time.txt"
done
