#!/bin/sh
# Gathers the training and held-out music for the default stereo model into data/audio/:
# Debian's wesnoth-1.16-music (OGG/Vorbis, 44.1 kHz stereo). Idempotent; needs apt-get (or the
# package installed).
set -eu
cd "$(dirname "$0")/.."
OUT=data/audio
MUSIC=/usr/share/games/wesnoth/1.16/data/core/music
HELDOUT="heroes_rite knolls the_deep_path wanderer"
SKIP="silence"   # near-silent: level normalisation would only amplify noise
if [ ! -d "$MUSIC" ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y -qq --no-install-recommends wesnoth-1.16-music
fi
mkdir -p "$OUT/train" "$OUT/heldout"
for file in "$MUSIC"/*.ogg; do
    name=$(basename "$file" .ogg)
    case " $SKIP " in *" $name "*) continue ;; esac
    dest=train
    case " $HELDOUT " in *" $name "*) dest=heldout ;; esac
    ln -sf "$file" "$OUT/$dest/$name.ogg"
done
echo "$(ls $OUT/train | wc -l) training and $(ls $OUT/heldout | wc -l) held-out tracks in $OUT"
