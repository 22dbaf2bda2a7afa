#!/bin/sh
# Gathers the music for the default stereo model into data/audio/{train,heldout,test}: Ogg Vorbis
# soundtracks (44.1 kHz stereo) from Debian's wesnoth-1.16-music (orchestral), hedgewars-data
# (pop, rock, ambient) and supertux-data (chiptune, electronic, rap), plus extremetuxracer-data
# for the test set only. The packages are downloaded and unpacked into data/cache (nothing is
# installed; apt-get download needs no root). Idempotent.
#   train:   every track not listed below
#   heldout: validation during training and tuning (never trained on)
#   test:    never trained or tuned on; the model card's figures (`walloc eval --max-seconds 10`
#            measures the middle 10 seconds of each track)
set -eu
cd "$(dirname "$0")/.."
OUT=data/audio
CACHE=data/cache/debs
HELDOUT="wesnoth-heroes_rite wesnoth-knolls wesnoth-the_deep_path wesnoth-wanderer hedgewars-Brick hedgewars-Desert supertux-airship_remix supertux-theme"
TEST="hedgewars-Castle hedgewars-Jungle supertux-chipdisko supertux-tux_rap supertux-salcon etr-race1-jt etr-freezingpoint etr-spunkyrace-ks"
# Skipped: near-silent (level normalisation would only amplify noise), too short, or 48 kHz.
SKIP="wesnoth-silence hedgewars-sdmusic supertux-credits supertux-cave_old"
mkdir -p "$OUT/train" "$OUT/heldout" "$OUT/test" "$CACHE"
. scripts/unpack-deb.sh
place() {  # prefix file
    name="$1-$(basename "$2" .ogg)"
    case " $SKIP " in *" $name "*) return 0 ;; esac
    dest=train
    case " $HELDOUT " in *" $name "*) dest=heldout ;; esac
    case " $TEST " in *" $name "*) dest=test ;; esac
    [ "$1" = etr ] && [ "$dest" = train ] && return 0
    ln -sf "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")" "$OUT/$dest/$name.ogg"
}
for p in wesnoth-1.16-music hedgewars-data supertux-data extremetuxracer-data; do unpack $p; done
for f in "$CACHE"/wesnoth-1.16-music/usr/share/games/wesnoth/1.16/data/core/music/*.ogg; do place wesnoth "$f"; done
for f in "$CACHE"/hedgewars-data/usr/share/games/hedgewars/Data/Music/*.ogg; do place hedgewars "$f"; done
for f in $(find "$CACHE"/supertux-data -path '*music*' -name '*.ogg' -size +500k | sort); do place supertux "$f"; done
for f in "$CACHE"/extremetuxracer-data/usr/share/games/etr/music/*.ogg; do place etr "$f"; done
echo "$(ls $OUT/train | wc -l) training, $(ls $OUT/heldout | wc -l) held-out and $(ls $OUT/test | wc -l) test tracks in $OUT"
