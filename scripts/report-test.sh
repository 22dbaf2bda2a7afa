#!/bin/sh
# The visual report in a real browser (not part of make test: it needs Chromium; make report-test).
#
# Writes `walloc eval --html` reports for the bundled sample photo and music excerpt, loads each
# in Debian's headless Chromium, and checks that the page's script drew every crop (the DOM it
# dumps), that the difference view draws too, and that the screenshots are real pictures. The
# screenshots are left in $REPORT_OUT (default: a temporary folder, removed).
set -eu
cd "$(dirname "$0")/.."
WALLOC=${WALLOC:-.build/release/walloc}
[ -x "$WALLOC" ] || { echo "report-test: $WALLOC is missing; run make build" >&2; exit 2; }
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "report-test: installing chromium (Debian)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
    else
        echo "report-test: needs chromium (sudo apt-get install chromium)" >&2; exit 2
    fi
fi
if [ -n "${REPORT_OUT:-}" ]; then OUT=$REPORT_OUT; mkdir -p "$OUT"; else OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT; fi

browser() { # URL, then chromium options
    url=$1; shift
    timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000 "$@" "$url" 2>/dev/null
}

check_page() { # HTML NAME SECTIONS
    html=$(realpath "$1"); name=$2; want=$3
    for view in "" "#diff"; do
        dom=$(browser "file://$html$view" --dump-dom)
        sections=$(printf '%s' "$dom" | grep -o '<section class="file"' | wc -l)
        [ "$sections" -eq "$want" ] || { echo "report-test: $name$view: $sections file sections, expected $want" >&2; exit 1; }
        # Image sections: every crop drawn (data-drawn set by the script equals data-crops).
        bad=$(printf '%s' "$dom" | grep -o '<section class="file" data-w="[0-9]*" data-h="[0-9]*" data-crops="[0-9]*"[^>]*>' \
              | sed -n 's/.*data-crops="\([0-9]*\)".*/\1 &/p' | while read -r crops rest; do
                  case "$rest" in *"data-drawn=\"$crops\""*) ;; *) echo x;; esac; done | wc -l)
        [ "$bad" -eq 0 ] || { echo "report-test: $name$view: $bad image section(s) with crops not drawn" >&2; exit 1; }
        printf '%s' "$dom" | grep -q '<svg' || { echo "report-test: $name: no chart" >&2; exit 1; }
    done
    browser "file://$html" --screenshot="$OUT/$name.png" --window-size=1400,2000 >/dev/null
    size=$(wc -c < "$OUT/$name.png")
    [ "$size" -gt 100000 ] || { echo "report-test: $name: screenshot is only $size bytes" >&2; exit 1; }
    echo "report-test: $name: $want section(s) drawn; screenshot $OUT/$name.png ($size bytes)"
}

"$WALLOC" eval samples/chelsea.png --quiet --force --json "$OUT/image.json" --html "$OUT/image.html" \
    --qualities walloc:20,40,60,80 --qualities jpeg:10,30,60 --qualities webp:10,40,70 --qualities avif:20,40,60 \
    --baselines jpeg,webp,avif >/dev/null
check_page "$OUT/image.html" image 1
"$WALLOC" eval samples/wanderer-excerpt.flac --quiet --force --max-seconds 4 --json "$OUT/audio.json" --html "$OUT/audio.html" \
    --qualities walloc:20,60 --qualities opus:16,32,64 --baselines opus >/dev/null
check_page "$OUT/audio.html" audio 1
echo "report-test: passed"
