#!/usr/bin/env bash
# Acknowledgement latency while `hookvault backup` runs: the figures in docs/performance.md
# ("Acknowledgements while a backup runs"). A running `serve` on DB takes an open-loop load of
# RATE webhooks/s for SECS; with a backup binary, backups of DB run back to back from 2 s in
# until the load ends (`nice -n 10`, as the nightly unit runs them), so every acknowledgement in
# the window is taken while a copy or its verification runs, however long one backup takes.
#
#   loadtest/backup-latency.sh URL DB LABEL BACKUP_BIN|none [SECS] [RATE]
#
# e.g. with a ~1 GB database from loadtest/large-db.sh and serve on it:
#   target/release/hookvault serve --db /var/tmp/big.db --listen 127.0.0.1:18511 --ws-listen off &
#   loadtest/backup-latency.sh http://127.0.0.1:18511 /var/tmp/big.db none none
#   loadtest/backup-latency.sh http://127.0.0.1:18511 /var/tmp/big.db old /tmp/hookvault-old
#   loadtest/backup-latency.sh http://127.0.0.1:18511 /var/tmp/big.db new target/release/hookvault
# Run the labels interleaved, several times each: on a shared machine one run says little.
# Needs target/release/hookvault-loadtest (LOADTEST=path for another). Copies go to DB.copy-LABEL.
set -euo pipefail

url=${1:?usage: loadtest/backup-latency.sh URL DB LABEL BACKUP_BIN|none [SECS] [RATE]}
db=${2:?DB}
label=${3:?LABEL}
backup_bin=${4:?BACKUP_BIN or none}
secs=${5:-60}
rate=${6:-200}
cd "$(dirname "$0")/.."
lt=${LOADTEST:-${CARGO_TARGET_DIR:-target}/release/hookvault-loadtest}
[ -x "$lt" ] || { echo "backup-latency.sh: no $lt; cargo build --release -p hookvault-loadtest" >&2; exit 2; }
copy="$db.copy-$label"
out=$(mktemp -d)
trap 'rm -rf "$out" "$copy" "$copy".tmp-*' EXIT

echo "== $label: $rate/s for ${secs}s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$lt" --url "$url" --scenario sustained --rate "$rate" --duration "${secs}s" -q >"$out/load.txt" 2>&1 &
load=$!
if [ "$backup_bin" != none ]; then
    sleep 2
    n=0
    while kill -0 "$load" 2>/dev/null; do
        n=$((n + 1))
        rm -f "$copy"
        nice -n 10 "$backup_bin" backup --db "$db" "$copy" >"$out/backup-$n.txt" 2>&1 &
        b=$!
        while kill -0 "$b" 2>/dev/null && kill -0 "$load" 2>/dev/null; do sleep 0.2; done
        if kill -0 "$b" 2>/dev/null; then
            kill "$b"
            wait "$b" 2>/dev/null || true
            echo "backup $n: stopped when the load ended"
        else
            wait "$b" || echo "backup $n FAILED: $(tail -n 1 "$out/backup-$n.txt")"
            grep '^backup: .* -> ' "$out/backup-$n.txt" || true
        fi
    done
fi
wait "$load" || echo "the load generator failed (exit $?)"
grep -E '^(latency|verification|result)' "$out/load.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
