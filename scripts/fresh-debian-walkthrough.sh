#!/usr/bin/env bash
# The admin guide's production install (§2.2-2.3), walked on a fresh Debian 12 (bookworm) made
# here with debootstrap, to find where the guide is wrong or silent. Not run in CI (it downloads
# a Debian base system and the suite's Python packages: tens of minutes, ~2 GB).
#
#   sudo scripts/fresh-debian-walkthrough.sh [DIR]     (default DIR: /var/tmp/lgwan-chat-bookworm)
#
# Each step is a command of the guide, run as written inside the new system (chroot). A step that
# fails is reported with its section (✗); when the cause is something the guide does not say to
# do (a missing package or user), the script does it, notes it as a finding, and tries the step
# again, so one run lists every gap. The base system comes from the Debian mirror this machine's
# apt uses. Services are not started (no systemd in a chroot): the walk stops at `deploy check`,
# `nginx -t` and `systemd-analyze verify`. Findings at the end and in DIR/walkthrough.log.
set -uo pipefail

DIR=${1:-/var/tmp/lgwan-chat-bookworm}
REPO=$(cd "$(dirname "$0")/.." && pwd)
LOG=$DIR/walkthrough.log
FINDINGS=()

[ "$(id -u)" -eq 0 ] || { echo "root が必要です / run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }
mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | awk '{print $2}' | grep -m1 debian)
mirror=${mirror:-http://deb.debian.org/debian}

if [ ! -e "$DIR/etc/debian_version" ]; then
    echo "debootstrap bookworm → $DIR ($mirror)"
    debootstrap --variant=minbase bookworm "$DIR" "$mirror" >"$DIR.debootstrap.log" 2>&1 \
        || { echo "debootstrap failed: $DIR.debootstrap.log" >&2; exit 1; }
fi
: >"$LOG"

mounted=()
mount_in() { mkdir -p "$DIR$2"; mount --bind "$1" "$DIR$2" && mounted+=("$DIR$2"); }
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[i]}"; done; }
trap cleanup EXIT
mount_in /proc /proc
mount_in /sys /sys
mount_in /dev /dev
# The checkout as a bundle (a worktree's .git points outside it): what `git clone` gets from a server.
mkdir -p "$DIR/mnt/lgwan-chat-source"
git -C "$REPO" bundle create "$DIR/mnt/lgwan-chat-source/lgwan-chat.bundle" HEAD >>"$LOG" 2>&1
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
# This machine's way to the package registries (its CA bundle and pip settings), not the guide's:
# the new system reaches PyPI as the host does.
host_env=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
    cp "$PIP_CERT" "$DIR/etc/ssl/host-ca-bundle.pem"
    host_env=(PIP_CERT=/etc/ssl/host-ca-bundle.pem REQUESTS_CA_BUNDLE=/etc/ssl/host-ca-bundle.pem)
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$DIR/etc/pip.conf"

inside() { chroot "$DIR" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
           LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${host_env[@]}" /bin/bash -c "$1"; }

# step SECTION DESCRIPTION COMMAND [FIX FINDING]
step() {
    local section=$1 what=$2 command=$3 fix=${4:-} finding=${5:-}
    echo "== §$section $what: $command" >>"$LOG"
    if inside "$command" >>"$LOG" 2>&1; then echo "✓ §$section $what"; return 0; fi
    if [ -n "$fix" ]; then
        FINDINGS+=("§$section: $finding")
        echo "✗ §$section $what — $finding (walkthrough: $fix)"
        echo "== fix: $fix" >>"$LOG"
        inside "$fix" >>"$LOG" 2>&1
        if inside "$command" >>"$LOG" 2>&1; then echo "✓ §$section $what (after the fix)"; return 0; fi
    fi
    FINDINGS+=("§$section: '$command' fails (see $LOG)")
    echo "✗ §$section $what: fails, see $LOG"
    return 1
}

apt_install="apt-get update -qq && apt-get install -y -qq --no-install-recommends"
# §2.2 Install: the guide's commands as written.
step 2.2 "git clone" "rm -rf /opt/lgwan-chat && git clone -q /mnt/lgwan-chat-source/lgwan-chat.bundle /opt/lgwan-chat" \
    "$apt_install git ca-certificates" "the guide does not say to install git (a fresh Debian has none)"
step 2.2 "make venv" "cd /opt/lgwan-chat && make venv" \
    "$apt_install make python3-venv python3-dev gcc libpq-dev" \
    "the guide does not say to install make and python3-venv (Debian's python3 has no venv without it)"
step 2.2 "install-system-deps" "cd /opt/lgwan-chat && sudo bash scripts/install-system-deps.sh" \
    "$apt_install sudo" "sudo is not on a fresh Debian (say: run as root, or install sudo)"
step 2.4 "PostgreSQL and Redis" "command -v psql && command -v redis-server" \
    "$apt_install postgresql redis-server" \
    "install-system-deps.sh does not install PostgreSQL or Redis; §2.3's answers need them (workers)"
# §2.3 deploy init, as the guide's block says.
step 2.3 "service user" "id lgwan-chat" \
    "useradd --system --home-dir /srv/lgwan-chat --shell /usr/sbin/nologin lgwan-chat" \
    "the guide runs commands as the lgwan-chat user but never creates it (useradd --system)"
step 2.3 "directories" "install -d -o lgwan-chat -g lgwan-chat -m 0700 /srv/lgwan-chat && install -d -m 0755 /var/cache/nginx/lgwan-chat"
step 2.3 "venv readable by the service user" "sudo -u lgwan-chat /opt/lgwan-chat/.venv/bin/lgwan-chat --help >/dev/null" \
    "chmod o+rx /opt /opt/lgwan-chat" "the checkout must be readable by lgwan-chat (not under /root)"

# The answers: the documented example with a self-signed certificate and the example's paths.
inside "mkdir -p /etc/ssl/lgwan-chat /etc/lgwan-chat && cd /etc/ssl/lgwan-chat && for z in internet lgwan; do \
  [ -e \$z.crt ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout \$z.key -out \$z.crt -days 30 -subj /CN=\$z >/dev/null 2>&1; done; \
  chown lgwan-chat /etc/ssl/lgwan-chat/*.key; echo secret > /etc/lgwan-chat/postgres.password; \
  chown lgwan-chat /etc/lgwan-chat/postgres.password; chmod 0600 /etc/lgwan-chat/postgres.password; \
  cp /opt/lgwan-chat/config/organisation.yaml /etc/lgwan-chat/organisation.yaml; \
  cp /opt/lgwan-chat/config/deploy-answers.example.yaml /tmp/answers.yaml; chmod 0644 /tmp/answers.yaml" >>"$LOG" 2>&1
step 2.3 "deploy init --dry-run" "cd /opt/lgwan-chat && sudo -u lgwan-chat .venv/bin/lgwan-chat deploy init /tmp/answers.yaml /srv/lgwan-chat --dry-run"
step 2.3 "deploy init" "cd /opt/lgwan-chat && sudo -u lgwan-chat .venv/bin/lgwan-chat deploy init /tmp/answers.yaml /srv/lgwan-chat"
step 2.3 "deploy check" "cd /opt/lgwan-chat && sudo -u lgwan-chat .venv/bin/lgwan-chat deploy check /srv/lgwan-chat"
step 2.3 "nginx site" "ln -sf /srv/lgwan-chat/nginx/lgwan-chat-sites.conf /etc/nginx/conf.d/lgwan-chat.conf && nginx -t" \
    "chmod o+x /srv/lgwan-chat /srv/lgwan-chat/nginx && chmod o+r /srv/lgwan-chat/nginx/lgwan-chat-sites.conf" \
    "nginx (root, then www-data) must read the sites file in the 0700 OUTDIR: the guide's symlink alone is not enough if nginx -t runs as another user"
step 2.3 "systemd units" "cp /srv/lgwan-chat/systemd/* /etc/systemd/system/ && cp /srv/lgwan-chat/logrotate/lgwan-chat /etc/logrotate.d/ \
    && systemd-analyze verify --man=no /etc/systemd/system/lgwan-chat-synapse.service /etc/systemd/system/lgwan-chat.target" \
    "$apt_install systemd logrotate" "systemd-analyze / logrotate missing in a minimal system"

echo
if [ ${#FINDINGS[@]} -eq 0 ]; then
    echo "ガイドどおりに最後まで進みました / the guide's steps went through as written"
else
    echo "ガイドの問題 / where the guide is wrong or silent:"
    printf '  - %s\n' "${FINDINGS[@]}"
fi
echo "log: $LOG"
