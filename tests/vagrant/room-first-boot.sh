#!/usr/bin/env bash
# The first boot of a room VM, without the VM: a fresh Debian root with no network at all runs
# the provisioning script from its cloud-init user-data, which downloads the offline bundle from
# the instructor's class service and joins the class. The class service runs in the same empty
# network namespace, on 127.0.0.1 (as the instructor's laptop would on the room's network).
#
#   tests/vagrant/room-first-boot.sh USER-DATA BUNDLE.tar CLASS.sqlite PORT      (as root)
#
# CLASS.sqlite is the class service's file (its code and token already in it). cloud-init's own
# part (the login, write_files) is not run here: `cloud-init schema` checks that part.
set -euo pipefail

USER_DATA=$(realpath "$1")
BUNDLE=$(realpath "$2")
CLASS_FILE=$(realpath "$3")
PORT=$4
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
# shellcheck source=tests/vagrant/debian-root.sh
. "$REPO/tests/vagrant/debian-root.sh"
WORK=$(mktemp -d /tmp/minibox-room-XXXXXX)
ROOT="$WORK/root"
cleanup() { rm -rf --one-file-system "$WORK"; }
trap cleanup EXIT

fresh_debian_root "$ROOT"
# write_files, as cloud-init would do it
"$PYTHON" - "$USER_DATA" "$ROOT" <<'PY'
import os, sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for entry in config["write_files"]:
    path = sys.argv[2] + entry["path"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(entry["content"])
    os.chmod(path, int(entry.get("permissions", "0644"), 8))
PY

unshare --net --mount --propagation private bash -euo pipefail -s "$ROOT" "$PYTHON" "$REPO" "$BUNDLE" "$CLASS_FILE" "$PORT" <<'INSIDE'
ROOT=$1 PYTHON=$2 REPO=$3 BUNDLE=$4 CLASS_FILE=$5 PORT=$6
ip link set lo up  # the room's network: here, only this namespace's loopback
(cd "$REPO" && exec "$PYTHON" -m workshop_tui class serve --port "$PORT" --file "$CLASS_FILE" --bundle "$BUNDLE") \
    >"$(dirname "$CLASS_FILE")/service.log" 2>&1 &
service=$!
trap 'kill $service 2>/dev/null; wait $service 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/bundle.tar', timeout=1).close()" 2>/dev/null && break
    sleep 0.1
done
# shellcheck source=tests/vagrant/debian-root.sh
. "$REPO/tests/vagrant/debian-root.sh"
enter_debian_root "$ROOT"
# A cloud image has python3 (cloud-init is Python); the minimal root does not: take it from the
# bundle, then forget the bundle (the first boot must download its own).
tar -xf "$BUNDLE" -C "$ROOT/tmp"
in_root /tmp/container-internals-workshop-bundle/source/vagrant/bundle.sh apt /tmp/container-internals-workshop-bundle python3 >/dev/null
rm -rf "$ROOT/tmp/container-internals-workshop-bundle"
echo "== first boot =="
if ! in_root /usr/local/sbin/workshop-provision; then
    cat "$ROOT/var/log/workshop-provision.log"
    exit 1
fi
cat "$ROOT/var/log/workshop-provision.log"
echo "== the attendee logs in =="
in_root workshop status | head -3
in_root minibox run --rm busybox echo container-ok
in_root minibox gc >/dev/null
INSIDE
