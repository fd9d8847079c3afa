#!/usr/bin/env bash
# hookvault performance benchmark: the numbers in docs/performance.md.
#
#   loadtest/bench.sh                 # build release, measure, write docs/bench-results.md
#   BENCH_OUT=/tmp/r.md loadtest/bench.sh
#
# Everything runs on loopback, one measurement after the other, with the same client and the
# same server settings (the built-in defaults, WebSocket off). Takes about 4-6 minutes. Needs
# curl, jq, awk and wrk. Cleans up its processes and temp dirs on exit (also on Ctrl-C).
#
# Knobs (environment): BENCH_OUT (results file), BENCH_PORT (first of two loopback ports,
# default 18401), BENCH_TMP (where the databases go; default under the target dir, so on the
# real disk and not a tmpfs), BENCH_SKIP_BUILD=1, BENCH_KEEP=1 (keep raw outputs).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-$ROOT/docs/bench-results.md}
PORT=${BENCH_PORT:-18401}
BPORT=$((PORT + 1))
URL=http://127.0.0.1:$PORT
BURL=http://127.0.0.1:$BPORT
HZ=$(getconf CLK_TCK)

# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
require_tools bench.sh curl jq awk wrk

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release --workspace
fi
HV=$TARGET/release/hookvault
LT=$TARGET/release/hookvault-loadtest

make_workdir bench "${BENCH_TMP:-$TARGET}" "${BENCH_KEEP:-0}"

for p in "$PORT" "$BPORT"; do
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
        echo "bench.sh: port $p is in use; set BENCH_PORT" >&2
        exit 2
    fi
done

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# ---- CPU accounting: how busy were *other* processes during a measurement? ------------------
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$9}' /proc/stat; } # user nice system steal (irq/softirq of our own loopback traffic left out)
children_ticks() { # user+sys of waited-for children of this shell, in ticks -> KID_TICKS
    # (must run in this shell, not in $(...): a subshell has no reaped children of its own)
    times >"$WORK/.times"
    KID_TICKS=$(awk -v hz="$HZ" 'NR==2 {
        n = split($0, f, " "); t = 0
        for (i = 1; i <= n; i++) { s = f[i]; sub(/s$/, "", s); split(s, ms, "m"); t += ms[1]*60 + ms[2] }
        printf "%d\n", t * hz }' "$WORK/.times")
}
CPU_T0=0 CPU_BUSY0=0 CPU_SRV0=0 CPU_KID0=0 CPU_PID= CPU_OTHERS= CPU_CORES= CPU_SECS=
cpu_mark() { # $1 = server pid
    children_ticks
    CPU_PID=$1 CPU_T0=$(now_ms) CPU_BUSY0=$(busy_ticks) CPU_SRV0=$(proc_ticks "$1") CPU_KID0=$KID_TICKS
}
cpu_end() { # since cpu_mark: CPU_OTHERS = cores used by processes other than the server and our
    # client; CPU_CORES = cores the server used; CPU_SECS = server CPU seconds
    local t busy srv
    children_ticks
    t=$(now_ms) busy=$(busy_ticks) srv=$(proc_ticks "$CPU_PID")
    CPU_OTHERS=$(awk -v b=$((busy - CPU_BUSY0)) -v s=$((srv - CPU_SRV0)) -v k=$((KID_TICKS - CPU_KID0)) \
        -v ms=$((t - CPU_T0)) -v hz="$HZ" \
        'BEGIN { o = (b - s - k) / hz / (ms / 1000); if (o < 0) o = 0; printf "%.2f", o }')
    CPU_CORES=$(awk -v t=$((srv - CPU_SRV0)) -v ms=$((t - CPU_T0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz/(ms/1000)}')
    CPU_SECS=$(awk -v t=$((srv - CPU_SRV0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}')
}

# ---- the servers ----------------------------------------------------------------------------
HVPID= HVLOG=/dev/null
start_hv() { # $1 = name (database dir); extra args: VAR=value environment
    local dir=$WORK/$1
    shift
    mkdir -p "$dir"
    HVLOG=$dir/server.log
    env "$@" HOOKVAULT_LOG_LEVEL=info "$HV" serve --listen "127.0.0.1:$PORT" --ws-listen off \
        --db "$dir/hookvault.db" >>"$HVLOG" 2>&1 &
    HVPID=$!
    PIDS+=("$HVPID")
    READY_MS=$(wait_ready "$URL")
}
wait_ready() { # prints milliseconds until /readyz answered 200
    local t0 code
    t0=$(now_ms)
    for _ in $(seq 1 3000); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1/readyz" || true)
        [[ $code == 200 ]] && { echo $(($(now_ms) - t0)); return 0; }
        sleep 0.01
    done
    echo "bench.sh: server at $1 not ready after 30 s" >&2
    exit 1
}
stop_hv() {
    kill -TERM "$HVPID" 2>/dev/null || true
    wait "$HVPID" 2>/dev/null || true
}
stats() {
    curl -sf --max-time 5 "$URL/api/v2/webhooks/queue/stats" || server_failed "stats did not answer"
}
server_failed() { # the server should be up and is not answering: say why and stop
    local st=up
    if ! kill -0 "$HVPID" 2>/dev/null; then
        wait "$HVPID" 2>/dev/null && st="exited 0" || st="exited with status $?"
    fi
    echo "bench.sh: $1; hookvault pid $HVPID $st; log tail:" >&2
    tail -5 "$HVLOG" >&2
    exit 1
}
metric() { curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
wait_drained() { # waits until nothing is queued or in flight; prints seconds waited
    local t0 s
    t0=$(now_ms)
    while :; do
        s=$(stats)
        if [[ $(jq '.queue_size + .in_flight' <<<"$s") == 0 ]]; then break; fi
        if (($(now_ms) - t0 > 300000)); then echo "bench.sh: queue not drained in 300 s" >&2; exit 1; fi
        sleep 0.1
    done
    awk -v ms=$(($(now_ms) - t0)) 'BEGIN{printf "%.1f", ms/1000}'
}
# The backlog (`queue_size in_flight`) once a second into a file, in the background.
POLLER=
start_backlog_poller() {
    : >"$1"
    (
        local t0 q
        t0=$(now_ms)
        while :; do
            q=$(stats | jq -r '"\(.queue_size) \(.in_flight)"' 2>/dev/null || echo "? ?")
            echo "$(( ($(now_ms) - t0) / 1000 )) $q" >>"$1"
            sleep 1
        done
    ) &
    POLLER=$!
    PIDS+=("$POLLER")
}
stop_backlog_poller() {
    kill "$POLLER" 2>/dev/null || true
    wait "$POLLER" 2>/dev/null || true
}
backlog_series() { awk '{printf "%ss:%s ", $1, ($2 ~ /^[0-9]+$/ ? $2 + $3 : "?")}' "$1"; }
backlog_peak() { awk 'BEGIN{m=0} $2 ~ /^[0-9]+$/ && $2+$3 > m {m=$2+$3} END{print m}' "$1"; }
vm() { awk -v k="$2:" '$1 == k {printf "%.1f", $2/1024}' "/proc/$1/status"; } # MiB
io() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/io"; }

BASEPID=
start_baseline() {
    "$LT" baseline-server --listen "127.0.0.1:$BPORT" >"$WORK/baseline.log" 2>&1 &
    BASEPID=$!
    PIDS+=("$BASEPID")
    # the baseline has no /readyz; any answer will do
    for _ in $(seq 1 500); do curl -s -o /dev/null --max-time 1 "$BURL/" && return 0; sleep 0.01; done
    echo "bench.sh: baseline server did not start" >&2
    exit 1
}

# ---- wrk ------------------------------------------------------------------------------------
# wrk prints "Latency 1.23ms ..." and "99% 3.45ms"; turn a duration into milliseconds.
WRK_ARGS=(-t2 -c32 -d10s --latency -s "$ROOT/loadtest/wrk/post_order.lua")
WRK_PIN=()
run_wrk() { # $1 = base url, $2 = output file; writes "rps p50 p99 max non2xx errors" to $2.sum
    # (run in this shell, not in a pipe or <(...), so wrk's CPU time counts as the client's)
    "${WRK_PIN[@]}" wrk "${WRK_ARGS[@]}" "$1" >"$2" 2>&1
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v + 0
        }
        $1 == "Latency" && NF >= 4 { max = ms($4) }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { errs = $4 + $6 + $8 + $10; gsub(/,/, "", errs) }
        $1 == "Requests/sec:" { rps = $2 }
        END { printf "%.0f %.2f %.2f %.2f %d %d\n", rps, p50, p99, max, non2xx, errs }
    ' "$2" >"$2.sum"
}

lt_json() { # runs hookvault-loadtest with --json -q, prints the report (even when it failed)
    "$LT" "$@" --json -q || true
}

R() { # appends a line to the results file
    printf '%s\n' "$*" >>"$OUT.tmp"
}
fmt() { printf '%.*f' "$1" "$2"; } # decimals value

: >"$OUT.tmp"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
[[ -z $CPU_MODEL ]] && CPU_MODEL=$(awk -F': ' '/^(Hardware|Model)/ {print $2; exit}' /proc/cpuinfo)
DB_DEV=$(df --output=source "$WORK" | tail -1)
DB_FS=$(df --output=fstype "$WORK" | tail -1)
ROTA=$(cat "/sys/block/$(basename "$DB_DEV" | sed 's/[0-9]*$//')/queue/rotational" 2>/dev/null || echo "?")
R "# hookvault benchmark results"
R ""
R "Written by \`loadtest/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
R "Numbers are explained in [performance.md](performance.md)."
R ""
R "| machine | |"
R "|---|---|"
R "| CPU | $CPU_MODEL, $(nproc) cores |"
R "| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |"
R "| kernel | $(uname -sr) |"
R "| database disk | $DB_DEV ($DB_FS, rotational=$ROTA) |"
R "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
R "| binary size | $(stat -c %s "$HV" | awk '{printf "%.2f MiB (%d bytes)", $1/1048576, $1}') |"
R ""
R "\`others\` = CPU cores used by processes other than the server and the client during that"
R "measurement (from /proc/stat); above ~0.3 the row was disturbed and should be re-run."
R "\`load1\` (the 1-minute load average) is shown too but counts hookvault's own runnable threads"
R "(one per connection, handlers, workers), so it is high during and after our own runs."
R ""

# =============================================================================================
log "1/6 durable ack rate, 32 keep-alive connections (wrk, then hookvault-loadtest)"
start_hv ack
sleep 1
IDLE_RSS=$(vm "$HVPID" VmRSS)
IDLE_READY_MS=$READY_MS

L=$(load1); cpu_mark "$HVPID"
run_wrk "$URL" "$WORK/wrk-hv.txt"
cpu_end; HV_OTHERS=$CPU_OTHERS; HV_L=$L; HV_CPU=$CPU_CORES
read -r HV_RPS HV_P50 HV_P99 HV_MAX HV_NON2XX HV_ERRS <"$WORK/wrk-hv.txt.sum"
HV_DRAIN=$(wait_drained)
log "  wrk hookvault: $HV_RPS/s p99 $HV_P99 ms (drained in $HV_DRAIN s)"

start_baseline
L=$(load1); cpu_mark "$BASEPID"
run_wrk "$BURL" "$WORK/wrk-base.txt"
cpu_end; B_OTHERS=$CPU_OTHERS; B_L=$L; B_CPU=$CPU_CORES
read -r B_RPS B_P50 B_P99 B_MAX B_NON2XX B_ERRS <"$WORK/wrk-base.txt.sum"
log "  wrk baseline: $B_RPS/s p99 $B_P99 ms"

L=$(load1); cpu_mark "$HVPID"
lt_json --url "$URL" -n 20000 -c 32 >"$WORK/lt-hv.json"
cpu_end; LTHV_OTHERS=$CPU_OTHERS; LTHV_L=$L
L=$(load1); cpu_mark "$BASEPID"
lt_json --url "$BURL" -n 20000 -c 32 --no-verify >"$WORK/lt-base.json"
cpu_end; LTB_OTHERS=$CPU_OTHERS; LTB_L=$L
kill -TERM "$BASEPID" 2>/dev/null || true
wait "$BASEPID" 2>/dev/null || true

# The same wrk run with the server confined to CPU 0 and wrk to CPU 1: no scheduling fight
# between wrk's two event-loop threads and the server's ~80 threads.
PINNED=0
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    PINNED=1
    wait_drained >/dev/null
    taskset -p -a -c 0 "$HVPID" >/dev/null
    L=$(load1); cpu_mark "$HVPID"
    WRK_PIN=(taskset -c 1)
    run_wrk "$URL" "$WORK/wrk-hv-pinned.txt"
    cpu_end; HVP_OTHERS=$CPU_OTHERS; HVP_L=$L; HVP_CPU=$CPU_CORES
    read -r HVP_RPS HVP_P50 HVP_P99 HVP_MAX HVP_NON2XX HVP_ERRS <"$WORK/wrk-hv-pinned.txt.sum"
    taskset -p -a -c 0-$(($(nproc) - 1)) "$HVPID" >/dev/null
    wait_drained >/dev/null
    taskset -c 0 "$LT" baseline-server --listen "127.0.0.1:$BPORT" >>"$WORK/baseline.log" 2>&1 &
    BASEPID=$!
    PIDS+=("$BASEPID")
    for _ in $(seq 1 500); do curl -s -o /dev/null --max-time 1 "$BURL/" && break; sleep 0.01; done
    L=$(load1); cpu_mark "$BASEPID"
    run_wrk "$BURL" "$WORK/wrk-base-pinned.txt"
    cpu_end; BP_OTHERS=$CPU_OTHERS; BP_L=$L; BP_CPU=$CPU_CORES
    read -r BP_RPS BP_P50 BP_P99 BP_MAX BP_NON2XX BP_ERRS <"$WORK/wrk-base-pinned.txt.sum"
    WRK_PIN=()
    kill -TERM "$BASEPID" 2>/dev/null || true
    wait "$BASEPID" 2>/dev/null || true
    log "  pinned: hookvault $HVP_RPS/s p99 $HVP_P99 ms, baseline $BP_RPS/s"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.0f%%", 100*a/b; else print "-" }'; }
ltrow() { # name json-file load others
    jq -r --arg n "$1" --arg l "$3" --arg o "$4" '"| \($n) | \(.send_rate|floor) | \(.latency.p50_ms) | \(.latency.p99_ms) | \(.latency.p999_ms) | \(.latency.max_ms) | \(.ok_2xx)/\(.sent) | \(if .verification then (if .verified then "PASS, lost \(.lost)" else "FAIL: \(.failures|join("; "))" end) else "off" end) | \($l) | \($o) |"' "$2"
}
LT_HV_RPS=$(jq '.send_rate' "$WORK/lt-hv.json")
LT_B_RPS=$(jq '.send_rate' "$WORK/lt-base.json")

R "## 1. Durable ack rate, 32 keep-alive connections"
R ""
R "\`wrk ${WRK_ARGS[*]/#$ROOT\//} URL\` (closed loop, 10 s):"
R ""
R "| server | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors (timeouts >2 s) | server CPU cores | load1 | others |"
R "|---|---|---|---|---|---|---|---|---|---|"
R "| hookvault | $HV_RPS | $HV_P50 | $HV_P99 | $HV_MAX | $HV_NON2XX | $HV_ERRS | $HV_CPU | $HV_L | $HV_OTHERS |"
R "| baseline-server | $B_RPS | $B_P50 | $B_P99 | $B_MAX | $B_NON2XX | $B_ERRS | $B_CPU | $B_L | $B_OTHERS |"
R "| **ratio** | **$(ratio "$HV_RPS" "$B_RPS")** | | | | | | | | |"
if ((PINNED)); then
    R "| hookvault, pinned to CPU 0, wrk to CPU 1 | $HVP_RPS | $HVP_P50 | $HVP_P99 | $HVP_MAX | $HVP_NON2XX | $HVP_ERRS | $HVP_CPU | $HVP_L | $HVP_OTHERS |"
    R "| baseline-server, pinned to CPU 0, wrk to CPU 1 | $BP_RPS | $BP_P50 | $BP_P99 | $BP_MAX | $BP_NON2XX | $BP_ERRS | $BP_CPU | $BP_L | $BP_OTHERS |"
    R "| **ratio, pinned** | **$(ratio "$HVP_RPS" "$BP_RPS")** | | | | | | | | |"
fi
R ""
R "hookvault processed the wrk backlog in $HV_DRAIN s after wrk stopped."
R ""
R "Cross-check, \`hookvault-loadtest -n 20000 -c 32 --json\` (verification on against hookvault):"
R ""
R "| server | req/s | p50 ms | p99 ms | p99.9 ms | max ms | 2xx | verification | load1 | others |"
R "|---|---|---|---|---|---|---|---|---|---|"
R "$(ltrow hookvault "$WORK/lt-hv.json" "$LTHV_L" "$LTHV_OTHERS")"
R "$(ltrow baseline-server "$WORK/lt-base.json" "$LTB_L" "$LTB_OTHERS")"
R "| **ratio** | **$(ratio "$LT_HV_RPS" "$LT_B_RPS")** | | | | | | | | |"
R ""

# =============================================================================================
log "2/6 open-loop latency at 100, 1000, 5000 requests/s"
R "## 2. Open-loop latency (from the intended send time), 10 s each"
R ""
R "| rate/s | sent | p50 ms | p99 ms | p99.9 ms | max ms | 2xx | verification | sender lag p99 ms | load1 | others |"
R "|---|---|---|---|---|---|---|---|---|---|---|"
for rate in 100 1000 5000; do
    wait_drained >/dev/null
    L=$(load1); cpu_mark "$HVPID"
    lt_json --url "$URL" --rate "$rate" --duration 10s >"$WORK/open-$rate.json"
    cpu_end; O=$CPU_OTHERS
    R "$(jq -r --arg l "$L" --arg o "$O" '"| \(.schedule.target_rate|floor) | \(.sent) | \(.latency.p50_ms) | \(.latency.p99_ms) | \(.latency.p999_ms) | \(.latency.max_ms) | \(.ok_2xx)/\(.sent) | \(if .verified then "PASS, lost \(.lost)" else "FAIL: \(.failures|join("; "))" end) | \(.schedule.lag.p99_ms) | \($l) | \($o) |"' "$WORK/open-$rate.json")"
    log "  open $rate/s: p99 $(jq .latency.p99_ms "$WORK/open-$rate.json") ms"
done
R ""

# =============================================================================================
log "3/6 end-to-end processing: --rate 8000 --duration 20s, then wrk for 20 s"
wait_drained >/dev/null
start_backlog_poller "$WORK/qsize.txt"
L=$(load1); cpu_mark "$HVPID"
lt_json --url "$URL" --rate 8000 --duration 20s >"$WORK/e2e.json"
cpu_end; E2E_OTHERS=$CPU_OTHERS; E2E_CPU=$CPU_SECS; E2E_CORES=$CPU_CORES
stop_backlog_poller
PEAK_RSS=$(vm "$HVPID" VmHWM)
NOW_RSS=$(vm "$HVPID" VmRSS)
E2E_N=$(jq '.queued' "$WORK/e2e.json")
R "## 3. End-to-end: acknowledged and processed, 20 s"
R ""
R "Open loop, \`hookvault-loadtest --rate 8000 --duration 20s --json\` (verification on):"
R ""
R "| target/s | sent | acked/s (send phase) | drain after send s | end-to-end orders/s | ack p50 ms | ack p99 ms | ack max ms | verification | server CPU s (µs/order, cores) | load1 | others |"
R "|---|---|---|---|---|---|---|---|---|---|---|---|"
R "$(jq -r --arg l "$L" --arg o "$E2E_OTHERS" --arg cpu "$E2E_CPU" --arg cores "$E2E_CORES" '"| \(.schedule.target_rate|floor) | \(.sent) | \(.send_rate|floor) | \(.drain_secs*10|round/10) | **\(.end_to_end_rate // 0|floor)** | \(.latency.p50_ms) | \(.latency.p99_ms) | \(.latency.max_ms) | \(if .verified then "PASS, lost \(.lost)" else "FAIL: \(.failures|join("; "))" end) | \($cpu) (\(if .queued > 0 then ($cpu|tonumber)*1e6/.queued|floor else 0 end), \($cores)) | \($l) | \($o) |"' "$WORK/e2e.json")"
R ""
R "Backlog during the run (\`queue_size\` + \`in_flight\` from the stats endpoint, once a second):"
R ""
R "\`$(backlog_series "$WORK/qsize.txt")\`"
R ""
R "Peak backlog: $(backlog_peak "$WORK/qsize.txt") messages."
R ""

# The loadtest client above needs about a core of its own at 8,000/s; wrk needs far less, so
# the server's own ceiling shows better with it: 20 s closed loop, then the drain.
wait_drained >/dev/null
P0=$(stats | jq '.total_processed + .total_failed')
start_backlog_poller "$WORK/qsize-wrk.txt"
L=$(load1); cpu_mark "$HVPID"
T0=$(now_ms)
WRK_ARGS=(-t2 -c32 -d20s --latency -s "$ROOT/loadtest/wrk/post_order.lua")
run_wrk "$URL" "$WORK/wrk-e2e.txt"
WRK_ARGS=(-t2 -c32 -d10s --latency -s "$ROOT/loadtest/wrk/post_order.lua")
WE_DRAIN=$(wait_drained)
WE_MS=$(($(now_ms) - T0))
cpu_end; WE_OTHERS=$CPU_OTHERS; WE_CORES=$CPU_CORES; WE_SECS=$CPU_SECS
stop_backlog_poller
P1=$(stats | jq '.total_processed + .total_failed')
read -r WE_RPS WE_P50 WE_P99 WE_MAX WE_NON2XX WE_ERRS <"$WORK/wrk-e2e.txt.sum"
R "Closed loop, \`wrk -t2 -c32 -d20s\` (as in section 1, 20 s), then the drain:"
R ""
R "| acked/s | drain after wrk s | processed | end-to-end orders/s (processed / (20 s + drain)) | peak backlog | server CPU cores (µs/order) | load1 | others |"
R "|---|---|---|---|---|---|---|---|"
R "| $WE_RPS | $WE_DRAIN | $((P1 - P0)) | **$(awk -v n=$((P1 - P0)) -v ms="$WE_MS" 'BEGIN{printf "%.0f", n/(ms/1000)}')** | $(backlog_peak "$WORK/qsize-wrk.txt") | $WE_CORES ($(awk -v s="$WE_SECS" -v n=$((P1 - P0)) 'BEGIN{ if (n > 0) printf "%.0f", s*1e6/n }')) | $L | $WE_OTHERS |"
R ""
R "Backlog once a second: \`$(backlog_series "$WORK/qsize-wrk.txt")\`"
R ""
PEAK_RSS=$(vm "$HVPID" VmHWM)
NOW_RSS=$(vm "$HVPID" VmRSS)

# =============================================================================================
log "4/6 memory"
R "## 4. Memory (VmRSS / VmHWM of the hookvault process)"
R ""
R "| idle after start | peak (VmHWM) after sections 1-3 | RSS after section 3 | time to ready (empty db) |"
R "|---|---|---|---|"
R "| $IDLE_RSS MiB | $PEAK_RSS MiB | $NOW_RSS MiB | $IDLE_READY_MS ms |"
R ""
stop_hv

# =============================================================================================
log "5/6 write cost: 1,000 webhooks at 100/s, then 20,000 with -c 32, on a fresh database"
start_hv write
sleep 1
PID=$HVPID
# a typical generated body (loadtest/src/payload.rs order_body: 12-char run id, 5-digit seq)
BODY=$(printf '%s' '{"embeds":[{"author":{"name":"Test Order 12345"},"description":"Product\nTest Product 12345\nPrice\n$99.99\nOrder Number\nLT-ABCDEFGHIJKL-12345\nEmail\ntest12345@example.com"}]}' | wc -c)
write_cost() { # name, then loadtest args; sets W_* for the table
    local wb0 wc0 b0 wb1 wc1 b1 wb2 wc2 b2
    wb0=$(io "$PID" write_bytes) wc0=$(io "$PID" wchar) b0=$(metric hookvault_commit_batches_total)
    W_L=$(load1); cpu_mark "$PID"
    lt_json --url "$URL" "${@:2}" >"$WORK/write-$1.json"
    cpu_end; W_OTHERS=$CPU_OTHERS
    W_N=$(jq '.queued' "$WORK/write-$1.json")
    W_OK=$(jq -r 'if .verified then "PASS, lost \(.lost)" else "FAIL" end' "$WORK/write-$1.json")
    wait_drained >/dev/null
    wb1=$(io "$PID" write_bytes) b1=$(metric hookvault_commit_batches_total)
    sleep 5 # the writer checkpoints the WAL after 250 ms without work
    wb2=$(io "$PID" write_bytes) wc2=$(io "$PID" wchar) b2=$(metric hookvault_commit_batches_total)
    W_COMMITS=$((b1 - b0)) W_WB1=$((wb1 - wb0)) W_WB2=$((wb2 - wb0)) W_WC=$((wc2 - wc0))
}
per() { awk -v a="$1" -v n="$2" 'BEGIN{ if (n > 0) printf "%.0f", a/n; else print "-" }'; }
per3() { awk -v a="$1" -v n="$2" 'BEGIN{ if (n > 0) printf "%.2f", a/n; else print "-" }'; }
write_cost slow --rate 100 --duration 10s
S_N=$W_N S_C=$W_COMMITS S_WB1=$W_WB1 S_WB2=$W_WB2 S_WC=$W_WC S_L=$W_L S_O=$W_OTHERS S_OK=$W_OK
write_cost burst -n 20000 -c 32
curl -s "$URL/metrics" | grep '^hookvault_commit_batch_size' >"$WORK/batch-hist.txt" || true
read -r DBSZ WALSZ < <(stats | jq -r '"\(.db_size_bytes) \(.wal_size_bytes)"')
R "## 5. Write cost per webhook (fresh database, every webhook acked and processed)"
R ""
R "| per webhook | 100/s for 10 s ($S_N webhooks) | -n 20000 -c 32 ($W_N webhooks) |"
R "|---|---|---|"
R "| commits (each one WAL fsync) \`hookvault_commit_batches_total\` | $(per3 "$S_C" "$S_N") | $(per3 "$W_COMMITS" "$W_N") |"
R "| bytes to disk (/proc/PID/io \`write_bytes\`) after the drain | $(per "$S_WB1" "$S_N") B | $(per "$W_WB1" "$W_N") B |"
R "| bytes to disk after the drain + idle WAL checkpoint (5 s) | **$(per "$S_WB2" "$S_N") B** | **$(per "$W_WB2" "$W_N") B** |"
R "| bytes passed to write() (\`wchar\`), incl. checkpoint | $(per "$S_WC" "$S_N") B | $(per "$W_WC" "$W_N") B |"
R "| request body (a generated order) | $BODY B | $BODY B |"
R "| **disk bytes / body bytes** | **$(awk -v a="$S_WB2" -v n="$S_N" -v b="$BODY" 'BEGIN{ if (n > 0) printf "%.0f x", a/n/b }')** | **$(awk -v a="$W_WB2" -v n="$W_N" -v b="$BODY" 'BEGIN{ if (n > 0) printf "%.0f x", a/n/b }')** |"
R "| verification | $S_OK | $W_OK |"
R "| load1 / others | $S_L / $S_O | $W_L / $W_OTHERS |"
R ""
R "After both runs ($((S_N + W_N)) webhooks): database file $DBSZ bytes ($(per "$DBSZ" $((S_N + W_N))) B per webhook"
R "incl. its order row and indexes), WAL file $WALSZ bytes (a PASSIVE checkpoint does not shrink it)."
R ""
R "Commit batch sizes over both runs (operations per transaction; one webhook is an append, a"
R "claim and an outcome, about 3 operations), cumulative Prometheus buckets:"
R ""
R "\`\`\`"
R "$(grep -E 'bucket|_sum|_count' "$WORK/batch-hist.txt")"
R "\`\`\`"
R ""
stop_hv

# =============================================================================================
log "6/6 recovery: a 100,000-message backlog, kill -9, restart"
# Workers keep up with intake, so posting fast does not leave a backlog behind. Instead: post
# 100,000 orders whose order number carries a label hookvault does not know ("Bestellnummer"):
# each ends dead at once. Restart with that label configured as an alias, requeue all dead
# letters (one transaction), kill -9 right after the answer, and time the next start and the
# drain: 100,000 real orders through the whole worker path.
printf '[orders.aliases]\norder_number = ["Bestellnummer"]\n' >"$WORK/alias.toml"
start_hv recover
L=$(load1)
# wrk's threads stop at 50,000 answers each but wrk itself waits out -d: stop it once all came
T0=$(now_ms)
wrk -t2 -c32 -d120s -s "$ROOT/loadtest/wrk/post_order.lua" "$URL" -- Bestellnummer 50000 \
    >"$WORK/wrk-recover.txt" 2>&1 &
WRKPID=$!
PIDS+=("$WRKPID")
while (($(stats | jq '.total_received') < 100000)); do
    kill -0 "$WRKPID" 2>/dev/null || break
    sleep 0.2
done
FILL_RPS=$(awk -v n="$(stats | jq '.total_received')" -v ms=$(($(now_ms) - T0)) 'BEGIN{printf "%.0f", n/(ms/1000)}')
sleep 0.5
kill "$WRKPID" 2>/dev/null || true
wait "$WRKPID" 2>/dev/null || true
wait_drained >/dev/null
DEAD=$(stats | jq '.dead_letter_queue_size')
stop_hv
env HOOKVAULT_LOG_LEVEL=info "$HV" serve --config "$WORK/alias.toml" --listen "127.0.0.1:$PORT" \
    --ws-listen off --db "$WORK/recover/hookvault.db" >>"$WORK/recover/server.log" 2>&1 &
HVPID=$!
PIDS+=("$HVPID")
wait_ready "$URL" >/dev/null
REQUEUED=$(curl -s -X POST --max-time 60 "$URL/api/v2/webhooks/queue/retry-failed" | jq '.requeued')
kill -9 "$HVPID"
wait "$HVPID" 2>/dev/null || true
T0=$(now_ms)
env HOOKVAULT_LOG_LEVEL=info "$HV" serve --config "$WORK/alias.toml" --listen "127.0.0.1:$PORT" \
    --ws-listen off --db "$WORK/recover/hookvault.db" >>"$WORK/recover/server.log" 2>&1 &
HVPID=$!
PIDS+=("$HVPID")
wait_ready "$URL" >/dev/null
RESTART_MS=$(($(now_ms) - T0))
S=$(stats)
BACKLOG=$(jq '.queue_size + .in_flight' <<<"$S")
P0=$(jq '.total_processed' <<<"$S")
L2=$(load1); cpu_mark "$HVPID"
DRAIN=$(wait_drained)
cpu_end; R_OTHERS=$CPU_OTHERS
S=$(stats)
P1=$(jq '.total_processed' <<<"$S")
RSS_AFTER=$(vm "$HVPID" VmHWM)
R "## 6. Recovery: kill -9 with a 100,000-message backlog, restart, drain"
R ""
R "$DEAD webhooks posted with wrk (-c 32, $FILL_RPS/s; load1 $L) with an order-number label hookvault"
R "did not know, so each went to dead letters; restarted with the label as an alias, requeued"
R "all $REQUEUED dead letters in one call, \`kill -9\` right after the answer, restarted."
R ""
R "| backlog after restart | time to ready (exec to /readyz 200) | drain time | drain rate | processed during drain | peak RSS while draining | load1 | others |"
R "|---|---|---|---|---|---|---|---|"
R "| $BACKLOG | $RESTART_MS ms | $DRAIN s | $(awk -v n="$BACKLOG" -v s="$DRAIN" 'BEGIN{ if (s > 0) printf "%.0f/s", n/s; else print "-" }') | $((P1 - P0)) | $RSS_AFTER MiB | $L2 | $R_OTHERS |"
R ""
stop_hv

R "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
mv "$OUT.tmp" "$OUT"
log "done: $OUT"
cat "$OUT"
