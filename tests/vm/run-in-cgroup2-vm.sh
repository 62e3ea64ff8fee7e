#!/usr/bin/env bash
# Run a command inside a throwaway Linux VM whose cgroups are pure v2 (only cgroup2 mounted at
# /sys/fs/cgroup, cgroup_no_v1=all), to exercise engine/cgroups/v2.py on a machine whose own
# layout is v1/hybrid. The guest's filesystem is this machine's root, shared read-only over 9p
# under a tmpfs overlay: same paths, same Python, same venv; nothing the guest writes reaches the
# host except the results share. No network device. See tests/vm/README.md.
#
#   tests/vm/run-in-cgroup2-vm.sh                 # the cgroup and namespace tests, the cgroup labs' walks
#   tests/vm/run-in-cgroup2-vm.sh COMMAND [ARG]... # anything else, run from the repository
#
# Exits with COMMAND's exit code; 124 if the VM timed out, 125 if it failed to produce a result.
# Environment: MINIBOX_VM_CACHE (kernel + initramfs cache), MINIBOX_VM_TIMEOUT (seconds, 900),
# MINIBOX_VM_MEMORY (MiB, 1024), MINIBOX_VM_CPUS (2), MINIBOX_VM_KERNEL_PACKAGE (default: what
# linux-image-amd64 depends on), MINIBOX_VM_CGROUP (run COMMAND in this cgroup, e.g.
# user.slice/test.scope, with controllers enabled down to it as systemd does; default: the root
# cgroup), MINIBOX_VM_KEEP=1 (keep the run directory with console.log and output.log).
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SCRIPT")
GUEST_INIT="$HERE/guest-init.sh"
REPO=$(cd "$HERE/../.." && pwd -P)
if [ "$(id -u)" = 0 ]; then
    CACHE=${MINIBOX_VM_CACHE:-/var/cache/minibox-vm}
else
    CACHE=${MINIBOX_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minibox-vm}
fi
TIMEOUT=${MINIBOX_VM_TIMEOUT:-900}
MEMORY=${MINIBOX_VM_MEMORY:-1024}
CPUS=${MINIBOX_VM_CPUS:-2}

# Required modules in load order (dependencies are added automatically), then nice-to-haves.
REQUIRED_MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
    9pnet 9pnet_virtio netfs fscache 9p overlay)
OPTIONAL_MODULES=(bridge veth nf_tables nft_chain_nat nft_nat nft_masq nft_compat)

log() { echo "minibox-vm: $*" >&2; }
die() {
    log "$*"
    exit 125
}

for tool in qemu-system-x86_64 apt-get dpkg gzip timeout flock; do
    command -v "$tool" >/dev/null || die "needs $tool (qemu: apt-get install -y qemu-system-x86)"
done
BUSYBOX=""
for candidate in /bin/busybox /usr/bin/busybox; do
    if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then
        BUSYBOX=$candidate
        break
    fi
done
[ -n "$BUSYBOX" ] || die "needs a statically linked busybox (apt-get install -y busybox-static)"

BUILD=""
RUN=""
QEMU_PID_FILE=""
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    local pid
    if [ -n "$QEMU_PID_FILE" ] && [ -s "$QEMU_PID_FILE" ]; then
        pid=$(cat "$QEMU_PID_FILE")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    [ -z "$BUILD" ] || rm -rf "$BUILD"
    if [ -n "$RUN" ]; then
        if [ "${MINIBOX_VM_KEEP:-0}" = 1 ]; then
            log "kept $RUN"
        else
            rm -rf "$RUN"
        fi
    fi
}
trap cleanup EXIT

# --- kernel -----------------------------------------------------------------------------------

kernel_package() {
    if [ -n "${MINIBOX_VM_KERNEL_PACKAGE:-}" ]; then
        echo "$MINIBOX_VM_KERNEL_PACKAGE"
        return
    fi
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$pkg" ]; then  # no apt lists: whatever was downloaded before
        pkg=$(find "$CACHE" -maxdepth 1 -name 'linux-image-*.deb' -printf '%f\n' 2>/dev/null |
            sort -V | tail -1 | cut -d_ -f1)
    fi
    [ -n "$pkg" ] || die "cannot tell which kernel to use (apt-get update, or set MINIBOX_VM_KERNEL_PACKAGE)"
    echo "$pkg"
}

# The kernel .deb, downloaded once (apt-get download: nothing is installed on the host).
kernel_deb() {
    local pkg=$1 deb
    deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
    if [ -z "$deb" ]; then
        log "downloading $pkg (once; cached in $CACHE)"
        mkdir -p "$CACHE/download"
        (cd "$CACHE/download" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || die "apt-get download $pkg failed"
        deb=$(find "$CACHE/download" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
        [ -n "$deb" ] || die "apt-get download $pkg produced no .deb"
        find "$CACHE" -maxdepth 1 -name 'linux-image-*.deb' -delete  # an older kernel
        mv "$deb" "$CACHE/"
        deb="$CACHE/$(basename "$deb")"
    fi
    echo "$deb"
}

# --- initramfs --------------------------------------------------------------------------------

declare -A MODULE_PATH=() LISTED=()
MODULE_ORDER=()

# .ko files may be compressed in other kernels' packages: store them plain for busybox insmod.
plain_module() {
    case "$1" in
        *.ko) cat "$1" ;;
        *.ko.xz) xz -dc "$1" ;;
        *.ko.zst) zstd -dc "$1" ;;
        *.ko.gz) gzip -dc "$1" ;;
    esac
}

# Append a module after its dependencies (read from its .modinfo "depends=" string).
add_module() {
    local name=${1//-/_} kind=$2 dep deps
    [ -z "${LISTED[$name]:-}" ] || return 0
    if [ -z "${MODULE_PATH[$name]:-}" ]; then
        [ "$kind" = optional ] || log "module $name not found (built in?)"
        return 0
    fi
    LISTED[$name]=1
    deps=$(plain_module "${MODULE_PATH[$name]}" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -1)
    for dep in ${deps//,/ }; do
        add_module "$dep" "$kind"
    done
    MODULE_ORDER+=("$kind $name")
}

build_initramfs() {
    local deb=$1 out=$2 vmlinuz=$3 kdir moddir kver ko name entry kind
    BUILD=$(mktemp -d "$CACHE/build.XXXXXX")
    dpkg -x "$deb" "$BUILD/kernel"
    kver=$(basename "$(find "$BUILD/kernel/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -1)")
    kdir="$BUILD/kernel"
    moddir="$kdir/lib/modules/$kver"
    cp "$kdir/boot/vmlinuz-$kver" "$BUILD/vmlinuz"
    while IFS= read -r ko; do
        name=$(basename "$ko")
        name=${name%%.ko*}
        MODULE_PATH[${name//-/_}]=$ko
    done < <(find "$moddir/kernel" -name '*.ko*')
    for name in "${REQUIRED_MODULES[@]}"; do add_module "$name" required; done
    for name in "${OPTIONAL_MODULES[@]}"; do add_module "$name" optional; done

    mkdir -p "$BUILD/root/bin" "$BUILD/root/lib/modules"
    cp "$BUSYBOX" "$BUILD/root/bin/busybox"
    cp "$GUEST_INIT" "$BUILD/root/init"
    chmod 755 "$BUILD/root/init"
    : >"$BUILD/root/modules.list"
    for entry in "${MODULE_ORDER[@]}"; do
        kind=${entry%% *}
        name=${entry#* }
        plain_module "${MODULE_PATH[$name]}" >"$BUILD/root/lib/modules/$name.ko"
        echo "$kind $name" >>"$BUILD/root/modules.list"
    done
    (cd "$BUILD/root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -6 >"$BUILD/initramfs.img"
    find "$CACHE" -maxdepth 1 \( -name 'initramfs-*.img' -o -name 'vmlinuz-*' \) -delete
    mv "$BUILD/initramfs.img" "$out"
    mv "$BUILD/vmlinuz" "$vmlinuz"
    rm -rf "$BUILD"
    BUILD=""
}

prepare() {
    local pkg deb key
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    pkg=$(kernel_package)
    deb=$(kernel_deb "$pkg")
    # Rebuilt whenever the kernel, this script, the guest's init or busybox changes.
    key=$( (basename "$deb" && cat "$SCRIPT" "$GUEST_INIT" "$BUSYBOX") | sha256sum | cut -c1-16)
    INITRD="$CACHE/initramfs-$key.img"
    VMLINUZ="$CACHE/vmlinuz-$key"
    if [ ! -s "$INITRD" ] || [ ! -s "$VMLINUZ" ]; then
        log "building the initramfs for $pkg"
        build_initramfs "$deb" "$INITRD" "$VMLINUZ"
    fi
    flock -u 9
    exec 9>&-
}

# --- run --------------------------------------------------------------------------------------

started=$SECONDS
prepare
RUN=$(mktemp -d "${TMPDIR:-/tmp}/minibox-vm.XXXXXX")
mkdir "$RUN/share"
QEMU_PID_FILE="$RUN/qemu.pid"
{
    printf 'cd %q || exit 125\n' "$REPO"
    if [ $# -gt 0 ]; then
        printf 'exec'
        printf ' %q' "$@"
        printf '\n'
    else
        # Say (and insist) that the guest's cgroups are pure v2, then run the tests. (These lines
        # are expanded by the guest's shell, not this one.)
        # shellcheck disable=SC2016
        echo 'test "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs && ! grep -q " cgroup " /proc/mounts || exit 125'
        # shellcheck disable=SC2016
        echo 'echo "guest: pure cgroup v2 ($(cat /sys/fs/cgroup/cgroup.controllers))"'
        echo 'exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_cgroups.py tests/test_namespaces.py tests/test_oci.py tests/test_labs.py -k "cgroups or namespaces or oci or plug or not walk"'
    fi
} >"$RUN/share/cmd.sh"
printf 'VM_CGROUP=%q\nVM_REPO=%q\n' "${MINIBOX_VM_CGROUP:-}" "$REPO" >"$RUN/share/config"

log "booting (TCG, no KVM; ${MEMORY} MiB, $CPUS CPUs, timeout ${TIMEOUT}s)"
# -nodefaults and -nic none: no network device at all. Console (ttyS0) to a file; the
# command's output comes on ttyS1, wired to this script's stdout.
timeout -k 20 "$TIMEOUT" qemu-system-x86_64 \
    -nodefaults -accel tcg -cpu max -m "$MEMORY" -smp "$CPUS" \
    -display none -monitor none -no-reboot -nic none \
    -pidfile "$QEMU_PID_FILE" \
    -kernel "$VMLINUZ" -initrd "$INITRD" \
    -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all" \
    -serial "file:$RUN/console.log" \
    -chardev stdio,id=out,signal=off -serial chardev:out \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$RUN/share,mount_tag=vmresults,security_model=none" \
    </dev/null &
qemu=$!
interrupted=0
trap 'interrupted=1; kill -TERM "$qemu" 2>/dev/null || true' INT TERM HUP
rc=0
while kill -0 "$qemu" 2>/dev/null; do
    rc=0
    wait "$qemu" || rc=$?
done
trap - INT TERM HUP

if [ -s "$RUN/share/exitcode" ]; then
    status=$(cat "$RUN/share/exitcode")
    log "command exited $status; $((SECONDS - started)) s in all"
    exit "$status"
fi
if [ "$interrupted" = 1 ]; then
    log "interrupted"
    exit 130
elif [ "$rc" = 124 ]; then
    log "timed out after ${TIMEOUT}s"
else
    log "the VM stopped (qemu exit $rc) without a result"
fi
log "last lines of the guest console:"
tail -n 30 "$RUN/console.log" >&2 2>/dev/null || true
[ "$rc" = 124 ] && exit 124
exit 125
