#!/usr/bin/env bash
# The admin guide's production install (§2.2-2.3) on a fresh Debian 12 (bookworm) made here with
# debootstrap: the guide's own commands, read out of docs/admin-guide.ja.md (the ```sh blocks
# marked `<!-- fresh-debian: NAME -->`) and run as written, as root, inside the new system
# (chroot). Not run in CI: it downloads a Debian system, the suite's Debian packages and its
# Python packages (about 20 minutes and 3 GB the first time).
#
#   sudo scripts/fresh-debian-walkthrough.sh [DIR]      (default DIR: /var/tmp/lgwan-chat-bookworm)
#   scripts/fresh-debian-walkthrough.sh --list          the guide's blocks it runs, in order
#   scripts/fresh-debian-walkthrough.sh --print NAME    the commands it runs for one block
#                                                         (tests/test_docs_examples.py compares them with the guides)
#
# Each block runs as one shell script (`set -e`); a block that fails is a finding, with the
# command that failed, and the walk goes on with the next. Between blocks the script does only what
# the guide leaves to the machine or to the person: PostgreSQL running after its package is
# installed (systemd does it on a booted machine; here it listens on its Unix socket only, so
# nothing in the chroot takes a port of this machine), and the TLS certificates the person brings
# (self-signed here) and the addresses the entrances listen on (free loopback ports here: the
# example's addresses are not this machine's); otherwise the answers and organisation files stay
# the examples the guide copies. No service is started (no systemd in a chroot: a stand-in
# `systemctl` enables and disables units and only logs starting and reloading); after the guide
# the walk checks what starting would need: the units (`systemd-analyze verify`), the service
# user's Python with Synapse's PostgreSQL and Redis drivers, the logrotate file.
# The Debian base is made once (DIR/base) and copied afresh for every walk (DIR/root); the
# downloaded Debian and Python packages are cached in DIR/cache. Log: DIR/walkthrough.log.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
GUIDE=$REPO/docs/admin-guide.ja.md
BLOCKS=(install config deploy)

# guide_block NAME: the ```sh block that follows `<!-- fresh-debian: NAME -->` in the guide.
guide_block() {
    awk -v marker="<!-- fresh-debian: $1 -->" '
        $0 == marker { armed = 1; next }
        armed && $0 == "```sh" { inside = 1; armed = 0; next }
        inside && $0 == "```" { exit }
        inside { print }' "$GUIDE"
}

case "${1:-}" in
    --list) printf '%s\n' "${BLOCKS[@]}"; exit 0 ;;
    --print) guide_block "$2"; exit 0 ;;
esac

DIR=${1:-/var/tmp/lgwan-chat-bookworm}
BASE=$DIR/base ROOT=$DIR/root LOG=$DIR/walkthrough.log
FINDINGS=()
host_env=()

[ "$(id -u)" -eq 0 ] || { echo "root が必要です / run as root" >&2; exit 2; }
for name in "${BLOCKS[@]}"; do
    [ -n "$(guide_block "$name")" ] || { echo "guide has no block '$name' ($GUIDE)" >&2; exit 2; }
done
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }
mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | awk '{print $2}' | grep -m1 debian)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$DIR/cache/apt/partial" "$DIR/cache/pip"
: >"$LOG"

# The default variant: what Debian's installer gives without a desktop (required and important).
if [ ! -e "$BASE/etc/debian_version" ]; then
    echo "debootstrap bookworm → $BASE ($mirror)"
    rm -rf "$BASE"
    debootstrap bookworm "$BASE" "$mirror" >"$DIR/debootstrap.log" 2>&1 \
        || { echo "debootstrap failed: $DIR/debootstrap.log" >&2; exit 1; }
fi
# Never remove a tree something is still mounted in (a /dev bound there is this machine's /dev).
if awk -v root="$ROOT/" 'index($5, root) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "$ROOT still has mounts (an earlier walk did not end): unmount them first" >&2; exit 2
fi
rm -rf --one-file-system "$ROOT"
cp -a "$BASE" "$ROOT"

mounted=()
# /dev with /dev/shm and /dev/pts; private, so unmounting them here never reaches this machine's own
mount_in() { mkdir -p "$ROOT$2"; mount --rbind "$1" "$ROOT$2" && mount --make-rprivate "$ROOT$2" && mounted+=("$ROOT$2"); }
inside() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
           LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${host_env[@]}" /bin/bash -c "$1"; }
cleanup() {
    inside 'for c in /etc/postgresql/*/main; do [ -d "$c" ] && pg_ctlcluster --force "$(basename "$(dirname "$c")")" main stop; done' \
        >>"$LOG" 2>&1
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # unmount on Ctrl-C and kill too
mount_in /proc /proc
mount_in /sys /sys
mount_in /dev /dev
mount_in "$DIR/cache/apt" /var/cache/apt/archives
mount_in "$DIR/cache/pip" /root/.cache/pip
# The checkout's last commit as a bundle (a worktree's .git points outside it): what `git clone` gets.
mkdir -p "$ROOT/mnt/lgwan-chat-source"
git -C "$REPO" bundle create "$ROOT/mnt/lgwan-chat-source/lgwan-chat.bundle" HEAD >>"$LOG" 2>&1
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No package starts its service in the chroot (they would take this machine's ports).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
# systemd does not run in a chroot: unit files are enabled and disabled for real (offline), starting,
# stopping and reloading is logged and skipped (the units are checked after the guide instead).
cat >"$ROOT/usr/local/sbin/systemctl" <<'SHIM'
#!/bin/sh
for a; do case $a in enable|disable|mask|unmask|is-enabled) offline=1 ;; esac; done
if [ -n "${offline:-}" ]; then
    for a; do shift; [ "$a" = --now ] || set -- "$@" "$a"; done
    exec /usr/bin/systemctl "$@"
fi
echo "walkthrough: no systemd in the chroot, not run: systemctl $*" >&2
SHIM
chmod 0755 "$ROOT/usr/local/sbin/systemctl"
# This machine's way to the package registries (its CA bundle and pip settings), not the guide's.
host_env+=(LGWAN_CHAT_REPO=/mnt/lgwan-chat-source/lgwan-chat.bundle)
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
    mkdir -p "$ROOT/etc/ssl" && cp "$PIP_CERT" "$ROOT/etc/ssl/host-ca-bundle.pem"
    host_env+=(PIP_CERT=/etc/ssl/host-ca-bundle.pem REQUESTS_CA_BUNDLE=/etc/ssl/host-ca-bundle.pem)
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"

# run_block NAME: the guide's block as one script, from root's home; the command that failed is logged.
run_block() {
    local name=$1 started=$SECONDS
    echo "== guide block '$name'" >>"$LOG"
    guide_block "$name" >>"$LOG"
    echo "-- output" >>"$LOG"
    if inside "cd /root && set -eE -o pipefail && trap 'echo \"FAILED: \$BASH_COMMAND\" >&2' ERR
$(guide_block "$name")" >>"$LOG" 2>&1; then
        echo "✓ block '$name' ($((SECONDS - started)) s)"
    else
        local failed
        failed=$(grep '^FAILED: ' "$LOG" | tail -1)
        FINDINGS+=("block '$name': ${failed:-fails} (see $LOG)")
        echo "✗ block '$name': ${failed:-fails}"
    fi
}

# check WHAT COMMAND: the walk's own check after the guide (not a command of the guide).
check() {
    echo "== check: $1: $2" >>"$LOG"
    if inside "$2" >>"$LOG" 2>&1; then echo "✓ $1"; else FINDINGS+=("$1 (see $LOG)"); echo "✗ $1"; fi
}

run_block install
# What systemd does on a booted machine once the package is in: the cluster runs (socket only).
for conf in "$ROOT"/etc/postgresql/*/main/conf.d; do echo "listen_addresses = ''" >"$conf/walkthrough-socket-only.conf"; done
inside 'for c in /etc/postgresql/*/main; do pg_ctlcluster "$(basename "$(dirname "$c")")" main start; done' >>"$LOG" 2>&1
run_block config
# What the person brings: the two entrances' certificates where the example answers say, and
# addresses of this machine for them to listen on (`nginx -t` binds them; the example's are not here).
read -r port_internet port_lgwan < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
sed -i "s/^\(  listen: \)203\.0\.113\.10:443/\1127.0.0.1:$port_internet/; s/^\(  listen: \)10\.20\.30\.40:443/\1127.0.0.1:$port_lgwan/" \
    "$ROOT/etc/lgwan-chat/answers.yaml"
inside 'install -d -m 0755 /etc/ssl/lgwan-chat && cd /etc/ssl/lgwan-chat && for zone in internet lgwan; do
          (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -keyout $zone.key -out $zone.crt -days 30 \
           -subj /CN=chat-$zone.example 2>/dev/null); chmod 0644 $zone.crt; done' >>"$LOG" 2>&1
run_block deploy

check "units verify (systemd-analyze)" \
    "cd /etc/systemd/system && systemd-analyze verify --man=no lgwan-chat-synapse.service lgwan-chat.target lgwan-chat-bot-*.service lgwan-chat-coturn.service"
check "the service user's Python has Synapse with its PostgreSQL and Redis drivers" \
    "cd /srv/lgwan-chat && sudo -u lgwan-chat /opt/lgwan-chat/.venv/bin/python -c 'import synapse.app.homeserver, psycopg2, txredisapi, hiredis'"
check "logrotate reads the installed file" "logrotate --debug /etc/logrotate.d/lgwan-chat"
check "database synapse is UTF8 with collation C, owned by synapse" \
    "sudo -u postgres psql -tAc \"SELECT pg_encoding_to_char(encoding), datcollate, pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'synapse'\" | grep -qx 'UTF8|C|synapse'"

echo
if [ ${#FINDINGS[@]} -eq 0 ]; then
    echo "$(date -u +%F) ガイドどおりに最後まで進みました / the guide's steps went through as written (0 findings)"
    exit 0
fi
echo "$(date -u +%F) ガイドの問題 / where the guide is wrong or silent (${#FINDINGS[@]} findings):"
printf '  - %s\n' "${FINDINGS[@]}"
echo "log: $LOG"
exit 1
