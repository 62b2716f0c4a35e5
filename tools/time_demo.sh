#!/usr/bin/env bash
# Time to first query of `lakehouse demo`: from the command's start on a fresh directory until
# psql as PBI_Reader gets an answer, then the same on the reused directory.
#
#   tools/time_demo.sh [path/to/lakehouse]      (default: the debug build under CARGO_TARGET_DIR)
#
# Uses ports 15499 (pgwire) and 18099 (device endpoint) on loopback.
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/lakehouse}
dir=$(mktemp -d /tmp/lakehouse-demo.XXXXXX)/demo-lake
conn="host=127.0.0.1 port=15499 dbname=IKHOSPITAL_DW user=PBI_Reader sslmode=require"
measure() {
  local start end pid
  start=$(date +%s.%N)
  "$bin" demo --dir "$dir" --listen 127.0.0.1:15499 --stream-listen 127.0.0.1:18099 >/dev/null 2>&1 &
  pid=$!
  until PGPASSWORD=pbi-reader-demo psql -X -A -t -c "select count(*) from dbo.fact_events" "$conn" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "the demo exited" >&2; exit 1; }
    sleep 0.05
  done
  end=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$1: first query answered after $(echo "$end - $start" | bc) s"
}
measure "fresh directory (generate, bronze, silver, gold, serve)"
measure "reused directory"
rm -rf "$(dirname "$dir")"
