#!/usr/bin/env bash
# Installs the Debian packages the suite needs, when run as root; otherwise
# lists what is missing. Idempotent: does nothing when everything is there.
set -euo pipefail

# libmagic1: python-magic (file type by content). Later issues add nginx,
# poppler-utils, libreoffice, bubblewrap, fonts-noto-cjk here.
PACKAGES=(libmagic1)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "Installing system packages / システムパッケージを導入します: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "Missing system packages (run as root, or: sudo apt-get install ${missing[*]})" >&2
    echo "不足しているシステムパッケージ: ${missing[*]}（root で実行するか sudo apt-get install してください）" >&2
    exit 1
fi
