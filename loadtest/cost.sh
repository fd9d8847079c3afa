#!/usr/bin/env bash
# What one webhook costs the server, side by side with the bare-HTTP baseline, in one run:
# the table in docs/performance.md ("Cost per webhook").
#
#   loadtest/cost.sh                  # build release, measure, print a Markdown table
#   COST_RUNS=3 loadtest/cost.sh      # repeat the side-by-side pair (rows per run)
#   COST_BEFORE=/tmp/hookvault-old loadtest/cost.sh   # also measure an older binary, same run
#
# For each server: `wrk -t2 -c32 -d10s` keep-alive POSTs of a generated order, then (hookvault)
# wait until every acknowledged webhook is processed. Counted over that whole span:
#   - CPU: the server's utime+stime (/proc/PID/stat) / requests answered;
#   - context switches: `perf stat -e context-switches` on the server process (all its
#     threads, also those that exit before the end) / requests answered; without perf, the
#     sum of voluntary+nonvoluntary switches over /proc/PID/task/*/status (misses threads
#     that ended during the run, so it reads low);
# hookvault is measured twice: on its defaults (loopback: tiny_http direct) and with
# `server.edge = "gate"` (the edge gate in front, as on a public address), so the gate's cost
# is their ratio in one run. The same wrk run fetching hookvault's `GET /healthz` shows what
# the HTTP path alone costs (edge, tiny_http, a handler; nothing stored). Then, with nothing to do for 10 s, the server's thread wake-ups per second (context
# switches, all threads), its idle RSS (anonymous + file pages) and its peak RSS so far.
#
# Needs wrk, curl, jq, awk; perf is used when it can count (perf_event_paranoid <= 2).
# hookvault runs on its built-in defaults (WebSocket listener on, no client connected).
# Knobs: COST_PORT (default 18451, and the next two), COST_RUNS (1), COST_SKIP_BUILD=1,
# COST_DURATION (10s), COST_TMP (where the database goes; default under the target dir).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${COST_PORT:-18451}
BPORT=$((PORT + 1))
WSPORT=$((PORT + 2))
RUNS=${COST_RUNS:-1}
DUR=${COST_DURATION:-10s}
HZ=$(getconf CLK_TCK)

# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
require_tools cost.sh curl jq awk wrk
PERF=0
if command -v perf >/dev/null && perf stat -e context-switches -- true >/dev/null 2>&1; then
    PERF=1
fi
if [[ ${COST_SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release --workspace >&2
fi
HV=$TARGET/release/hookvault
LT=$TARGET/release/hookvault-loadtest

make_workdir cost "${COST_TMP:-$TARGET}" 0

log() { printf '[cost %s] %s\n' "$(date +%T)" "$*" >&2; }
task_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s+0}'; }

# Counting context switches of $1 from now until `switches_end`.
SW_PERF= SW_T0=
switches_begin() {
    if ((PERF)); then
        perf stat -x, -e context-switches -p "$1" -o "$WORK/perf.out" &
        SW_PERF=$!
        sleep 0.3 # perf attaches to every thread before the measurement starts
    else
        SW_T0=$(task_switches "$1")
    fi
}
switches_end() { # $1 = pid; prints the count
    if ((PERF)); then
        kill -INT "$SW_PERF"
        wait "$SW_PERF" 2>/dev/null || true
        awk -F, '$3 == "context-switches" || $3 ~ /^context-switches/ {print $1; exit}' "$WORK/perf.out"
    else
        echo $(($(task_switches "$1") - SW_T0))
    fi
}

wait_up() { # url
    for _ in $(seq 1 3000); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.01
    done
    echo "cost.sh: $1 did not answer" >&2
    exit 1
}
queued() { curl -sf --max-time 5 "http://127.0.0.1:$PORT/api/v2/webhooks/queue/stats" | jq '.queue_size + .in_flight'; }
wait_drained() {
    local t0
    t0=$(now_ms)
    while (($(queued) != 0)); do
        (($(now_ms) - t0 > 300000)) && { echo "cost.sh: not drained in 300 s" >&2; exit 1; }
        sleep 0.05
    done
}
requests() { # wrk output -> requests answered
    awk '/requests in/ {print $1}' "$1"
}
field() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# measure NAME PID URL DRAIN: wrk, then (DRAIN=1) until processed; writes NAME.row. A URL
# with a path is fetched with GET; a bare one gets the order POSTs.
measure() {
    local name=$1 pid=$2 url=$3 drain=$4 t0 c0 n sw p99 rps t1 script=() f
    f=$WORK/${name//[^A-Za-z0-9]/_}
    [[ $url =~ ^http://[^/]+$ ]] && script=(-s "$ROOT/loadtest/wrk/post_order.lua")
    sleep 1
    switches_begin "$pid"
    c0=$(proc_ticks "$pid")
    t0=$(now_ms)
    wrk -t2 -c32 -d"$DUR" --latency "${script[@]}" "$url" >"$f.wrk" 2>&1
    ((drain)) && wait_drained
    t1=$(now_ms)
    sw=$(switches_end "$pid")
    n=$(requests "$f.wrk")
    rps=$(field Requests/sec: "$f.wrk")
    p99=$(field 99% "$f.wrk")
    awk -v name="$name" -v rps="$rps" -v p99="$p99" -v n="$n" -v sw="$sw" -v hz="$HZ" \
        -v cpu=$(($(proc_ticks "$pid") - c0)) -v ms=$((t1 - t0)) -v non2xx="$(awk '/Non-2xx/ {print $NF}' "$f.wrk")" \
        'BEGIN { printf "| %s | %.0f | %s | %.1f | %.2f | %s | %.1f s |\n", name, rps, p99, cpu / hz * 1e6 / n, sw / n, (non2xx == "" ? 0 : non2xx), ms / 1000 }' \
        >>"$WORK/rows"
}

idle() { # NAME PID: wake-ups per second and RSS after 10 s with nothing to do; appends a row
    local sw rss
    sleep 2
    switches_begin "$2"
    sleep 10
    sw=$(switches_end "$2")
    # RSS, and how it splits: anonymous memory (heap, thread stacks, channel buffers, SQLite's
    # caches: what hookvault allocates) and file pages (the binary's and libc's code and data,
    # the WAL index: mostly shared and set by what code ran).
    # VmHWM: the most it has held so far (after the load: its peak under wrk).
    rss=$(awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} /^RssFile/ {f = $2} /^VmHWM/ {h = $2}
        END {printf "%.1f MiB (%.1f anon + %.1f file) | %.1f MiB", r / 1024, a / 1024, f / 1024, h / 1024}' "/proc/$2/status")
    printf '| %s | %.1f | %s | %s |\n' "$1" "$(awk -v s="$sw" 'BEGIN{print s / 10}')" "$rss" "$(ls "/proc/$2/task" | wc -l)" >>"$WORK/idle"
}

for run in $(seq 1 "$RUNS"); do
    log "run $run/$RUNS: baseline-server"
    "$LT" baseline-server --listen "127.0.0.1:$BPORT" >"$WORK/baseline.log" 2>&1 &
    BASE=$!
    PIDS+=("$BASE")
    wait_up "http://127.0.0.1:$BPORT/"
    measure "baseline-server" "$BASE" "http://127.0.0.1:$BPORT" 0
    kill -9 "$BASE"; wait "$BASE" 2>/dev/null || true

    # hookvault on its defaults (loopback: direct mode), then the same binary with the edge gate
    # (server.edge = "gate"), then any older binary on its own defaults.
    for variant in "$HV direct" "$HV gate" ${COST_BEFORE:+"$COST_BEFORE default"}; do
        bin=${variant% *} edge=${variant##* }
        tag=" ($edge)"
        [[ $bin != "$HV" ]] && tag=" (before: $(basename "$bin"))"
        log "run $run/$RUNS: hookvault$tag"
        rm -rf "$WORK/db"; mkdir -p "$WORK/db"
        edge_env=()
        [[ $edge != default ]] && edge_env=(HOOKVAULT_SERVER_EDGE="$edge")
        env "${edge_env[@]}" HOOKVAULT_LOG_LEVEL=warn "$bin" serve --listen "127.0.0.1:$PORT" --ws-listen "127.0.0.1:$WSPORT" \
            --db "$WORK/db/hookvault.db" >"$WORK/hv.log" 2>&1 &
        HVP=$!
        PIDS+=("$HVP")
        wait_up "http://127.0.0.1:$PORT/readyz"
        idle "hookvault$tag, just started" "$HVP"
        measure "hookvault$tag GET /healthz (HTTP path only)" "$HVP" "http://127.0.0.1:$PORT/healthz" 0
        measure "hookvault$tag" "$HVP" "http://127.0.0.1:$PORT" 1
        idle "hookvault$tag, after the load" "$HVP"
        kill -TERM "$HVP"; wait "$HVP" 2>/dev/null || true
    done
done

# The gate's cost: CPU per webhook with the gate over CPU per webhook direct, per run.
awk -F'|' '$2 ~ /hookvault \(direct\) *$/ {d = $5} $2 ~ /hookvault \(gate\) *$/ && d > 0 {printf "gate / direct CPU per webhook: %.2f\n", $5 / d}' "$WORK/rows" >"$WORK/ratio"

echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); context switches from $( ((PERF)) && echo 'perf stat' || echo '/proc task status (reads low)')."
echo
echo "| server, wrk -t2 -c32 -d$DUR keep-alive | req/s | p99 | server CPU µs per request | context switches per request | non-2xx | span (hookvault: until processed) |"
echo "|---|---|---|---|---|---|---|"
cat "$WORK/rows"
echo
cat "$WORK/ratio"
echo
echo "| idle for 10 s | wake-ups/s (context switches, all threads) | RSS | peak RSS so far (VmHWM) | threads |"
echo "|---|---|---|---|---|"
cat "$WORK/idle"
