#!/usr/bin/env bash
# The relay's figures in docs/performance.md and docs/relay.md: a Discord outage with a
# backlog of owed deliveries, then the drain once the target is back, with no rate limit.
#
#   loadtest/relay-bench.sh                   # build release, measure, print the figures
#   RELAY_N=20000 RELAY_TARGETS=8 BENCH_SKIP_BUILD=1 loadtest/relay-bench.sh
#
# 1. hookvault (release, defaults) relays to a port where nothing listens yet (the outage);
#    RELAY_N webhooks are posted to the Discord path, spread over RELAY_TARGETS webhook ids.
#    Every post is answered 204 and stored; each target's first delivery fails and waits for
#    its retry, the rest wait on disk: the resident memory then is what the backlog holds.
# 2. The target comes back (`hookvault-loadtest baseline-server`: answers 200 at once, no rate-limit
#    headers) and the backlog drains: deliveries per second, and hookvault's CPU per delivery
#    (utime + stime over the drain). Retries back off at most 1 s here, so the drain starts
#    within a second of the target's return.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
N=${RELAY_N:-100000}
TARGETS=${RELAY_TARGETS:-8}
PORT=${BENCH_PORT:-18431}
TPORT=$((PORT + 1))
URL=http://127.0.0.1:$PORT
HZ=$(getconf CLK_TCK)

# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
require_tools relay-bench.sh curl jq awk python3

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release --workspace
fi
HV=$TARGET/release/hookvault
LT=$TARGET/release/hookvault-loadtest
make_workdir relay "${BENCH_TMP:-$TARGET}" "${BENCH_KEEP:-0}"

cat > "$WORK/hookvault.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[storage]
path = "$WORK/relay.db"
[websocket]
listen = "off"
[log]
level = "warn"
[queue]
backoff_base_ms = 200
backoff_max_ms = 1000
[relay]
discord_base = "http://127.0.0.1:$TPORT"
discord_webhook_ids = ["*"]
max_attempts = 1000
TOML
"$HV" serve --config "$WORK/hookvault.toml" > "$WORK/hv.out" 2> "$WORK/hv.err" &
HVPID=$!
PIDS+=("$HVPID")
until curl -sf -o /dev/null "$URL/readyz"; do sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$HVPID/status"; }
RSS_IDLE=$(rss)

echo "== outage: posting $N webhooks to $TARGETS Discord webhooks"
T0=$(now_ms)
python3 - "$PORT" "$N" "$TARGETS" <<'PY'
import http.client, sys, threading
port, n, targets = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
threads = 8
def send(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(k, n, threads):
        body = ('{"content":"order %d","embeds":[{"title":"Successful Checkout",'
                '"fields":[{"name":"Order Number","value":"R-%d"},{"name":"Price","value":"$99.99"}]}]}' % (i, i))
        c.request("POST", "/api/webhooks/%d/bench-token-%d" % (1000 + i % targets, i % targets),
                  body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        if r.status != 204:
            sys.exit("post %d answered %d" % (i, r.status))
ts = [threading.Thread(target=send, args=(k,)) for k in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
T1=$(now_ms)
stats() { curl -sf "$URL/api/v2/webhooks/queue/stats"; }
until [[ $(stats | jq '.queue_size') == 0 ]]; do sleep 0.2; done
sleep 1
S=$(stats)
echo "posted $N in $(( T1 - T0 )) ms; received $(jq .total_received <<<"$S"), orders $(jq .total_orders <<<"$S"), deliveries pending $(jq .relay.pending <<<"$S")"
RSS_BACKLOG=$(rss)
echo "resident memory: idle ${RSS_IDLE} KiB; with $(jq .relay.pending <<<"$S") deliveries owed ${RSS_BACKLOG} KiB"
DB_BYTES=$(stat -c %s "$WORK/relay.db")
echo "database file: $DB_BYTES bytes"

echo "== the target is back: draining"
"$LT" baseline-server --listen "127.0.0.1:$TPORT" > "$WORK/baseline.out" 2>&1 &
PIDS+=("$!")
C0=$(proc_ticks "$HVPID")
D0=$(now_ms)
until [[ $(stats | jq '.relay.pending') == 0 ]]; do sleep 0.05; done
D1=$(now_ms)
C1=$(proc_ticks "$HVPID")
S=$(stats)
MS=$(( D1 - D0 ))
echo "delivered $(jq .relay.delivered <<<"$S") (dead $(jq .relay.dead <<<"$S")) in $MS ms"
awk -v n="$N" -v ms="$MS" -v c="$(( C1 - C0 ))" -v hz="$HZ" 'BEGIN {
    printf "relay throughput: %.0f deliveries/s; hookvault CPU per delivery: %.0f us\n", n * 1000 / ms, c / hz * 1e6 / n }'
echo "peak resident memory during the drain: $(awk '/VmHWM/ {print $2}' "/proc/$HVPID/status") KiB"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
