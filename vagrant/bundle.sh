#!/usr/bin/env bash
# The offline bundle: everything a room with no internet needs to set the workshop up.
#
#   vagrant/bundle.sh make OUT.tar PYTHON PACKAGE...   (`make offline-bundle`: needs the network)
#   vagrant/bundle.sh apt BUNDLE PACKAGE...            (`make setup BUNDLE=...`: no network used)
#   vagrant/bundle.sh pip BUNDLE VENV REPO             (the same, for the virtualenv)
#   vagrant/bundle.sh images BUNDLE VENV               (the same: load the bundle's busybox image)
#
# BUNDLE is the .tar that `make offline-bundle` wrote, or the directory it unpacks to. Inside:
#   debs/       every Debian package the set-up installs, with all their dependencies, and the
#               Packages index that makes the directory an apt repository
#   wheels/     every Python package the project needs (and pip, and the build backend)
#   source/     this repository (tracked and new files; not .venv or caches)
#   notebooks/  the labs as Jupyter notebooks (solutions in collapsed cells)
#   images/     busybox.tar, the built-in image saved as an OCI archive. Loaded at set-up, so every
#               machine in the room has the very same image ID (made locally, each would differ);
#               the labs' own registry images are built from it during the labs
#   bundle.env  which OS, architecture and Python it was made for (debs and wheels are specific)
#   install.sh  `sudo ./install.sh`: installs make from the bundle if missing, then `make setup`
#
# apt reads the bundle through its own source list and list directory, so the machine's apt
# configuration is not changed; pip gets --no-index. Nothing reaches for the network.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CACHE=${WORKSHOP_BUNDLE_CACHE:-/var/cache/container-internals-workshop}

die() {
    echo "bundle: $*" >&2
    exit 1
}

# shellcheck source=/dev/null
os_id() { (. /etc/os-release && echo "${ID}-${VERSION_ID:-unknown}"); }

# The bundle's directory: BUNDLE itself, or the .tar unpacked once into $CACHE.
unpacked() {
    local bundle=$1
    if [ -d "$bundle" ]; then
        (cd "$bundle" && pwd -P)
        return
    fi
    [ -f "$bundle" ] || die "no bundle at $bundle: give BUNDLE=the .tar from \`make offline-bundle\` (or its directory)"
    local dir
    dir="$CACHE/bundle-$(stat -c %s-%Y "$bundle")"
    if [ ! -f "$dir/bundle.env" ]; then
        rm -rf "$dir.tmp"
        mkdir -p "$dir.tmp"
        tar -xf "$bundle" -C "$dir.tmp" --strip-components=1 || die "cannot unpack $bundle: is it a whole download?"
        chmod 755 "$dir.tmp"  # apt reads file: repositories as the unprivileged _apt user
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
    fi
    echo "$dir"
}

# Refuse a bundle made for another system: its packages would not install, or worse, would.
check_made_for_this_machine() {
    local dir=$1
    # shellcheck source=/dev/null
    . "$dir/bundle.env"
    local here_os here_arch
    here_os=$(os_id)
    here_arch=$(dpkg --print-architecture)
    if [ "$BUNDLE_OS" != "$here_os" ] || [ "$BUNDLE_ARCH" != "$here_arch" ]; then
        die "this bundle is for $BUNDLE_OS/$BUNDLE_ARCH, this machine is $here_os/$here_arch: make one with \`make offline-bundle\` on a $here_os/$here_arch machine"
    fi
}

cmd_make() {
    local out=$1 python=$2
    shift 2
    local repo work root
    repo=$(cd "$HERE/.." && pwd -P)
    work=$(mktemp -d /tmp/minibox-bundle-XXXXXX)
    # shellcheck disable=SC2064 # expand now: the variable is local
    trap "rm -rf '$work'" EXIT
    root="$work/container-internals-workshop-bundle"
    mkdir -p "$root/debs" "$root/wheels" "$root/images"

    echo "bundle: Debian packages (the set-up's, and everything they depend on)"
    # The whole dependency closure: the room's machines may be fresh installs missing any of it.
    # Virtual packages (<name>) are skipped: their providers are listed as real packages too.
    local closure
    closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "$@" | grep -v '^[ <]' | sort -u)
    # (root downloads them itself: the _apt user may not write to this temporary directory)
    # shellcheck disable=SC2086 # one word per package
    (cd "$root/debs" && apt-get download -qq -o APT::Sandbox::User=root $closure) ||
        die "apt-get download failed: is a Debian mirror reachable? (\`apt-get update\` first)"
    (cd "$root/debs" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)

    echo "bundle: Python packages"
    # Wheels for the Python the room's machines will have: the one in debs/ (python3-venv's),
    # which may be older than the Python making the bundle (packages may require a newer one).
    local target deb
    deb=$(find "$root/debs" -name 'python3.[0-9]*-minimal_*.deb' | head -1)
    [ -n "$deb" ] || die "no python3.X-minimal package among the downloaded ones"
    target=$(dpkg-deb -f "$deb" Version | sed 's/[-+~].*//')
    "$python" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
        "$repo/pyproject.toml" >"$work/requirements.txt"
    # pip and the build backend too: an editable install builds with hatchling and editables.
    "$python" -m pip download -q --only-binary=:all: --python-version "$target" --dest "$root/wheels" \
        -r "$work/requirements.txt" pip hatchling editables

    echo "bundle: the workshop's source, notebooks and images"
    mkdir "$root/source"
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar -c --null -T - -f -) |
        tar -x -C "$root/source"
    "$repo/.venv/bin/workshop" notebook --export "$root/notebooks" >/dev/null
    "$repo/.venv/bin/minibox" save -o "$root/images/busybox.tar" busybox

    cat >"$root/bundle.env" <<EOF
BUNDLE_OS=$(os_id)
BUNDLE_ARCH=$(dpkg --print-architecture)
BUNDLE_PYTHON=$target
BUNDLE_MADE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
    cat >"$root/install.sh" <<'EOF'
#!/bin/sh
# Set the workshop up from this bundle, with no network: sudo ./install.sh
# Then start it with: sudo make -C source workshop
set -eu
here=$(cd "$(dirname "$0")" && pwd -P)
command -v make >/dev/null || "$here/source/vagrant/bundle.sh" apt "$here" make
make -C "$here/source" setup BUNDLE="$here"
echo "install: done. Start the workshop with: sudo make -C $here/source workshop"
EOF
    chmod 755 "$root/install.sh"
    mkdir -p "$(dirname "$out")"
    tar -C "$work" -cf "$out.tmp" container-internals-workshop-bundle
    mv "$out.tmp" "$out"
    echo "bundle: wrote $out ($(du -h "$out" | cut -f1)) for $(os_id)/$(dpkg --print-architecture), Python $target"
}

cmd_apt() {
    local dir
    dir=$(unpacked "$1")
    shift
    check_made_for_this_machine "$dir"
    local missing=""
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    [ -n "$missing" ] || return 0
    echo "installing from the bundle:$missing"
    local lists
    lists=$(mktemp -d /tmp/minibox-bundle-apt-XXXXXX)
    # shellcheck disable=SC2064 # expand now: the variable is local
    trap "rm -rf '$lists'" EXIT
    mkdir -p "$lists/lists/partial" "$lists/parts"
    echo "deb [trusted=yes] file:$dir/debs ./" >"$lists/sources.list"
    # The bundle may sit where apt's unprivileged _apt user cannot read (root's home): root reads it.
    local options=(-o APT::Sandbox::User=root
        -o "Dir::Etc::SourceList=$lists/sources.list" -o "Dir::Etc::SourceParts=$lists/parts"
        -o "Dir::State::Lists=$lists/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
    apt-get "${options[@]}" update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get "${options[@]}" install -y -qq --no-install-recommends $missing
}

cmd_pip() {
    local dir venv=$2 repo=$3
    dir=$(unpacked "$1")
    check_made_for_this_machine "$dir"
    local version
    version=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')
    # shellcheck source=/dev/null
    . "$dir/bundle.env"
    # The wheels suit this Python if it is the same X.Y, and not older than the bundle's X.Y.Z.
    if ! "$venv/bin/python" -c 'import sys; w = tuple(map(int, sys.argv[1].split("."))); sys.exit(not (sys.version_info[:2] == w[:2] and sys.version_info[:3] >= w))' "$BUNDLE_PYTHON"; then
        die "this bundle's wheels are for Python $BUNDLE_PYTHON, $venv has $version: set PYTHON=/usr/bin/python3 (the system's), or make the bundle on a machine like this one"
    fi
    local pip=("$venv/bin/pip" install -q --no-index --find-links "$dir/wheels")
    "${pip[@]}" --upgrade pip
    "${pip[@]}" -e "$repo"
}

cmd_images() {
    local dir venv=$2
    dir=$(unpacked "$1")
    if ! "$venv/bin/minibox" images | grep -q '^busybox  *latest '; then
        "$venv/bin/minibox" load -i "$dir/images/busybox.tar"
    fi
}

command=${1:-}
[ $# -ge 1 ] && shift
case "$command" in
make) [ $# -ge 3 ] || die "usage: bundle.sh make OUT.tar PYTHON PACKAGE..."; cmd_make "$@" ;;
apt) [ $# -ge 2 ] || die "usage: bundle.sh apt BUNDLE PACKAGE..."; cmd_apt "$@" ;;
pip) [ $# -eq 3 ] || die "usage: bundle.sh pip BUNDLE VENV REPO"; cmd_pip "$@" ;;
images) [ $# -eq 2 ] || die "usage: bundle.sh images BUNDLE VENV"; cmd_images "$@" ;;
*) die "usage: bundle.sh make|apt|pip|images ... (see the top of this file)" ;;
esac
