# Sourced by the prepare-*-data.sh scripts (after `cd` to the repository root, with CACHE set).
# unpack PACKAGE: downloads a Debian package and unpacks it into $CACHE/PACKAGE/ (nothing is
# installed; apt-get download needs no root). Idempotent.
unpack() {
    [ -d "$CACHE/$1" ] && return 0
    (cd "$CACHE" && apt-get download -q "$1" >/dev/null 2>&1) || { echo "error: apt-get download $1 failed" >&2; exit 1; }
    mkdir -p "$CACHE/$1.tmp" && dpkg-deb -x "$CACHE/$1"_*.deb "$CACHE/$1.tmp" && mv "$CACHE/$1.tmp" "$CACHE/$1"
    rm -f "$CACHE/$1"_*.deb
}
