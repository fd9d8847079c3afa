# Sourced by loadtest/bench.sh and loadtest/cost.sh: what both need before they measure.

# require_tools SCRIPT TOOL...: stops with exit 2 naming the first tool that is missing.
require_tools() {
    local who=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$who: '$tool' is required" >&2; exit 2; }
    done
}

# make_workdir NAME BASE KEEP: a fresh directory in $WORK under BASE, and $PIDS for the
# processes the script starts. On exit (also on Ctrl-C) every process in $PIDS is killed and
# the directory removed, unless KEEP is 1.
make_workdir() {
    mkdir -p "$2"
    WORK=$(mktemp -d "$2/hv-$1.XXXXXX")
    WORK_KEEP=$3
    PIDS=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ $WORK_KEEP == 1 ]]; then
        echo "raw outputs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

now_ms() { date +%s%3N; }
# utime + stime of process $1, in clock ticks (0 once it is gone)
proc_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
