#!/usr/bin/env bash
# The OCI runtime conformance tier: opencontainers runtime-tools' validation tests, built from
# Debian's source package with Debian's Go and Debian's Go libraries (no download of Go modules),
# run against a runtime with runc's command line.
#
#   tests/oci/runtime-tools.sh RUNTIME [OUTDIR]        (as root; RUNTIME: runc, or minibox-runc's path)
#
# Prints one line per test binary, then
#   TESTS passed=A failed=B error=C of N        (binaries)
#   TOTAL pass=N fail=M error=K skip=S tests=T  (TAP assertions)
# pass/fail/skip count TAP lines ("ok", "not ok", "# SKIP" and "# TODO" ones); the hook tests report a
# failure as a YAML "error" block of its own, counted as a failure. error counts binaries that
# crashed, timed out or printed no plan. A *_fail test passes by printing nothing and exiting 0
# (the runtime refused the invalid config, as it must).
#
# Environment: RUNTIME_TOOLS_SRC (an unpacked runtime-tools source tree to use instead of
# Debian's), TEST_TIMEOUT (seconds per test, default 60), TESTS (names to run, default all),
# RUNTIME_ROOT (give the runtime --root DIR on every call: the suite itself passes none, and
# minibox-runc should not keep the suite's containers in /run/minibox-runc).
# Exit status 3: the source or the build tools could not be had (the caller may skip).
set -u -o pipefail

[ $# -ge 1 ] || { echo "usage: $0 RUNTIME [OUTDIR]" >&2; exit 2; }
RUNTIME=$(command -v "$1" || true)
if [ -z "$RUNTIME" ] || [ ! -x "$RUNTIME" ]; then
    echo "runtime-tools: $1 is not an executable" >&2
    exit 2
fi
RUNTIME=$(readlink -f "$RUNTIME")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
OUT=$(mkdir -p "${2:-/var/cache/minibox-runtime-tools}" && cd "${2:-/var/cache/minibox-runtime-tools}" && pwd -P)
TIMEOUT=${TEST_TIMEOUT:-60}
if [ -n "${RUNTIME_ROOT:-}" ]; then
    mkdir -p "$OUT/wrapped"
    printf '#!/bin/sh\nexec "%s" --root "%s" "$@"\n' "$RUNTIME" "$RUNTIME_ROOT" >"$OUT/wrapped/$(basename "$RUNTIME")"
    chmod 755 "$OUT/wrapped/$(basename "$RUNTIME")"
    RUNTIME="$OUT/wrapped/$(basename "$RUNTIME")"
fi
# The validation tests import these; golang-github-opencontainers-runtime-tools-dev brings most.
PACKAGES="golang-go golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev dpkg-dev"
SOURCE_PACKAGE=golang-github-opencontainers-runtime-tools

log() { echo "runtime-tools: $*" >&2; }

missing=""
for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    log "installing:$missing"
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2 ||
        { log "cannot install$missing"; exit 3; }
fi

# --- the source: Debian's source package -------------------------------------------------------
# The -dev package holds only the library; validation/ and cmd/runtimetest are in the source
# package. bookworm's source tarball is not on every mirror, trixie's (same tests, newer) is:
# apt fetches it through a source list of our own (the machine's apt configuration is untouched)
# and checks it against the signed index.
have_source() { [ -f "$1/validation/util/test.go" ] && [ -d "$1/cmd/runtimetest" ] && [ -f "$1/rootfs-amd64.tar.gz" ]; }
SRC=${RUNTIME_TOOLS_SRC:-$OUT/source}
if ! have_source "$SRC"; then
    [ -n "${RUNTIME_TOOLS_SRC:-}" ] && { log "RUNTIME_TOOLS_SRC=$SRC holds no validation tests"; exit 3; }
    apt_dir="$OUT/apt"
    rm -rf "$apt_dir" "$SRC"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/parts" "$apt_dir/download"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$apt_dir/sources.list"
    options=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
        -o "Dir::State::Lists=$apt_dir/lists" -o APT::Sandbox::User=root)
    apt-get "${options[@]}" update -qq >&2 || { log "cannot read Debian's source index"; exit 3; }
    # The .dsc itself may be missing from a mirror; the tarballs are what is needed.
    (cd "$apt_dir/download" && apt-get "${options[@]}" source --download-only "$SOURCE_PACKAGE" >&2) || true
    orig=$(find "$apt_dir/download" -name "${SOURCE_PACKAGE}_*.orig.tar.*" | head -1)
    [ -n "$orig" ] || { log "cannot download Debian's source package $SOURCE_PACKAGE"; exit 3; }
    mkdir -p "$SRC"
    tar -xf "$orig" -C "$SRC" --strip-components=1
    have_source "$SRC" || { log "$orig holds no validation tests"; exit 3; }
fi

# --- build: GOPATH mode, offline -----------------------------------------------------------------
# The source tree is the package itself; its imports resolve to Debian's Go libraries in
# /usr/share/gocode, except tap-go, which Debian does not package: tests/oci/tap-go stands in.
GOPATH_DIR="$OUT/gopath"
PACKAGE_DIR="$GOPATH_DIR/src/github.com/opencontainers/runtime-tools"
mkdir -p "$GOPATH_DIR/src/github.com/opencontainers" "$GOPATH_DIR/src/github.com/mndrix" "$OUT/bin" "$OUT/work"
rm -rf "$PACKAGE_DIR" "$GOPATH_DIR/src/github.com/mndrix/tap-go"
cp -a "$SRC" "$PACKAGE_DIR"
rm -rf "$PACKAGE_DIR/vendor"
cp -a "$HERE/tap-go" "$GOPATH_DIR/src/github.com/mndrix/tap-go"
export GO111MODULE=off GOPATH="$GOPATH_DIR:/usr/share/gocode" GOCACHE="$OUT/gocache" GOFLAGS="" GOPROXY=off \
    GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0
cd "$PACKAGE_DIR" || exit 3
go build -tags "netgo osusergo" -o "$OUT/bin/runtimetest" ./cmd/runtimetest >&2 || { log "runtimetest does not build"; exit 3; }
ALL=$(find validation -mindepth 2 -maxdepth 2 -name '*.go' ! -path 'validation/util/*' | cut -d/ -f2 | sort -u)
BUILT="" BUILD_FAILED=""
for name in $ALL; do
    if go build -o "$OUT/bin/$name.t" "./validation/$name" >"$OUT/bin/$name.buildlog" 2>&1; then
        BUILT="$BUILT $name"
    else
        BUILD_FAILED="$BUILD_FAILED $name"
    fi
done
log "built $(echo "$BUILT" | wc -w) tests; build failures:${BUILD_FAILED:- none}"

# --- run --------------------------------------------------------------------------------------
WORK="$OUT/work"
cp -f "$OUT/bin/runtimetest" "$SRC/rootfs-amd64.tar.gz" "$WORK/"  # the tests look in their cwd
RESULTS="$OUT/results/$(basename "$RUNTIME")"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
cgroup_dirs() { find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort; }
containers() {
    local out
    out=$("$RUNTIME" list -q 2>/dev/null) || out=$("$RUNTIME" list 2>/dev/null | awk 'NR > 1 {print $1}')
    printf '%s\n' "$out" | sed '/^$/d' | sort
}
cgroup_dirs >"$RESULTS/.cgroups.before"
containers >"$RESULTS/.containers.before"
find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'ocitest*' | sort >"$RESULTS/.bundles.before"

# "pass fail skip orphan_errors has_plan lines" of one TAP output
tap_count() {
    awk '
    /^(not )?ok [0-9]+/ { if (tolower($0) ~ /# *(skip|todo)/) s++; else if ($0 ~ /^not ok/) f++; else p++; attached=1; n++; next }
    /^1\.\.[0-9]+/ { plan=1; attached=0; n++; next }
    /^  ---$/ { yaml=1; orphan=!attached; err=0; n++; next }
    yaml && /^  \.\.\.$/ { yaml=0; if (orphan && err) o++; attached=0; next }
    yaml && /^    "error": "./ { err=1; next }
    /[^ \t]/ { n++ }
    END { printf "%d %d %d %d %d %d\n", p, f, s, o, plan, n }' "$1"
}

echo "runtime: $RUNTIME"
pass_total=0 fail_total=0 skip_total=0 error_total=0 count=0 tests_passed=0 tests_failed=0
for name in ${TESTS:-$BUILT}; do
    count=$((count + 1))
    # Each test in a mount namespace of its own: a container sharing the caller's (linux_ns_itype)
    # must not leave mounts on the machine.
    (cd "$WORK" && RUNTIME="$RUNTIME" timeout -k 10 "$TIMEOUT" unshare -m --propagation slave "$OUT/bin/$name.t") \
        >"$RESULTS/$name.tap" 2>"$RESULTS/$name.stderr" </dev/null
    code=$?
    read -r pass notok skip orphan plan lines < <(tap_count "$RESULTS/$name.tap")
    fail=$((notok + orphan))
    if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
        verdict="ERROR timeout after ${TIMEOUT}s"
    elif [ "$code" -ne 0 ]; then
        verdict="ERROR exit=$code: $(grep -v -e '^[[:space:]]*$' -e '^Refer to:' "$RESULTS/$name.stderr" | tail -1 | cut -c1-200)"
    elif [ "$lines" -eq 0 ]; then
        pass=1 verdict="PASS (refused the invalid config, as it must)"
    elif [ "$plan" -eq 0 ]; then
        verdict="ERROR no TAP plan"
    elif [ "$fail" -gt 0 ]; then
        verdict="FAIL"
    else
        verdict="PASS"
    fi
    case "$verdict" in
    ERROR*) error_total=$((error_total + 1)) ;;
    FAIL*) tests_failed=$((tests_failed + 1)) ;;
    *) tests_passed=$((tests_passed + 1)) ;;
    esac
    pass_total=$((pass_total + pass)) fail_total=$((fail_total + fail)) skip_total=$((skip_total + skip))
    printf '%-32s pass=%-4s fail=%-3s skip=%-3s %s\n' "$name" "$pass" "$fail" "$skip" "$verdict"
    containers | comm -13 "$RESULTS/.containers.before" - | while read -r id; do
        "$RUNTIME" delete --force "$id" >/dev/null 2>&1  # what a killed test left
    done
done

# --- leave the machine as it was ---------------------------------------------------------------
sleep 1
find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'ocitest*' | sort | comm -13 "$RESULTS/.bundles.before" - |
    while read -r bundle; do rm -rf --one-file-system "$bundle"; done
# Only empty groups with the names these tests use (cgrouptest, testdir, a container's UUID),
# or minibox-runc's default parent.
cgroup_dirs | comm -13 "$RESULTS/.cgroups.before" - | sort -r | while read -r dir; do
    if grep -qE '/(cgrouptest|testdir)(/|$)|/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|/minibox[^/]*-runc$' <<<"$dir"; then
        rmdir "$dir" 2>/dev/null || echo "runtime-tools: left in use: $dir"
    fi
done
echo "build failures:${BUILD_FAILED:- none}"
echo "results in $RESULTS"
echo "TESTS passed=$tests_passed failed=$tests_failed error=$error_total of $count"
echo "TOTAL pass=$pass_total fail=$fail_total error=$error_total skip=$skip_total tests=$count"
