#!/usr/bin/env bash
# SQLite vs PostgreSQL, 1 and 3 nodes: durable acks/s and p99 with the same client
# (hookvault-loadtest, closed loop), the CPU each side spends per ack, PostgreSQL's commits
# and WAL per ack, and the lease takeover time after kill -9. See docs/cluster.md.
#
#   loadtest/cluster-bench.sh          # ~2 minutes after the release build
#   BENCH_REQUESTS=20000 BENCH_CONCURRENCY=32 BENCH_LEASE_S=5 (the defaults)
#
# Needs psql, jq and a PostgreSQL server at HOOKVAULT_TEST_PG_URL (default
# postgres://postgres@127.0.0.1:5432/test); a database of its own is made and dropped.
# Loopback only; every process and temp dir it starts is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_URL=${HOOKVAULT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REQUESTS=${BENCH_REQUESTS:-20000}
CONC=${BENCH_CONCURRENCY:-32}
LEASE=${BENCH_LEASE_S:-5}
DB=hv_bench_$$
PG_URL="${BASE_URL%/*}/$DB"

# BENCH_NO_BUILD=1 measures the binaries already in target/release.
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release --locked --features postgres -p hookvault -p hookvault-loadtest >&2
fi
BIN=$PWD/target/release/hookvault
LT=$PWD/target/release/hookvault-loadtest
WORK=$(mktemp -d -p target cluster-bench.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

fresh_pg() {
    psql -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
    psql -q "$BASE_URL" -c "CREATE DATABASE $DB" >/dev/null
}

# start_node NAME PORT BACKEND [ENV...]: starts a node and waits until it answers.
start_node() {
    local name=$1 port=$2 backend=$3
    shift 3
    env HOOKVAULT_STORAGE_BACKEND="$backend" HOOKVAULT_STORAGE_URL="$PG_URL" \
        HOOKVAULT_NODE_ID="$name" HOOKVAULT_LOG_LEVEL=warn "$@" \
        "$BIN" serve --listen "127.0.0.1:$port" --ws-listen off --db "$WORK/$name.db" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    eval "PID_$name=$!"
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "node $name did not start: $(cat "$WORK/$name.err")" >&2
    exit 1
}

stop_nodes() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}

# CPU seconds (user + system) of the given pids, and of every postgres process.
cpu_of() {
    local total=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}
pg_cpu() { cpu_of $(pgrep -x postgres || true); }
# WAL flushes to disk (one per durable commit, fewer when PostgreSQL groups commits).
pg_stat() { psql -Atq "$BASE_URL" -c "SELECT wal_sync FROM pg_stat_wal"; }
pg_wal_bytes() { psql -Atq "$BASE_URL" -c "SELECT wal_bytes FROM pg_stat_wal"; }
TICK=$(getconf CLK_TCK)

# measure LABEL PIDS-OF-NODES PORTS [pg]: one loadtest per port at the same time, CONC
# spread over them; prints a result row (the PostgreSQL columns only with "pg").
measure() {
    local label=$1 pids=$2 ports=$3 pg=${4:-}
    local n_ports
    n_ports=$(wc -w <<<"$ports")
    local per_n=$((REQUESTS / n_ports)) per_c=$((CONC / n_ports))
    local node_cpu0 pg_cpu0 commits0 wal0 load
    load=$(cut -d' ' -f1 /proc/loadavg)
    node_cpu0=$(cpu_of $pids); pg_cpu0=$(pg_cpu); commits0=$(pg_stat); wal0=$(pg_wal_bytes)
    local outs=() clients=()
    for port in $ports; do
        "$LT" --url "http://127.0.0.1:$port" -n "$per_n" -c "$per_c" --json \
            >"$WORK/lt.$port.json" 2>"$WORK/lt.$port.err" &
        clients+=($!)
        outs+=("$WORK/lt.$port.json")
    done
    for c in "${clients[@]}"; do wait "$c" || true; done
    local node_cpu1 pg_cpu1 commits1 wal1
    node_cpu1=$(cpu_of $pids); pg_cpu1=$(pg_cpu); commits1=$(pg_stat); wal1=$(pg_wal_bytes)
    if [ -z "$pg" ]; then commits1=$commits0; fi
    jq -s --arg name "$label" --argjson tick "$TICK" \
        --argjson ncpu "$((node_cpu1 - node_cpu0))" --argjson pcpu "$((pg_cpu1 - pg_cpu0))" \
        --argjson commits "$((commits1 - commits0))" --argjson wal "$((wal1 - wal0))" --arg load "$load" -r '
        (map(.queued) | add) as $acks
        | (map(.send_secs) | max) as $secs
        | (map(.latency.p99_ms) | max) as $p99
        | (map(.latency.p50_ms) | max) as $p50
        | (map(.ok) | all) as $ok
        | "| \($name) | \($acks) | \(($acks / $secs) | floor) | \($p50) | \($p99) | \(($ncpu / $tick * 1000000 / $acks) | floor) | \(if $commits > 0 then (($pcpu / $tick * 1000000 / $acks) | floor) else "-" end) | \(if $commits > 0 then (($acks / $commits * 10 | floor) / 10) else "-" end) | \(if $commits > 0 then (($wal / $acks) | floor) else "-" end) | \($ok) | \($load) |"' \
        "${outs[@]}"
}

echo "| run | acks | acks/s | p50 ms | p99 ms | node CPU µs/ack | PostgreSQL CPU µs/ack | acks per WAL flush | WAL bytes/ack | verified | load before |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"

start_node s1 18101 sqlite
measure "SQLite, 1 node" "$PID_s1" "18101"
stop_nodes

fresh_pg
start_node p1 18101 postgres
measure "PostgreSQL, 1 node" "$PID_p1" "18101" pg
stop_nodes

fresh_pg
start_node p1 18101 postgres
start_node p2 18102 postgres
start_node p3 18103 postgres
measure "PostgreSQL, 3 nodes" "$PID_p1 $PID_p2 $PID_p3" "18101 18102 18103" pg
stop_nodes

# Lease takeover: three nodes with a short lease, load on all of them; freeze one when it
# holds leases, kill it, and time until another node has finished every message it held.
fresh_pg
for n in 1 2 3; do
    start_node "k$n" "1811$n" postgres HOOKVAULT_QUEUE_LEASE_S="$LEASE"
done
"$LT" --url http://127.0.0.1:18112 -n 1000000 -c 16 --no-verify --json >/dev/null 2>&1 &
LOAD=$!
sleep 2
held=""
for _ in $(seq 1 300); do
    kill -STOP "$PID_k2"
    held=$(psql -Atq "$PG_URL" -c "SELECT string_agg(id::text, ',') FROM messages WHERE state = 'processing' AND lease_owner = 'k2'")
    [ -n "$held" ] && [ "$held" != "" ] && break
    kill -CONT "$PID_k2"
    sleep 0.02
done
if [ -z "$held" ]; then
    echo "lease takeover: node k2 never held a lease while under load" >&2
    exit 1
fi
kill -9 "$PID_k2"
t0=$(date +%s.%N)
while :; do
    left=$(psql -Atq "$PG_URL" -c "SELECT count(*) FROM messages WHERE id IN ($held) AND state <> 'processed'")
    [ "$left" = 0 ] && break
    sleep 0.05
done
t1=$(date +%s.%N)
kill "$LOAD" 2>/dev/null || true
echo
echo "lease takeover: $(tr ',' '\n' <<<"$held" | wc -l) messages leased to the killed node, all processed by the others $(echo "$t1 - $t0" | bc) s after kill -9 (queue.lease_s = $LEASE)"
