#!/bin/sh
# Installs the Debian packages Walloc builds against, only those missing (idempotent).
#   scripts/install-deps.sh                 build and test packages
#   scripts/install-deps.sh --experiments   also what the compressed-learning experiment reads
#                                           (docs/compressed-learning.md): fonts and wallpapers for
#                                           the text images, espeak-ng and Wesnoth's music for the
#                                           spoken words (not needed by the build or the tests)
set -eu
PACKAGES="pkg-config libssl-dev zlib1g-dev libopenblas-dev libdnnl-dev libpng-dev libjpeg62-turbo-dev libwebp-dev libtiff-dev libsndfile1-dev libavif-dev libjxl-dev libfreetype-dev libopusenc-dev libopusfile-dev libsamplerate0-dev"
EXPERIMENT_PACKAGES="fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf plasma-workspace-wallpapers espeak-ng wesnoth-1.16-music"
if [ "${1:-}" = --experiments ]; then PACKAGES="$PACKAGES $EXPERIMENT_PACKAGES"; fi
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
