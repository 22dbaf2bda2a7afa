#!/bin/sh
# Installs the Debian packages Walloc builds against, only those missing (idempotent).
set -eu
PACKAGES="pkg-config libssl-dev zlib1g-dev libopenblas-dev libpng-dev libjpeg62-turbo-dev libwebp-dev libtiff-dev libsndfile1-dev libavif-dev libjxl-dev libfreetype-dev"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "Installing Debian packages:$missing"
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
        echo "error: missing packages:$missing (run as root or install them with apt-get)" >&2; exit 1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
command -v swift >/dev/null || { echo "error: swift not found on PATH (Swift 6.1 or later needed: https://swift.org/install)" >&2; exit 1; }
