#!/usr/bin/env bash
# Install the workshop from an offline bundle on a fresh Debian root that has no network at all,
# twice, then use it: a room with no internet, tested for real.
#
#   tests/vagrant/install-from-bundle.sh BUNDLE.tar        (as root; `make offline-bundle` made it)
#
# The root is a fresh debootstrap minbase (no python3, no make, none of the workshop's packages),
# and everything runs inside a new network namespace with nothing but a loopback device that is
# down: apt, pip or anything else reaching for the network fails at once. No cache of this
# machine is shared with the root. Environment: MINIBOX_PROVISION_KEEP=1 keeps the root.
set -euo pipefail

BUNDLE=$(realpath "$1")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=tests/vagrant/debian-root.sh
. "$REPO/tests/vagrant/debian-root.sh"
WORK=$(mktemp -d /tmp/minibox-offline-XXXXXX)
ROOT="$WORK/root"
cleanup() {
    if [ "${MINIBOX_PROVISION_KEEP:-0}" != 1 ]; then
        rm -rf --one-file-system "$WORK"
    else
        echo "offline-test: kept $WORK" >&2
    fi
}
trap cleanup EXIT

fresh_debian_root "$ROOT"
# As an attendee would: copy the bundle over (a USB stick), unpack it in their home.
tar -xf "$BUNDLE" -C "$ROOT/root"

unshare --net --mount --propagation private bash -euo pipefail -s "$ROOT" "$REPO" <<'INSIDE'
ROOT=$1 REPO=$2
# shellcheck source=tests/vagrant/debian-root.sh
. "$REPO/tests/vagrant/debian-root.sh"
enter_debian_root "$ROOT"
echo "== the network here =="
cat /proc/net/dev
for tool in python3 make; do
    if in_root sh -c "command -v $tool" >/dev/null; then echo "offline-test: $tool is already in the fresh root" >&2; exit 1; fi
done
B=/root/container-internals-workshop-bundle
echo "== first install =="
in_root "$B/install.sh"
echo "== second install =="
in_root "$B/install.sh"
echo "== using it =="
echo "bundle image: $(tar -xOf "$ROOT$B/images/busybox.tar" index.json)"
in_root make -C "$B/source" -q setup && echo "setup is up to date"
in_root "$B/source/.venv/bin/minibox" run --rm busybox sh -c 'echo container-ok from $(hostname)'
in_root "$B/source/.venv/bin/minibox" images
in_root "$B/source/.venv/bin/minibox" inspect -f Id busybox
in_root "$B/source/.venv/bin/python" -c 'import textual, pyroute2, aiohttp, nbclient, ipykernel; print("imports-ok")'
in_root "$B/source/.venv/bin/workshop" check 01-chroot || true  # prints the lab's checks (not done yet)
ls "$ROOT$B/notebooks"
in_root "$B/source/.venv/bin/minibox" gc >/dev/null
INSIDE
