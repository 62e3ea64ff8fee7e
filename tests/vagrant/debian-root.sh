# shellcheck shell=bash
# Sourced by the fresh-root tests: a minimal Debian root, made once with debootstrap and cached
# as a tarball, unpacked fresh for every run so each test starts from nothing.
# Environment: MINIBOX_VM_CACHE (default /var/cache/minibox-vm).

DEBIAN_ROOT_CACHE=${MINIBOX_VM_CACHE:-/var/cache/minibox-vm}
DEBIAN_ROOT_SUITE=bookworm

# fresh_debian_root DIR: DIR becomes a new, untouched Debian $DEBIAN_ROOT_SUITE minbase root.
fresh_debian_root() {
    local root=$1
    local base="$DEBIAN_ROOT_CACHE/debootstrap-$DEBIAN_ROOT_SUITE-minbase.tar"
    if [ ! -f "$base" ]; then
        echo "fresh-root: making the cached Debian $DEBIAN_ROOT_SUITE root (once, a few minutes)" >&2
        mkdir -p "$DEBIAN_ROOT_CACHE"
        local tmp
        tmp=$(mktemp -d /tmp/minibox-debootstrap-XXXXXX)
        debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_ROOT_SUITE" "$tmp" \
            http://deb.debian.org/debian >&2
        tar -C "$tmp" -cf "$base.tmp" .
        mv "$base.tmp" "$base"
        rm -rf --one-file-system "$tmp"
    fi
    mkdir -p "$root"
    tar -C "$root" -xf "$base"
}

# enter_debian_root DIR: inside a private mount namespace (`unshare --mount`), make DIR look like
# a booted machine's root (its own mount point, /proc, /sys, /dev, an empty /run); then
# `in_root CMD...` runs CMD chrooted there with a clean environment.
enter_debian_root() {
    DEBIAN_ROOT=$1
    mount --bind "$DEBIAN_ROOT" "$DEBIAN_ROOT"
    mount -t proc proc "$DEBIAN_ROOT/proc"
    mount --rbind /sys "$DEBIAN_ROOT/sys"
    mount --rbind /dev "$DEBIAN_ROOT/dev"
    mount -t tmpfs tmpfs "$DEBIAN_ROOT/run"
}

in_root() {
    chroot "$DEBIAN_ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 "$@"
}
