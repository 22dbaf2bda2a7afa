#!/bin/sh
# Gathers the photographs for the default RGB model into data/images/{train,heldout,test}:
#   train:   Debian's plasma-workspace-wallpapers (the largest image of each wallpaper) and
#            mate-backgrounds' nature photographs, plus the photographs bundled in the
#            scikit-image wheel (PyPI)
#   heldout: validation while training and tuning (never trained on)
#   test:    12 photographs from lomiri-wallpapers-16.04 and lomiri-wallpapers-20.04, never
#            trained or tuned on: the model card's figures
# Debian packages are downloaded and unpacked into data/cache (nothing is installed; apt-get
# download needs no root); pip only downloads the wheel. Idempotent.
set -eu
cd "$(dirname "$0")/.."
OUT=data/images
CACHE=data/cache/debs
HELDOUT_WALLPAPERS="Path Kite FallenLeaf"
HELDOUT_SKIMAGE="astronaut coffee chelsea rocket motorcycle_left"
TEST_LOMIRI="Bridge_by_Sander_Klootwijk Dragonfly_by_Bolly Picture_0B_by_freespace Picture_1A_by_freespace Wine_by_Jakkub_Mede aitzgorri_by_Aitzol_Berasategi friends_by_Aitzol_Berasategi life_by_Aitzol_Berasategi picosdeeuropa_by_Aitzol_Berasategi seeding_by_Clements_Engelhardt sunset_by_Aitzol_Berasategi Kleiber_by_Lukas_Baubkus"
mkdir -p "$OUT/train" "$OUT/heldout" "$OUT/test" "$CACHE"
. scripts/unpack-deb.sh
for p in plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04; do unpack $p; done
for d in "$CACHE"/plasma-workspace-wallpapers/usr/share/wallpapers/*/contents/images; do
    name=$(basename "$(dirname "$(dirname "$d")")")
    file=$(ls -S "$d"/* | head -n 1)
    ext=${file##*.}
    dest=train
    for h in $HELDOUT_WALLPAPERS; do [ "$h" = "$name" ] && dest=heldout; done
    ln -sf "$(pwd)/$file" "$OUT/$dest/wallpaper-$name.$ext"
done
for file in "$CACHE"/mate-backgrounds/usr/share/backgrounds/mate/nature/*.jpg; do
    ln -sf "$(pwd)/$file" "$OUT/train/mate-$(basename "$file")"
done
for name in $TEST_LOMIRI; do
    file=$(ls "$CACHE"/lomiri-wallpapers-*/usr/share/backgrounds/$name.jpg | head -n 1)
    ln -sf "$(pwd)/$file" "$OUT/test/lomiri-$name.jpg"
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
echo "$(ls $OUT/train | wc -l) training, $(ls $OUT/heldout | wc -l) held-out and $(ls $OUT/test | wc -l) test images in $OUT"
