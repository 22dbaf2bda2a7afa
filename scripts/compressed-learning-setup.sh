#!/bin/sh
# Debian packages the compressed-learning experiment needs beyond the build's (idempotent):
# fonts and wallpapers for the text images, espeak-ng and Wesnoth's music for the spoken words.
set -eu
PACKAGES="fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf plasma-workspace-wallpapers espeak-ng wesnoth-1.16-music"
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
