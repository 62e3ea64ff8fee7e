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
