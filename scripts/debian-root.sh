#!/usr/bin/env bash
# Makes a fresh minimal Debian root at DEST (a directory that must not exist yet), for tests
# that need a root of their own: systemd booted as PID 1 inside it, or a .deb installed into
# it. The first run builds the root with debootstrap from Debian's mirror and caches it as a
# tarball; later runs unpack the cache (a few seconds).
#
#   scripts/debian-root.sh DEST
#
# The root is bookworm, variant minbase, plus systemd, systemd-sysv, dbus and ca-certificates.
# Cache: $AGENTGATE_DEBIAN_CACHE (default /var/cache/agentgate-test). Mirror:
# $AGENTGATE_DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Exit status 77 means "can't here" (not root, no debootstrap, mirror unreachable); the reason
# is on stderr, for the caller to report as a skip.
set -euo pipefail

dest=${1:?usage: debian-root.sh DEST}
cache_dir=${AGENTGATE_DEBIAN_CACHE:-/var/cache/agentgate-test}
mirror=${AGENTGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=systemd,systemd-sysv,dbus,ca-certificates
# The cache's name says what is in it, so a change of suite or packages makes a new one.
cache="$cache_dir/$suite-minbase-$(printf %s "$packages" | sha256sum | cut -c1-12).tar"

skip() { echo "debian-root: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap and chroot)"
[ ! -e "$dest" ] || { echo "debian-root: $dest exists already" >&2; exit 2; }

if [ ! -s "$cache" ]; then
    if ! command -v debootstrap >/dev/null; then
        if command -v apt-get >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
                { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1; } ||
                skip "debootstrap is not installed and apt-get could not install it"
        else
            skip "debootstrap is not installed"
        fi
    fi
    mkdir -p "$cache_dir"
    work=$(mktemp -d "$cache_dir/build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    if ! debootstrap --variant=minbase --include="$packages" "$suite" "$work/root" "$mirror" >"$work/log" 2>&1; then
        tail -5 "$work/log" >&2
        skip "debootstrap from $mirror failed (no network to Debian's mirror?)"
    fi
    rm -rf "$work/root/var/cache/apt/archives/"*.deb
    tar -C "$work/root" --numeric-owner -cf "$work/root.tar" .
    mv "$work/root.tar" "$cache"
    rm -rf "$work"
    trap - EXIT
fi

mkdir -p "$dest"
tar -C "$dest" --numeric-owner -xf "$cache"
