#!/bin/sh
# Gathers the training and held-out photographs for the default RGB model into data/images/:
# Debian's plasma-workspace-wallpapers (the largest image of each wallpaper) and the photographs
# bundled in the scikit-image wheel (PyPI). Idempotent; needs apt-get (or the package installed)
# and pip (only to download the wheel; nothing is installed).
set -eu
cd "$(dirname "$0")/.."
OUT=data/images
HELDOUT_WALLPAPERS="Path Kite FallenLeaf"
HELDOUT_SKIMAGE="astronaut coffee chelsea rocket motorcycle_left"
if [ ! -d /usr/share/wallpapers/Kite ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y -qq --no-install-recommends plasma-workspace-wallpapers
fi
mkdir -p "$OUT/train" "$OUT/heldout" data/cache
for d in /usr/share/wallpapers/*/contents/images; do
    name=$(basename "$(dirname "$(dirname "$d")")")
    file=$(ls -S "$d"/* | head -n 1)
    ext=${file##*.}
    dest=train
    for h in $HELDOUT_WALLPAPERS; do [ "$h" = "$name" ] && dest=heldout; done
    ln -sf "$file" "$OUT/$dest/wallpaper-$name.$ext"
done
if [ ! -d data/cache/skimage ]; then
    pip download --no-deps --only-binary=:all: -d data/cache "scikit-image==0.26.0" -q
    mkdir -p data/cache/skimage
    python3 -m zipfile -e data/cache/scikit_image-0.26.0-*.whl data/cache/skimage-wheel
    mv data/cache/skimage-wheel/skimage/data/* data/cache/skimage/
    rm -rf data/cache/skimage-wheel
fi
# Photographs (and photo-like scientific images) of at least 256 px; not synthetic test patterns.
for name in astronaut brick camera cell chelsea coffee coins grass gravel hubble_deep_field ihc \
            microaneurysms moon motorcycle_left motorcycle_right retina rocket; do
    file=$(ls data/cache/skimage/$name.* 2>/dev/null | head -n 1) || true
    [ -n "$file" ] || continue
    dest=train
    for h in $HELDOUT_SKIMAGE; do [ "$h" = "$name" ] && dest=heldout; done
    ln -sf "$(pwd)/$file" "$OUT/$dest/skimage-$(basename "$file")"
done
echo "$(ls $OUT/train | wc -l) training and $(ls $OUT/heldout | wc -l) held-out images in $OUT"
