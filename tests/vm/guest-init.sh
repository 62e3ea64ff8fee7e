#!/bin/busybox sh
# shellcheck shell=sh
# /init of the pure-cgroup-v2 test VM that run-in-cgroup2-vm.sh boots. Not run on the host.
#
# Stage 1 (PID 1 in the initramfs): load the virtio/9p/overlay modules, mount the host's root
# (9p, read-only) under a tmpfs-backed overlay so the guest can write, then switch_root into it.
# Stage 2 (PID 1 in that root, like a real init): mount ONLY cgroup2 at /sys/fs/cgroup, tmpfs on
# /tmp and /run, devpts, shm, mqueue; run /run/minibox-vm/cmd.sh (written by the host in the
# results share), stream its output to the second serial port (the host's stdout), write its exit
# code and output to the results share, power off.

INIT_DIR=/run/minibox-vm-init  # stage 2's own copy of busybox and of this script
RESULTS=/run/minibox-vm        # the host's writable results share
CONTROLLERS="+cpuset +cpu +io +memory +pids"

say() { echo "minibox-vm: $*"; }  # to the kernel console (ttyS0, the host's console.log)

die() {
    say "FATAL: $*"
    sync
    poweroff -f
    sleep 10
    exit 1  # init exiting panics the kernel; panic=-1 with -no-reboot ends qemu
}

stage1() {
    /bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /lower /rw /newroot
    /bin/busybox --install -s
    export PATH=/bin:/sbin:/usr/bin:/usr/sbin
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    while read -r kind module; do
        insmod "/lib/modules/$module.ko" 2>/dev/null || [ "$kind" = optional ] || say "could not load $module"
    done </modules.list
    mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower ||
        die "cannot mount the host's root (9p tag hostroot)"
    mount -t tmpfs -o mode=0755 overlay-rw /rw && mkdir /rw/upper /rw/work
    mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
        die "cannot mount the overlay root"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run
    mkdir -p "/newroot$INIT_DIR/bin"
    cp /bin/busybox /init "/newroot$INIT_DIR/"
    for fs in proc sys dev; do
        mount --move "/$fs" "/newroot/$fs" || die "cannot move /$fs"
    done
    exec switch_root /newroot "$INIT_DIR/busybox" sh "$INIT_DIR/init" stage2
}

stage2() {
    "$INIT_DIR/busybox" --install -s "$INIT_DIR/bin"
    export PATH="$INIT_DIR/bin"
    # The unified hierarchy only, mounted as systemd mounts it; nothing v1 anywhere.
    mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
        die "cannot mount cgroup2"
    mkdir -p /dev/pts /dev/shm /dev/mqueue
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts /dev/pts
    mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
    mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue
    ln -sf /proc/self/fd /dev/fd
    ln -sf /proc/self/fd/0 /dev/stdin
    ln -sf /proc/self/fd/1 /dev/stdout
    ln -sf /proc/self/fd/2 /dev/stderr
    mkdir -p "$RESULTS"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmresults "$RESULTS" ||
        die "cannot mount the results share (9p tag vmresults)"
    hostname minibox-vm
    ip link set lo up
    VM_CGROUP=""
    VM_REPO=""
    # shellcheck disable=SC1091  # written by the host at run time
    [ -f "$RESULTS/config" ] && . "$RESULTS/config"
    # A fresh /tmp, as on a booted machine; a repository that lives under the host's /tmp (a CI
    # clone) is kept visible at its own path.
    keep_repo=""
    if [ -n "$VM_REPO" ] && [ "${VM_REPO#/tmp/}" != "$VM_REPO" ]; then
        mkdir -p /run/minibox-repo && mount --bind "$VM_REPO" /run/minibox-repo && keep_repo=1
    fi
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
    if [ -n "$keep_repo" ]; then  # (Debian's busybox has no `mountpoint`)
        mkdir -p "$VM_REPO" && mount --move /run/minibox-repo "$VM_REPO"
    fi
    if [ -n "$VM_CGROUP" ]; then
        # Like systemd: controllers on from the root down, the command in a leaf group.
        dir=/sys/fs/cgroup
        for part in $(echo "$VM_CGROUP" | tr / ' '); do
            echo "$CONTROLLERS" >"$dir/cgroup.subtree_control" || say "cannot enable controllers in $dir"
            dir="$dir/$part"
            mkdir -p "$dir"
        done
    fi
    stty -F /dev/ttyS1 115200 raw -echo
    say "running the command"
    (
        if [ -n "$VM_CGROUP" ]; then
            echo 0 >"/sys/fs/cgroup/$VM_CGROUP/cgroup.procs" || say "cannot join $VM_CGROUP"
        fi
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root \
            LOGNAME=root TERM=dumb LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
            /bin/bash "$RESULTS/cmd.sh" </dev/null 2>&1
        echo $? >"$INIT_DIR/exitcode"
    ) | tee "$RESULTS/output.log" >/dev/ttyS1 &
    tee_pid=$!
    # Wait for the exit code, not for tee: something the command left running may hold the pipe.
    # (While it sleeps, this shell, PID 1, reaps orphaned processes as a real init does.)
    while [ ! -f "$INIT_DIR/exitcode" ]; do
        sleep 0.2
    done
    n=0
    while kill -0 "$tee_pid" 2>/dev/null && [ "$n" -lt 15 ]; do
        sleep 0.2
        n=$((n + 1))
    done
    cp "$INIT_DIR/exitcode" "$RESULTS/exitcode.tmp" && mv "$RESULTS/exitcode.tmp" "$RESULTS/exitcode"
    say "command exited $(cat "$INIT_DIR/exitcode"), powering off"
    sync
    umount "$RESULTS" 2>/dev/null
    poweroff -f
    sleep 10
}

if [ "${1:-}" = stage2 ]; then
    stage2
else
    stage1
fi
die "init fell through"
