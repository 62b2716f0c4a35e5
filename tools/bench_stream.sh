#!/usr/bin/env bash
# Benchmark of the pharmacy device stream: sustained events/s and freshness (sent to visible in
# gold medicine_distribution_daily, measured by polling the lake) through HTTP, MQTT and NATS.
#
#   tools/bench_stream.sh [debug|release] [rate events/s] [duration]
#
# Needs Mosquitto on 127.0.0.1:1883 and NATS (JetStream) on 127.0.0.1:4222. Uses a fresh lake in
# a temporary directory; rerunnable. CARGO_TARGET_DIR is honoured.
set -euo pipefail
profile=${1:-debug}
rate=${2:-20000}
duration=${3:-20s}
cd "$(dirname "$0")/.."
if [ "$profile" = release ]; then
  cargo build --release --quiet
else
  cargo build --quiet
fi
bin=${CARGO_TARGET_DIR:-target}/$profile/lakehouse
dir=$(mktemp -d /tmp/lakehouse-bench.XXXXXX)
id=$(date +%s)
cat > "$dir/lakehouse.yaml" <<YAML
lake:
  root: $dir/lake
log:
  level: warn,lakehouse=info
stream:
  max_batch_events: 20000
  max_batch_delay: 250ms
  max_queued_events: 80000
  http:
    listen: 127.0.0.1:18088
    devices:
      - id: bench-device
        token: bench-device-token
  mqtt:
    url: mqtt://127.0.0.1:1883
    topic: bench$id/pharmacy/+/events
    client_id: lakehouse-bench-$id
  nats:
    url: nats://127.0.0.1:4222
    stream: LHBENCH$id
    subject: bench$id.pharmacy.*.events
    durable: lakehouse-bench
YAML
"$bin" stream --config "$dir/lakehouse.yaml" 2> "$dir/stream.log" &
stream_pid=$!
trap 'kill $stream_pid 2>/dev/null || true' EXIT
sleep 3
echo "== HTTP ($profile, $rate events/s for $duration, 1000 events per request, 16 in flight)"
"$bin" simulate --to http://127.0.0.1:18088 --token bench-device-token --device-id bench-device \
  --rate "$rate" --duration "$duration" --batch 1000 --connections 16 --measure-lake "$dir/lake"
echo "== MQTT ($profile, $rate events/s for $duration, 500 events per message)"
"$bin" simulate --to mqtt://127.0.0.1:1883 --topic-prefix "bench$id/pharmacy" --devices 10 \
  --rate "$rate" --duration "$duration" --batch 500 --measure-lake "$dir/lake"
echo "== NATS ($profile, $rate events/s for $duration, 100 events per message)"
"$bin" simulate --to nats://127.0.0.1:4222 --topic-prefix "bench$id.pharmacy" --nats-stream "LHBENCH$id" \
  --devices 10 --rate "$rate" --duration "$duration" --batch 100 --measure-lake "$dir/lake"
kill -INT $stream_pid
wait $stream_pid || true
trap - EXIT
echo "lake and stream log in $dir"
