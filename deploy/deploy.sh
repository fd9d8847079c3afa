#!/usr/bin/env bash
# Deploys hookvault to one host over SSH: build for the host's CPU (or take a prebuilt binary),
# install it as a new versioned file beside the old ones, switch one symlink, install the unit
# and a config (an existing config is never touched), check the config on the host, restart,
# wait for /readyz, and switch the symlink back if the new binary does not come up.
# A rollback is one symlink switch and one restart; when the new binary migrates the database
# schema (it says so: `hookvault schema`), a backup taken before the switch is restored too,
# since the previous binary refuses a newer schema. See `--help` and the Upgrades section of
# docs/operations.md; tests/integration/deploy_ssh.rs runs it against a real sshd.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/deploy.sh [options] [USER@]HOST

Build (or take) a hookvault binary for HOST, install it over SSH and restart it; roll back to
the previous binary when the new one does not become ready.

Build (skipped with --binary):
  --binary PATH           deploy this prebuilt binary instead of building one
  --target TRIPLE         Rust target to build for (default: from `ssh HOST uname -m`
                          and `getconf LONG_BIT`: aarch64 -> aarch64-unknown-linux-gnu,
                          armv7l or a 32-bit OS on a 64-bit Pi -> armv7-unknown-linux-gnueabihf,
                          armv6l (Pi Zero, Pi 1) -> arm-unknown-linux-musleabihf (static),
                          x86_64 -> x86_64-unknown-linux-gnu)
                          The build uses `cross` when it and Docker work, else
                          `cargo zigbuild` when installed (glibc targets linked against
                          glibc 2.28, so Raspberry Pi OS 10 and later run them; ARMv6 with
                          its standard library built from source), else `cargo build
                          --target` with Debian's cross gcc as the linker (e.g.
                          gcc-arm-linux-gnueabihf; the binary then needs the glibc of the
                          build machine or newer).

SSH (the command is $SSH when set, else `ssh`):
  -p, --port PORT         SSH port
  -i, --identity FILE     SSH private key
  --ssh-opts 'OPTS'       more ssh options, split on spaces (e.g. '-o StrictHostKeyChecking=no')

Install:
  --prefix DIR            install under DIR instead of / (DIR/usr/local/bin, DIR/usr/local/lib/hookvault,
                          DIR/etc/hookvault, DIR/var/lib/hookvault, DIR/etc/systemd/system)
  --keep N                versions to keep on the host, current and previous included (default 5)

Restart and readiness:
  --service-manager M     systemctl (default): daemon-reload, enable, restart hookvault
                          none: install only; no restart, no readiness wait
                          command:'CMD': run CMD on the host through `sh -c` to (re)start it; it
                          sees DEPLOY_BIN, DEPLOY_CONFIG, DEPLOY_STATE_DIR and DEPLOY_DB
  --ready-url URL         readiness URL as seen from the host (default http://127.0.0.1:8001/readyz)
  --ready-timeout SECS    how long to wait for a 200 from it (default 30)

  --dry-run               inspect the host (read-only) and print every step without doing it
  -h, --help              this text

Schema changes: before switching, the new binary is asked (`hookvault schema`) what its
`serve` will do with the database. When it will migrate it, the current binary first takes a
`hookvault backup` to STATE_DIR/hookvault.db.pre-upgrade-<UTC time> (the two newest are kept).
A rollback restores that backup when the previous binary refuses the database as the new one
left it; the migrated database is kept aside (hookvault.db.before-restore-<UTC time>).
A new binary that refuses the database (a newer schema than it runs) is not switched in.

Exit status: 0 deployed (or already current), 1 failed before switching (nothing changed on
the running service), 2 the new binary did not become ready and was rolled back, 3 it did not
become ready and there was nothing to roll back to (or the rollback failed too), 64 usage.
EOF
}

die_usage() {
    echo "deploy: $*" >&2
    echo "Try 'deploy/deploy.sh --help'." >&2
    exit 64
}

fail() {
    echo "deploy: FAILED: $*" >&2
    exit 1
}

say() { echo "deploy: $*"; }

HOST=""
BINARY=""
TARGET=""
SSH_PORT=""
SSH_KEY=""
SSH_EXTRA=""
PREFIX=""
KEEP=5
SERVICE_MANAGER="systemctl"
READY_URL="http://127.0.0.1:8001/readyz"
READY_TIMEOUT=30
DRY_RUN=0

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
        --target) TARGET="${2:?--target needs a triple}"; shift 2 ;;
        -p | --port) SSH_PORT="${2:?--port needs a number}"; shift 2 ;;
        -i | --identity) SSH_KEY="${2:?--identity needs a file}"; shift 2 ;;
        --ssh-opts) SSH_EXTRA="${2?--ssh-opts needs options}"; shift 2 ;;
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --keep) KEEP="${2:?--keep needs a number}"; shift 2 ;;
        --service-manager) SERVICE_MANAGER="${2:?--service-manager needs systemctl, none or command:CMD}"; shift 2 ;;
        --ready-url) READY_URL="${2:?--ready-url needs a URL}"; shift 2 ;;
        --ready-timeout) READY_TIMEOUT="${2:?--ready-timeout needs seconds}"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -*) die_usage "unknown option $1" ;;
        *)
            [ -z "$HOST" ] || die_usage "one host only (got '$HOST' and '$1')"
            HOST="$1"; shift ;;
    esac
done

[ -n "$HOST" ] || die_usage "no HOST given"
case "$KEEP" in '' | *[!0-9]*) die_usage "--keep wants a number" ;; esac
[ "$KEEP" -ge 2 ] || die_usage "--keep must be at least 2 (the current and the previous version)"
case "$READY_TIMEOUT" in '' | *[!0-9]*) die_usage "--ready-timeout wants whole seconds" ;; esac
case "$SERVICE_MANAGER" in
    systemctl | none) ;;
    command:?*) ;;
    *) die_usage "--service-manager must be systemctl, none or command:'CMD'" ;;
esac
case "$PREFIX" in
    '') ;;
    /*) PREFIX="${PREFIX%/}" ;;
    *) die_usage "--prefix must be an absolute path" ;;
esac
[ -z "$BINARY" ] || [ -f "$BINARY" ] || fail "--binary $BINARY: no such file"

REPO="$(cd "$(dirname "$0")/.." && pwd)"
UNIT_SRC="$REPO/systemd/hookvault.service"
CONFIG_SRC="$REPO/config.example.toml"
if [ ! -f "$UNIT_SRC" ] || [ ! -f "$CONFIG_SRC" ]; then
    fail "run from a hookvault checkout (missing $UNIT_SRC or $CONFIG_SRC)"
fi

# Paths on the host. The unit and README use the prefix-less ones.
BIN_LINK="$PREFIX/usr/local/bin/hookvault"
VERSIONS_DIR="$PREFIX/usr/local/lib/hookvault"
ETC_DIR="$PREFIX/etc/hookvault"
CONFIG="$ETC_DIR/config.toml"
STATE_DIR="$PREFIX/var/lib/hookvault"
DB="$STATE_DIR/hookvault.db"
UNIT="$PREFIX/etc/systemd/system/hookvault.service"

# --- SSH -------------------------------------------------------------------------------------
# $SSH may hold a command with options (e.g. "ssh -F ./ssh_config"); it is split on spaces.
read -r -a SSH_CMD <<<"${SSH:-ssh}"
SSH_CMD+=(-o BatchMode=yes)
[ -z "$SSH_PORT" ] || SSH_CMD+=(-p "$SSH_PORT")
[ -z "$SSH_KEY" ] || SSH_CMD+=(-i "$SSH_KEY")
if [ -n "$SSH_EXTRA" ]; then
    read -r -a extra <<<"$SSH_EXTRA"
    SSH_CMD+=("${extra[@]}")
fi

# One SSH connection for the whole run (a dozen short commands): each new connection costs a
# key exchange, which on a Pi or a busy machine is most of the script's run time.
CONTROL_DIR="$(mktemp -d "${TMPDIR:-/tmp}/hookvault-deploy.XXXXXX")"
SSH_CMD+=(-o ControlMaster=auto -o "ControlPath=$CONTROL_DIR/%C" -o ControlPersist=300)
close_ssh() {
    "${SSH_CMD[@]}" -O exit "$HOST" >/dev/null 2>&1 || true
    rm -rf "$CONTROL_DIR"
}
trap close_ssh EXIT

q() { printf '%q' "$1"; }

# Runs a shell command on the host and prints its output; for inspecting (runs in --dry-run).
inspect() {
    "${SSH_CMD[@]}" "$HOST" "$1"
}

# Runs a shell command on the host that changes something; --dry-run only prints it.
change() {
    echo "+ [$HOST] $1"
    [ "$DRY_RUN" = 1 ] && return 0
    "${SSH_CMD[@]}" "$HOST" "$1"
}

# Runs a command here that changes something; --dry-run only prints it.
local_step() {
    echo "+ $*"
    [ "$DRY_RUN" = 1 ] && return 0
    "$@"
}

START_S=$(date +%s.%N)
elapsed() { awk -v s="$START_S" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

say "host $HOST, prefix '${PREFIX:-/}', service manager $SERVICE_MANAGER$([ "$DRY_RUN" = 1 ] && echo ', DRY RUN: nothing is changed')"
inspect true || fail "cannot run commands on $HOST over SSH (${SSH_CMD[*]} $HOST)"

# --- 1. the binary ---------------------------------------------------------------------------
# The release target for `uname -m` and the word size of the host's userland ($2, from
# `getconf LONG_BIT`): a 32-bit Raspberry Pi OS on a 64-bit kernel says aarch64 but runs only
# 32-bit programs.
target_for_machine() {
    case "$1" in
        aarch64 | arm64)
            if [ "$2" = 32 ]; then echo armv7-unknown-linux-gnueabihf; else echo aarch64-unknown-linux-gnu; fi ;;
        armv7l | armv7* | armv8l) echo armv7-unknown-linux-gnueabihf ;;
        armv6l | armv6*) echo arm-unknown-linux-musleabihf ;;
        x86_64 | amd64) echo x86_64-unknown-linux-gnu ;;
        *) fail "no known Rust target for machine '$1'; pass --target TRIPLE or --binary PATH" ;;
    esac
}

# The glibc version the zigbuild links glibc targets against (Raspberry Pi OS 10 has 2.28).
ZIG_GLIBC=2.28

build() {
    local gnu_target="$1" musl_target linker_prefix
    musl_target="${gnu_target/-gnueabihf/-musleabihf}"
    musl_target="${musl_target/-gnu/-musl}"
    cd "$REPO"
    if command -v cross >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        local_step cross build --release --locked --target "$musl_target" --bin hookvault
        BINARY="$REPO/target/$musl_target/release/hookvault"
    elif cargo zigbuild --help >/dev/null 2>&1; then
        case "$gnu_target" in
            arm-unknown-linux-musleabihf)
                # rustup may have no prebuilt standard library for ARMv6: build it from source
                # (needs `rustup component add rust-src`); zig supplies musl and its start files.
                local_step env RUSTC_BOOTSTRAP=1 CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no" \
                    cargo zigbuild --release --locked --target "$gnu_target" -Zbuild-std=std,panic_abort --bin hookvault ;;
            *-gnu | *-gnueabihf)
                local_step cargo zigbuild --release --locked --target "$gnu_target.$ZIG_GLIBC" --bin hookvault ;;
            *) local_step cargo zigbuild --release --locked --target "$gnu_target" --bin hookvault ;;
        esac
        BINARY="$REPO/target/$gnu_target/release/hookvault"
    else
        case "$gnu_target" in
            *-musl*) fail "$gnu_target needs cross (with Docker) or cargo zigbuild; neither works here (pass --binary)" ;;
        esac
        local upper="${gnu_target^^}"
        upper="${upper//-/_}"
        local -a env_vars=()
        if [ "$gnu_target" != "$(rustc -vV | sed -n 's/^host: //p')" ]; then
            case "$gnu_target" in
                aarch64-*) linker_prefix=aarch64-linux-gnu ;;
                armv7-*) linker_prefix=arm-linux-gnueabihf ;;
                x86_64-*) linker_prefix=x86_64-linux-gnu ;;
            esac
            command -v "$linker_prefix-gcc" >/dev/null 2>&1 ||
                fail "no cross, no cargo zigbuild and no $linker_prefix-gcc: install one (Debian: apt install gcc-$linker_prefix), or pass --binary"
            env_vars=("CARGO_TARGET_${upper}_LINKER=$linker_prefix-gcc" "CC_${gnu_target//-/_}=$linker_prefix-gcc")
        fi
        if [ ${#env_vars[@]} -gt 0 ]; then
            local_step env "${env_vars[@]}" cargo build --release --locked --target "$gnu_target" --bin hookvault
        else
            local_step cargo build --release --locked --target "$gnu_target" --bin hookvault
        fi
        BINARY="$REPO/target/$gnu_target/release/hookvault"
    fi
    [ "$DRY_RUN" = 1 ] || [ -f "$BINARY" ] || fail "the build left no $BINARY"
}

if [ -z "$BINARY" ]; then
    if [ -z "$TARGET" ]; then
        machine="$(inspect 'uname -m')" || fail "cannot ask $HOST for its machine type"
        bits="$(inspect 'getconf LONG_BIT 2>/dev/null' || true)"
        TARGET="$(target_for_machine "$machine" "$bits")"
        say "host machine $machine (${bits:-?}-bit userland): target $TARGET"
    fi
    build "$TARGET"
fi

if [ "$DRY_RUN" = 1 ] && [ ! -f "$BINARY" ]; then
    HASH="<hash of the build>"
else
    HASH="$(sha256sum "$BINARY" | cut -c1-12)"
fi
say "binary $BINARY (sha256 $HASH...)"

# --- 2. directories, the versioned binary ----------------------------------------------------
change "mkdir -p $(q "$PREFIX/usr/local/bin") $(q "$VERSIONS_DIR") $(q "$STATE_DIR") $(q "$(dirname "$UNIT")") && install -d -m 0750 $(q "$ETC_DIR")"

# A version already on the host (an earlier deploy of the same build) is reused as it is.
existing="$(inspect "ls -1 $(q "$VERSIONS_DIR") 2>/dev/null | grep -E -- '-$HASH\$' | head -n 1" || true)"
if [ -n "$existing" ]; then
    VERSION_FILE="$VERSIONS_DIR/$existing"
    say "version $existing is already on the host"
else
    incoming="$VERSIONS_DIR/.incoming-$HASH"
    echo "+ [$HOST] cat > $incoming < $BINARY"
    if [ "$DRY_RUN" = 0 ]; then
        "${SSH_CMD[@]}" "$HOST" "cat > $(q "$incoming") && chmod 0755 $(q "$incoming")" <"$BINARY" ||
            fail "copying the binary to $HOST failed"
        remote_hash="$(inspect "sha256sum $(q "$incoming") | cut -c1-12")"
        [ "$remote_hash" = "$HASH" ] || fail "the copy on $HOST has sha256 $remote_hash, not $HASH"
        # Running it on the host proves it suits the host's CPU and libc before anything switches.
        version_line="$(inspect "$(q "$incoming") --version")" ||
            { inspect "rm -f $(q "$incoming")" || true; fail "the new binary does not run on $HOST ($(q "$incoming") --version failed): wrong target?"; }
        version="$(echo "$version_line" | awk '{ print $2 }' | tr -cd '0-9A-Za-z.+_-')"
        VERSION_FILE="$VERSIONS_DIR/hookvault-${version:-unknown}-$HASH"
        change "mv -f $(q "$incoming") $(q "$VERSION_FILE")"
        say "installed $VERSION_FILE ($version_line)"
    else
        VERSION_FILE="$VERSIONS_DIR/hookvault-<version>-$HASH"
        echo "+ [$HOST] $incoming --version   # proves it runs there; names the file"
        echo "+ [$HOST] mv -f $incoming $VERSION_FILE"
    fi
fi

# --- 3. unit and config ----------------------------------------------------------------------
# The unit names the prefix-less paths; under --prefix they are rewritten to the prefixed ones.
unit_text="$(sed -e "s#/usr/local/bin/hookvault#$BIN_LINK#g" \
    -e "s#/etc/hookvault/#$ETC_DIR/#g" \
    -e "s#/var/lib/hookvault#$STATE_DIR#g" "$UNIT_SRC")"
unit_changed=0
if [ "$(inspect "cat $(q "$UNIT") 2>/dev/null" || true)" != "$unit_text" ]; then
    unit_changed=1
    echo "+ [$HOST] install unit $UNIT (from systemd/hookvault.service)"
    if [ "$DRY_RUN" = 0 ]; then
        printf '%s\n' "$unit_text" | "${SSH_CMD[@]}" "$HOST" "cat > $(q "$UNIT.new") && chmod 0644 $(q "$UNIT.new") && mv -f $(q "$UNIT.new") $(q "$UNIT")" ||
            fail "installing the unit failed"
    fi
else
    say "unit $UNIT is up to date"
fi

if inspect "test -e $(q "$CONFIG")"; then
    say "config $CONFIG exists: kept as it is (never overwritten)"
else
    echo "+ [$HOST] install -m 0640 config.example.toml $CONFIG"
    if [ "$DRY_RUN" = 0 ]; then
        # set -C (noclobber): should a config appear meanwhile, this fails rather than overwrite it.
        "${SSH_CMD[@]}" "$HOST" "set -C && umask 027 && cat > $(q "$CONFIG")" <"$CONFIG_SRC" ||
            fail "installing the config failed"
    fi
fi

# The new binary judges the config before it is switched in: a bad config stops here.
if [ "$DRY_RUN" = 1 ]; then
    echo "+ [$HOST] $VERSION_FILE check-config --config $CONFIG"
else
    if ! out="$(inspect "$(q "$VERSION_FILE") check-config --config $(q "$CONFIG") 2>&1")"; then
        echo "$out" >&2
        fail "check-config with the new binary failed on $HOST; nothing was switched"
    fi
    say "check-config: ok"
fi

PREVIOUS="$(inspect "readlink $(q "$BIN_LINK") 2>/dev/null" || true)"

# --- 4. the schema: a backup before a switch that migrates -----------------------------------
# Runs CMD's binary as `BIN schema` on the host and prints its on_serve= word (empty when the
# binary cannot say: an older release without the command, or a broken build).
schema_plan() {
    inspect "$(q "$1") schema --config $(q "$CONFIG") --db $(q "$DB") 2>/dev/null; \
        chown --reference=$(q "$DB") $(q "$DB-wal") $(q "$DB-shm") 2>/dev/null; true" |
        sed -n 's/^on_serve=//p'
}

# Gives the database's -wal/-shm (which an SQLite reader may create) and a restored database
# the owner of the database directory, so the service user can open them (this script may
# run as root while the service runs as its own user).
fix_owner() {
    change "for f in $(q "$DB") $(q "$DB-wal") $(q "$DB-shm") $(q "$DB.lock"); do [ ! -e \"\$f\" ] || chown --reference=$(q "$STATE_DIR") \"\$f\" 2>/dev/null || true; done"
}

SCHEMA_BACKUP=""
if [ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "$VERSION_FILE" ] && [ "$DRY_RUN" = 0 ]; then
    plan="$(schema_plan "$VERSION_FILE")"
    case "$plan" in
        migrate)
            SCHEMA_BACKUP="$DB.pre-upgrade-$(inspect 'date -u +%Y%m%dT%H%M%SZ')"
            say "the new binary migrates the database schema: backing it up first (the previous binary refuses a migrated database)"
            change "$(q "$PREVIOUS") backup --config $(q "$CONFIG") --db $(q "$DB") $(q "$SCHEMA_BACKUP")" ||
                fail "the backup before the schema change failed; nothing was switched"
            fix_owner
            change "chmod 0600 $(q "$SCHEMA_BACKUP") && cd $(q "$STATE_DIR") && ls -1t | grep -E '^hookvault\.db\.pre-upgrade-' | tail -n +3 | while read -r old; do rm -f -- \"\$old\"; done"
            say "backup before the schema change: $SCHEMA_BACKUP"
            ;;
        none | create) say "schema: the new binary does not migrate the database; no backup needed" ;;
        refuse) fail "the new binary refuses the database at $DB (its schema is newer than that binary runs; \`$VERSION_FILE schema\` says so); nothing was switched" ;;
        *) say "schema: the new binary cannot say whether it migrates the database (no \`hookvault schema\`?); no backup taken" ;;
    esac
elif [ "$DRY_RUN" = 1 ] && [ -n "$PREVIOUS" ]; then
    echo "+ [$HOST] $VERSION_FILE schema --config $CONFIG --db $DB   # on_serve=migrate: $PREVIOUS backup ... $DB.pre-upgrade-<time> first"
fi

# Puts the pre-upgrade backup back when the previous binary refuses the database as the new
# one left it. The new binary must have stopped: restore refuses a database in use.
restore_schema_backup() {
    [ -n "$SCHEMA_BACKUP" ] || return 0
    case "$SERVICE_MANAGER" in
        systemctl) change "systemctl stop hookvault" || true ;;
    esac
    local plan
    plan="$(schema_plan "$PREVIOUS")"
    if [ "$plan" = none ] || [ "$plan" = create ]; then
        say "the database is still at a schema the previous binary runs: not restored (the backup stays at $SCHEMA_BACKUP)"
        return 0
    fi
    echo "deploy: the previous binary cannot run the database as the new one left it: restoring $SCHEMA_BACKUP" >&2
    # A command: service manager has no stop; give a failing new binary a moment to exit.
    local tries=0
    until change "$(q "$PREVIOUS") restore --force --config $(q "$CONFIG") --db $(q "$DB") $(q "$SCHEMA_BACKUP")"; do
        tries=$((tries + 1))
        [ "$tries" -lt 10 ] || return 1
        sleep 1
    done
    fix_owner
    echo "deploy: restored the database from before the upgrade; webhooks the new binary acknowledged are only in the database moved aside" >&2
}

# --- 5. switch, restart, wait ----------------------------------------------------------------

switch_to() {
    change "ln -sfn $(q "$1") $(q "$BIN_LINK.new") && mv -Tf $(q "$BIN_LINK.new") $(q "$BIN_LINK")"
}

restart() {
    case "$SERVICE_MANAGER" in
        none) say "service manager 'none': not restarting; restart hookvault yourself" ;;
        systemctl)
            if [ "$unit_changed" = 1 ]; then change "systemctl daemon-reload && systemctl enable hookvault"; fi
            change "systemctl restart hookvault"
            ;;
        command:*)
            local cmd="${SERVICE_MANAGER#command:}"
            change "DEPLOY_BIN=$(q "$BIN_LINK") DEPLOY_CONFIG=$(q "$CONFIG") DEPLOY_STATE_DIR=$(q "$STATE_DIR") DEPLOY_DB=$(q "$DB") sh -c $(q "$cmd")"
            ;;
    esac
}

# Polls the readiness URL on the host (curl, else wget) until it answers 200 or time runs out.
wait_ready() {
    echo "+ [$HOST] wait up to ${READY_TIMEOUT}s for 200 from $READY_URL"
    [ "$DRY_RUN" = 1 ] && return 0
    inspect "end=\$((\$(date +%s) + $READY_TIMEOUT)); url=$(q "$READY_URL")
        while :; do
            if command -v curl >/dev/null 2>&1; then curl -fsS -m 2 -o /dev/null \"\$url\" 2>/dev/null && exit 0
            elif command -v wget >/dev/null 2>&1; then wget -q -T 2 -O /dev/null \"\$url\" 2>/dev/null && exit 0
            else echo 'neither curl nor wget on the host' >&2; exit 2; fi
            [ \$(date +%s) -lt \$end ] || exit 1
            sleep 0.2
        done"
}

if [ "$PREVIOUS" = "$VERSION_FILE" ] && [ "$SERVICE_MANAGER" != none ] && [ "$unit_changed" = 0 ] &&
    [ "$DRY_RUN" = 0 ] && READY_TIMEOUT=0 wait_ready >/dev/null; then
    say "$(basename "$VERSION_FILE") is already current and ready: nothing to do ($(elapsed) s)"
    exit 0
fi

[ -z "$PREVIOUS" ] || say "previous version: $PREVIOUS"
switch_to "$VERSION_FILE"
restart
if [ "$SERVICE_MANAGER" = none ]; then
    say "installed $(basename "$VERSION_FILE"); not restarted, so not checked for readiness ($(elapsed) s)"
    exit 0
fi

if [ "$DRY_RUN" = 1 ]; then
    wait_ready
elif wait_ready; then
    say "deployed $(basename "$VERSION_FILE") to $HOST: ready ($(elapsed) s)"
else
    echo "deploy: $(basename "$VERSION_FILE") did not become ready within ${READY_TIMEOUT}s on $HOST" >&2
    if [ -z "$PREVIOUS" ] || [ "$PREVIOUS" = "$VERSION_FILE" ]; then
        echo "deploy: FAILED: there is no previous version to roll back to" >&2
        exit 3
    fi
    echo "deploy: ROLLING BACK to $PREVIOUS" >&2
    switch_to "$PREVIOUS"
    if ! restore_schema_backup; then
        echo "deploy: FAILED: rolled back to $(basename "$PREVIOUS"), but could not restore $SCHEMA_BACKUP (is the new binary still running?): look at the host" >&2
        exit 3
    fi
    restart
    if wait_ready; then
        echo "deploy: FAILED: rolled back to $(basename "$PREVIOUS"), which is ready again ($(elapsed) s)" >&2
        exit 2
    fi
    echo "deploy: FAILED: rolled back to $(basename "$PREVIOUS"), but it is not ready either: look at the host" >&2
    exit 3
fi

# --- 6. prune old versions (never the current or the previous one) ---------------------------
change "cd $(q "$VERSIONS_DIR") && ls -1t | grep -E '^hookvault-' | grep -v -x -F -e $(q "$(basename "$VERSION_FILE")") -e $(q "$(basename "${PREVIOUS:-none}")") | tail -n +$((KEEP - 1)) | while read -r old; do rm -f -- \"\$old\"; done"
[ "$DRY_RUN" = 0 ] || say "dry run: nothing was changed on $HOST ($(elapsed) s)"
