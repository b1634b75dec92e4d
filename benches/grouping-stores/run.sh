#!/usr/bin/env bash
# Runs every candidate once in its own process under /usr/bin/time -v and prints a
# Markdown table row per candidate. Usage: ./run.sh [records] [candidates...]
set -euo pipefail
cd "$(dirname "$0")"
N=${1:-3000000}; shift || true
CANDS=${*:-gen extsort sled fjall redb}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target/grouping-stores}
cargo build --release --quiet
BIN=$CARGO_TARGET_DIR/release/grouping-stores
echo "| candidate | insert s | iterate s | wall s | peak RSS MB | disk MB | distinct keys |"
echo "|---|---|---|---|---|---|---|"
for c in $CANDS; do
  dir=$(mktemp -d /tmp/grouping-$c.XXXXXX)
  log=$(mktemp /tmp/grouping-time.XXXXXX)
  line=$(/usr/bin/time -v -o "$log" "$BIN" "$c" "$dir/data" "$N" 2>/dev/null)
  rm -rf "$dir"
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$log")
  wall=$(awk -F': ' '/Elapsed \(wall/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$log")
  rm -f "$log"
  ins=$(sed -E 's/.*insert_s=([^ ]+).*/\1/' <<<"$line")
  it=$(sed -E 's/.*iterate_s=([^ ]+).*/\1/' <<<"$line")
  disk=$(sed -E 's/.*disk_bytes=([^ ]+).*/\1/' <<<"$line" | awk '{printf "%.0f", $1/1e6}')
  cnt=$(sed -E 's/.*distinct=([^ ]+).*/\1/' <<<"$line")
  echo "| $c | $ins | $it | $wall | $rss | $disk | $cnt |"
done
