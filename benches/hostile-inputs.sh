#!/usr/bin/env bash
# Peak memory on pathological inputs (outside CI): each case runs under
# /usr/bin/time -v and prints its exit status, peak RSS and what it left behind.
#   1. a plan listing 2M chunks that are all missing from the store (built: the
#      report counts them all and lists 1000 per kind);
#   2. a plan whose single entry lists 3M chunks (refused: record too long);
#   3. a DynamoDB export whose data file holds one 2 GB line (refused: line too long).
#   usage: benches/hostile-inputs.sh [DIR]   (env BIN, SCANNER: binaries to measure)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/blocksconvert-hostile}
if [ -z "${BIN:-}" ] || [ -z "${SCANNER:-}" ]; then
  cargo build --release -q -p blocksconvert-cli -p blocksconvert-scanner
fi
bin=${BIN:-target/release/blocksconvert}
scanner=${SCANNER:-target/release/blocksconvert-scanner}
mkdir -p "$dir"

measure() { # name, command...
  local name=$1
  shift
  local status=0
  /usr/bin/time -v "$@" > "$dir/$name.out" 2> "$dir/$name.time" || status=$?
  printf '%-22s exit %-3s peak RSS %8s KiB  wall %s\n' "$name" "$status" \
    "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/$name.time")" \
    "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/$name.time")"
}

# A plan: SERIES entries of CHUNKS chunk IDs each, none of which exists.
write_plan() { # file, series, chunks per series
  python3 - "$@" <<'EOF'
import sys
path, series, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write('{"user":"acme","day_index":18584}\n')
    for s in range(series):
        ids = ",".join('"acme/%016x:%x:%x:%08x"' % (s, 1605657600000 + c, 1605657600000 + c + 1, c)
                       for c in range(per))
        f.write('{"sid":"%040x","cs":[%s]}\n' % (s, ids))
    f.write('{"complete":true}\n')
EOF
}

mkdir -p "$dir/empty-chunks"
[ -f "$dir/missing/acme/18584.plan" ] || { mkdir -p "$dir/missing/acme"; write_plan "$dir/missing/acme/18584.plan" 100000 20; }
rm -rf "$dir/out" "$dir/work"
measure missing-2M-chunks "$bin" build --plan "$dir/missing/acme/18584.plan" --chunks "$dir/empty-chunks" \
  --output "$dir/out" --work-dir "$dir/work" --max-bad-chunk-fraction 1 --quiet
echo "  report: $(stat -c %s "$dir/missing/acme/18584.report.json" 2>/dev/null || echo none) bytes"

[ -f "$dir/huge-entry/acme/18584.plan" ] || { mkdir -p "$dir/huge-entry/acme"; write_plan "$dir/huge-entry/acme/18584.plan" 1 3000000; }
rm -rf "$dir/out" "$dir/work"
measure one-entry-3M-chunks "$bin" build --plan "$dir/huge-entry/acme/18584.plan" --chunks "$dir/empty-chunks" \
  --output "$dir/out" --work-dir "$dir/work" --max-bad-chunk-fraction 1 --quiet
tail -n 1 "$dir/one-entry-3M-chunks.time" > /dev/null
grep -h -o "record [0-9]*: .*" "$dir/one-entry-3M-chunks.out" "$dir/one-entry-3M-chunks.time" | head -n 1 | cut -c1-160 || true

# An export with one 2 GB line in its first data file.
store="$dir/store"
if [ ! -f "$store/schema.yaml" ]; then
  "$bin" generate --output "$store" --tenants 1 --days 1 --series 10 --samples-per-series 120 --seed 1 > /dev/null
  data=$(find "$store/dynamodb-export" -path '*data*' -name '*.json.gz' | head -n 1)
  python3 - "$data" <<'EOF'
import gzip, sys
with gzip.open(sys.argv[1], "wb", compresslevel=1) as f:
    block = b"a" * (1 << 20)
    for _ in range(2048):
        f.write(block)
    f.write(b"\n")
EOF
fi
rm -rf "$dir/plans" "$dir/scan-work"
measure export-2GB-line "$scanner" --index "$store/dynamodb-export" --schema "$store/schema.yaml" \
  --plans "$dir/plans" --work-dir "$dir/scan-work" --quiet
grep -h -o "line [0-9]* is longer[^;]*" "$dir/export-2GB-line.out" "$dir/export-2GB-line.time" | head -n 1 || true
