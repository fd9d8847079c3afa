#!/usr/bin/env bash
# What the writer thread spends per webhook, in instructions (valgrind's callgrind counts
# them, so the figure does not move with the machine's load the way CPU time does): the
# server runs under callgrind collecting only inside `WriteStore::commit_batch` (every
# transaction the writer commits: the webhook's append, its claim and outcome, the counters),
# `hookvault-loadtest` posts N generated orders and waits until all are processed; then
# instructions / N, and the writer's top functions.
#
#   loadtest/writer-instructions.sh [N] [BINARY]   (defaults: 2000, target/release/hookvault)
#   HV_KEEP=1 keeps the callgrind output.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/common.sh
require_tools writer-instructions.sh valgrind callgrind_annotate

N=${1:-2000}
BIN=${2:-target/release/hookvault}
LOADTEST=${LOADTEST:-target/release/hookvault-loadtest}
PORT=${PORT:-18431}
make_workdir writer-instructions "${TMPDIR:-/tmp}" "${HV_KEEP:-0}"

valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    --toggle-collect='*commit_batch*' \
    "$BIN" serve --db "$WORK/hookvault.db" --listen "127.0.0.1:$PORT" --ws-listen off \
    2>"$WORK/server.log" &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 1 600); do
    grep -q "listening" "$WORK/server.log" 2>/dev/null && break
    sleep 0.1
done
"$LOADTEST" --url "http://127.0.0.1:$PORT" -n "$N" -c 4 >"$WORK/loadtest.txt"
kill -TERM "$SERVER"
wait "$SERVER" || true

callgrind_annotate "$WORK/callgrind.out" >"$WORK/annotate.txt" 2>/dev/null
total=$(awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}' "$WORK/annotate.txt")
echo "binary: $BIN"
echo "webhooks: $N (posted, acknowledged and processed; loadtest verified)"
echo "instructions in commit_batch: $total"
echo "per webhook: $((total / N))"
echo "top functions (self cost):"
sed -n '/file:function/,$p' "$WORK/annotate.txt" | sed -n '1,25p'
