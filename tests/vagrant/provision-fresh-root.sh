#!/usr/bin/env bash
# Run vagrant/provision.sh for real on a fresh Debian root (debootstrap), twice, then start a
# container there: the learner's VM path, tested without a VM (this machine has no nested KVM).
#
#   tests/vagrant/provision-fresh-root.sh        (as root)
#
# The minimal Debian root is made once with debootstrap and cached as a tarball; every run
# unpacks a fresh copy, so provisioning always starts from nothing. Downloaded .deb files and pip
# wheels are shared with the host's caches to keep the second and later runs quick. The
# repository is mounted read-only inside: provisioning must not write into it.
# Environment: MINIBOX_VM_CACHE (/var/cache/minibox-vm), MINIBOX_PROVISION_KEEP=1 (keep the root).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=tests/vagrant/debian-root.sh
. "$REPO/tests/vagrant/debian-root.sh"
WORK=$(mktemp -d /tmp/minibox-provision-XXXXXX)
ROOT="$WORK/root"

log() { echo "provision-test: $*" >&2; }
cleanup() {
    if [ "${MINIBOX_PROVISION_KEEP:-0}" != 1 ]; then
        rm -rf --one-file-system "$WORK"
    else
        log "kept $WORK"
    fi
}
trap cleanup EXIT

fresh_debian_root "$ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mkdir -p "$ROOT/repo" /var/cache/apt/archives/partial /root/.cache/pip "$ROOT/root/.cache/pip"

# Everything below runs in a private mount namespace: the mounts vanish with it, even on failure.
unshare --mount --propagation private bash -euo pipefail -s "$ROOT" "$REPO" "$(basename "$WORK")" <<'INSIDE'
ROOT=$1
REPO=$2
PREFIX=$3  # minibox-provision-XXXXXX: the cgroups of this run's container carry it (the host's kernel)
# The root is a mount point of its own, as a VM's root is (mount propagation and pivot_root
# inside need that).
mount --bind "$ROOT" "$ROOT"
mount --bind "$REPO" "$ROOT/repo"
mount -o remount,bind,ro "$ROOT/repo"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --bind /var/cache/apt/archives "$ROOT/var/cache/apt/archives"
mount --bind /root/.cache/pip "$ROOT/root/.cache/pip"
# This machine's trust store: package registries may sit behind a TLS proxy with a local CA.
mount --bind /etc/ssl/certs "$ROOT/etc/ssl/certs"
mount -o remount,bind,ro "$ROOT/etc/ssl/certs"
mount -t tmpfs tmpfs "$ROOT/run"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$@"; }
# A minimal root has no `make` yet: provision.sh installs it, as on a bare VM image.
echo "== first provisioning =="
in_root /repo/vagrant/provision.sh /repo
echo "== second provisioning =="
second=$(in_root /repo/vagrant/provision.sh /repo 2>&1)
printf '%s\n' "$second"
if grep -q '^installing:' <<<"$second"; then
    echo "provision-test: the second run installed packages again: not idempotent" >&2
    exit 1
fi
echo "== a container in the provisioned root =="
in_root MINIBOX_PREFIX="$PREFIX" /usr/local/bin/minibox run --rm busybox sh -c 'echo container-ok; cat /proc/self/cgroup | head -1'
# its cgroup went with it; minibox's own group (the prefix) stays until gc, as docker's does
in_root MINIBOX_PREFIX="$PREFIX" /usr/local/bin/minibox gc >/dev/null
if ls -d /sys/fs/cgroup/"$PREFIX" /sys/fs/cgroup/*/"$PREFIX" 2>/dev/null; then
    echo "provision-test: cgroups left on the machine" >&2
    exit 1
fi
INSIDE
