#!/usr/bin/env bash
# Provision the workshop VM (or any Debian/Ubuntu machine): the same `make setup` the README's
# `make workshop` runs on a Linux host, plus a `workshop` command for the VM's user. Idempotent:
# a second run (`vagrant provision`) only checks that everything is there.
#
#   vagrant/provision.sh [REPO_DIR]      (as root; REPO_DIR defaults to this script's repository)
#
# WORKSHOP_BUNDLE=path: install from an offline bundle (`make offline-bundle`), no network used.
set -euo pipefail

REPO=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)}
# The virtualenv lives on the VM's own disk: a synced folder (vboxsf, 9p) is slow for Python's
# many small files, and cannot always hold the venv's symlinks (Windows hosts).
VENV=${WORKSHOP_VENV:-/opt/container-internals-workshop/venv}

if [ "$(id -u)" != 0 ]; then
    echo "provision: run as root" >&2
    exit 1
fi
BUNDLE=${WORKSHOP_BUNDLE:-}
if ! command -v make >/dev/null; then
    if [ -n "$BUNDLE" ]; then
        "$REPO/vagrant/bundle.sh" apt "$BUNDLE" make
    else
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make
    fi
fi
mkdir -p "$(dirname "$VENV")"
make -C "$REPO" setup VENV="$VENV" ${BUNDLE:+BUNDLE="$BUNDLE"}

# `workshop` and `minibox` for every user, through sudo (containers need root).
for tool in workshop minibox; do
    target=/usr/local/bin/$tool
    wrapper="#!/bin/sh
# Installed by vagrant/provision.sh: the workshop needs root for namespaces, mounts and cgroups.
if [ \"\$(id -u)\" = 0 ]; then exec $VENV/bin/$tool \"\$@\"; fi
exec sudo --preserve-env=TERM,COLORTERM,LANG $VENV/bin/$tool \"\$@\""
    if [ "$(cat "$target" 2>/dev/null)" != "$wrapper" ]; then
        printf '%s\n' "$wrapper" > "$target"
        chmod 755 "$target"
    fi
done
echo "provision: done. Start the workshop with: vagrant ssh -c workshop"
