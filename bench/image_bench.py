"""Images: layer unpacking against tar, pulling against skopeo, starting on many layers.

    make bench              (or: .venv/bin/python bench/image_bench.py [--runs N])

Side by side in one run, interleaved round by round, medians:

- **unpack**: one gzip layer (a tar of this machine's Python standard library without its tests:
  thousands of small files) unpacked by minibox (``layers.unpack``: streaming, digest checked, escape checks,
  whiteout translation) against ``tar -xzf`` of the same blob;
- **pull**: a three-layer image from a docker-registry on 127.0.0.1, ``minibox pull`` (download,
  verify; the layers are unpacked by the image's first container) against ``skopeo copy
  docker://... dir:...`` (download, verify); for scale, the pull plus that first ``run`` against
  ``podman pull``, which downloads and unpacks;
- **start**: ``minibox run --rm IMAGE true`` on a five-layer image against a one-layer one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RUN_ID = os.urandom(3).hex()
ROOT = f"/tmp/minibox-bench-{RUN_ID}"
os.environ.update(MINIBOX_ROOT=ROOT, MINIBOX_PREFIX=f"minibox-bench-{RUN_ID}")
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
MINIBOX = os.path.join(os.path.dirname(sys.executable), "minibox")


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"bench: {' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def quiet() -> None:
    """Let the file system settle (writeback of what the last run wrote) before timing the next."""
    os.sync()
    time.sleep(0.2)


def timed(function) -> float:  # noqa: ANN001
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def unpack_bench(runs: int) -> tuple[float, float, int]:
    from engine.images.layers import unpack

    source = sysconfig.get_paths()["stdlib"]
    blob = os.path.join(ROOT, "layer.tar.gz")
    excluded = ["--exclude=test", "--exclude=site-packages", "--exclude=__pycache__", "--exclude=idlelib"]
    where = ["-C", os.path.dirname(source), os.path.basename(source)]
    subprocess.run(["tar", "-czf", blob, *excluded, *where], check=True)
    ours, tars = [], []
    for i in range(runs):
        for kind in ("minibox", "tar"):
            target = os.path.join(ROOT, f"unpacked-{kind}-{i}")
            if kind == "minibox":
                ours.append(timed(lambda: unpack(blob, target)))  # noqa: B023
            else:
                os.makedirs(target)
                tars.append(timed(lambda: subprocess.run(["tar", "-xzf", blob, "-C", target], check=True)))  # noqa: B023
            shutil.rmtree(target)
    return statistics.median(ours), statistics.median(tars), os.path.getsize(blob)


def registry() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = os.path.join(ROOT, "registry.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {ROOT}/registry\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    server = subprocess.Popen(["docker-registry", "serve", config], **quiet)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return server, f"127.0.0.1:{port}"


def build(tag: str, layers: int) -> None:
    """busybox plus ``layers - 1`` layers, each a few MB of files."""
    context = os.path.join(ROOT, f"ctx-{layers}")
    os.makedirs(context, exist_ok=True)
    steps = ["FROM busybox"] + [f"RUN mkdir -p /data{i} && cp -r /bin /data{i}/ && dd if=/dev/urandom "
                                f"of=/data{i}/blob bs=1M count=2 2>/dev/null" for i in range(layers - 1)]  # fmt: skip
    with open(os.path.join(context, "Minifile"), "w") as f:
        f.write("\n".join(steps) + "\n")
    run(MINIBOX, "build", "-t", tag, context)


def pull_bench(runs: int) -> tuple[float, float, float, float | None]:
    server, address = registry()
    try:
        build("bench-three:v1", 3)
        run(MINIBOX, "save", "-o", f"{ROOT}/three.tar", "bench-three:v1")
        run(
            "skopeo",
            "copy",
            "-q",
            "--dest-tls-verify=false",
            f"oci-archive:{ROOT}/three.tar",
            f"docker://{address}/bench/three:v1",
        )
        ours, firsts, skopeos, podmans = [], [], [], []
        ref = f"{address}/bench/three:v1"
        for i in range(runs):
            # Every pull starts from an empty store, so all three layers come over the wire (the
            # store the image was built in still holds them). Nothing is deleted between timed
            # runs: on this machine, file system work left by a deletion slows the next run.
            store = dict(os.environ, MINIBOX_ROOT=os.path.join(ROOT, f"pull-{i}"))
            quiet()
            ours.append(timed(lambda: subprocess.run([MINIBOX, "pull", ref], env=store, check=True,  # noqa: B023
                                                     capture_output=True)))  # fmt: skip
            firsts.append(timed(lambda: subprocess.run([MINIBOX, "run", "--rm", ref, "true"], env=store,  # noqa: B023
                                                       check=True, capture_output=True)))  # fmt: skip
            target = os.path.join(ROOT, f"skopeo-{i}")
            quiet()
            skopeos.append(timed(lambda: run("skopeo", "copy", "-q", "--src-tls-verify=false",
                                             f"docker://{ref}", f"dir:{target}")))  # noqa: B023  # fmt: skip
            if shutil.which("podman"):  # a whole engine doing what minibox does: download and unpack
                storage = os.path.join(ROOT, f"podman-{i}")
                podman = ["podman", "--root", f"{storage}/root", "--runroot", f"{storage}/run", "--storage-driver",
                          "overlay", "pull", "-q", "--tls-verify=false", f"docker://{ref}"]  # fmt: skip
                quiet()
                podmans.append(timed(lambda: run(*podman)))  # noqa: B023
        podman = statistics.median(podmans) if podmans else None
        return statistics.median(ours), statistics.median(firsts), statistics.median(skopeos), podman
    finally:
        server.kill()
        server.wait()


def start_bench(runs: int) -> tuple[float, float]:
    build("bench-one:v1", 1)
    build("bench-five:v1", 5)
    one, five = [], []
    for _ in range(runs):
        one.append(timed(lambda: run(MINIBOX, "run", "--rm", "bench-one:v1", "true")))
        five.append(timed(lambda: run(MINIBOX, "run", "--rm", "bench-five:v1", "true")))
    return statistics.median(one), statistics.median(five)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (make bench)")
    os.makedirs(ROOT)
    try:
        ours, tar, size = unpack_bench(args.runs)
        pull_ours, first_run, pull_skopeo, pull_podman = pull_bench(args.runs)
        one, five = start_bench(args.runs * 3)
    finally:
        subprocess.run([MINIBOX, "gc"], capture_output=True)
        shutil.rmtree(ROOT, ignore_errors=True)
    print(f"{'what':<60}{'median ms':>10}")
    print(f"{f'unpack a {size / 1e6:.0f} MB gzip layer: minibox (layers.unpack)':<60}{ours * 1000:>10.1f}")
    print(f"{'unpack the same layer: tar -xzf':<60}{tar * 1000:>10.1f}")
    print(f"{'pull a 3-layer image from a loopback registry: minibox':<60}{pull_ours * 1000:>10.1f}")
    print(f"{'the same: skopeo copy docker:// dir:':<60}{pull_skopeo * 1000:>10.1f}")
    print(f"{'then the first minibox run --rm of it (unpacks 3 layers)':<60}{first_run * 1000:>10.1f}")
    if pull_podman:
        print(f"{'the same: podman pull (downloads and unpacks)':<60}{pull_podman * 1000:>10.1f}")
    print(f"{'minibox run --rm on a 1-layer image':<60}{one * 1000:>10.1f}")
    print(f"{'minibox run --rm on a 5-layer image':<60}{five * 1000:>10.1f}")
    print("\nratios (target in brackets)")
    print(f"  unpack throughput minibox / tar        {tar / ours:.2f}x  [>= 0.8]")
    print(f"  pull time minibox / skopeo             {pull_ours / pull_skopeo:.2f}x  [<= 1.2]")
    print(f"  start on 5 layers / on 1 layer         {five / one:.2f}x  [<= 1.1]")
    if pull_podman:
        print(f"  (for scale) pull + first run / podman pull  {(pull_ours + first_run) / pull_podman:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
