#!/usr/bin/env bash
# Installs the Debian packages the suite needs (and, with the argument "test", what the
# tests need), when run as root; otherwise lists what is missing. Idempotent.
set -euo pipefail

# package:command-or-library-it-provides (nothing after the colon: the package is checked with dpkg)
#   libmagic1   python-magic (file type by content)
#   coturn      the TURN server that relays voice/video call media (internet side; `make demo`
#               starts it on loopback, the call tests use it)
#   nginx-light the reverse proxy with auth_request, for the LGWAN media download gate
#               (any nginx with auth_request will do: the check looks for the command)
#   bubblewrap, poppler-utils, qpdf, LibreOffice (no GUI) + python3-uno, fonts-noto-cjk:
#               the sanitizer bot's renderers, jailed by bubblewrap; without the CJK fonts
#               Japanese documents would render as empty boxes
#   tesseract-ocr + -jpn + -jpn-vert: OCR of scanned pages for the invisible text layer of sanitized
#               PDFs (jpn_vert reads vertical Japanese); without them scans stay image-only
#   chromium    renders `lgwan-chat records export --format pdf` (HTML to PDF, Japanese in
#               fonts-noto-cjk); the tests also drive the sticker picker page with it
NEEDS=(chromium:chromium libmagic1:libmagic.so.1 nginx-light:nginx coturn:turnserver bubblewrap:bwrap poppler-utils:pdftoppm qpdf:qpdf
       libreoffice-core-nogui:soffice libreoffice-writer-nogui:/usr/lib/libreoffice/program/libswlo.so
       libreoffice-calc-nogui:/usr/lib/libreoffice/program/libsclo.so
       libreoffice-impress-nogui:/usr/lib/libreoffice/program/libsdlo.so
       python3-uno:/usr/lib/python3/dist-packages/uno.py
       fonts-noto-cjk:/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
       tesseract-ocr:tesseract tesseract-ocr-jpn:/usr/share/tesseract-ocr/5/tessdata/jpn.traineddata
       tesseract-ocr-jpn-vert:/usr/share/tesseract-ocr/5/tessdata/jpn_vert.traineddata)
# With "test": what the tests need besides: node and npm
# run the interop tests with Element's own libraries (tests/interop, installed by `npm ci`);
# prometheus brings promtool, which checks config/prometheus/lgwan-chat.rules.yml (tests/test_metrics.py).
if [ "${1:-}" = "test" ]; then
    NEEDS+=(nodejs:node npm:npm prometheus:promtool
            systemd:systemd-analyze logrotate:logrotate)
fi
# With "production" (make production, admin guide §2.2): what a production host needs besides.
#   make, python3-venv          make production builds .venv (Debian's python3 has no venv without it)
#   python3-dev, gcc, libpq-dev psycopg2, Synapse's PostgreSQL driver, is built from source by pip
#   postgresql, redis-server    the database and the workers' replication (started by the packages)
#   procps                      /bin/kill, which the generated units' ExecReload runs
#   logrotate                   runs the generated /etc/logrotate.d/lgwan-chat
if [ "${1:-}" = "production" ]; then
    NEEDS+=(make:make python3-venv: python3-dev:python3-config gcc:gcc libpq-dev:pg_config
            postgresql: redis-server:redis-server procps:/bin/kill logrotate:logrotate)
fi
# With "screenshots" (make screenshots): Nheko, a Matrix client Debian packages, on a virtual screen.
if [ "${1:-}" = "screenshots" ]; then
    NEEDS+=(nheko:nheko xvfb:Xvfb xdotool:xdotool imagemagick:import
            fonts-noto-color-emoji:/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf)
fi

missing=()
for need in "${NEEDS[@]}"; do
    pkg=${need%%:*} probe=${need#*:}
    if [ -z "$probe" ]; then  # no command or file tells: the package itself
        [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
    elif [[ $probe == /* ]]; then
        [ -e "$probe" ] || missing+=("$pkg")
    elif [[ $probe == *.so* ]]; then
        ldconfig -p 2>/dev/null | grep -q "$probe" || missing+=("$pkg")
    else
        command -v "$probe" >/dev/null || [ -x "/usr/sbin/$probe" ] || missing+=("$pkg")
    fi
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
