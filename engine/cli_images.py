"""The ``minibox`` commands about images and layers: rmi, tag, history, diff, commit, import, save, load.

Argument parsing and printing only; the work is in ``engine.images``.
"""

from __future__ import annotations

from engine.cli_args import Arg, Args, Option

Arguments = tuple[list[Option], list[Arg]]
IMAGES = "one or more images: name, ID or ID prefix"


def add_rmi() -> Arguments:
    return [Option("-f, --force", "remove it even if containers were made from it")], [Arg("images", IMAGES, many=True)]


def add_tag() -> Arguments:
    return [], [Arg("source", "IMAGE (name, ID or ID prefix)"), Arg("target", "NAME[:TAG]")]


def add_history() -> Arguments:
    return [], [Arg("image", "IMAGE (name, ID or ID prefix)")]


def add_diff() -> Arguments:
    return [], [Arg("container", "a container's name or ID")]


def add_commit() -> Arguments:
    return [
        Option("-m, --message", "a comment kept in the image's history", value="TEXT", default=""),
        Option("-a, --author", "who made it", value="NAME", default=""),
    ], [
        Arg("container", "a container's name or ID"),
        Arg("tag", "NAME[:TAG] for the new image", optional=True, default=""),
    ]


def add_import() -> Arguments:
    return [], [
        Arg("file", "a .tar or .tar.gz of a root filesystem (-: standard input)"),
        Arg("tag", "NAME[:TAG] for the new image", optional=True, default=""),
    ]


def add_prune() -> Arguments:
    return [], []


def add_save() -> Arguments:
    return [Option("-o, --output", "the tar file to write (default -: standard output)", value="FILE", default="-")], [
        Arg("images", IMAGES, many=True)
    ]


def add_load() -> Arguments:
    return [
        Option(
            "-i, --input",
            "a tar made by `minibox save` or `docker save` (default -: standard input)",
            value="FILE",
            default="-",
        )
    ], []


def add_pull() -> Arguments:
    return [Option("--insecure", "plain HTTP to a registry that is not on loopback")], [
        Arg("image", "REGISTRY/NAME[:TAG] or ...@sha256:DIGEST, e.g. localhost:5000/team/app:v1")
    ]


def add_build() -> Arguments:
    return [
        Option("-f, --file", "the Minifile (default: CONTEXT/Minifile)", value="FILE", default=""),
        Option("-t, --tag", "NAME[:TAG] for the result", value="NAME[:TAG]", default=""),
        Option("--no-cache", "run every step, even unchanged ones"),
    ], [Arg("context", "the directory COPY takes files from")]


COMMANDS = {
    "build": ("make an image from a Minifile (FROM, RUN, COPY, ENV, WORKDIR, CMD, ENTRYPOINT, LABEL)", add_build),
    "pull": ("download an image from a registry (OCI distribution API)", add_pull),
    "rmi": ("remove images (and layers nothing uses any more)", add_rmi),
    "prune": ("forget the build cache, remove untagged images no container uses, and unused layers", add_prune),
    "tag": ("give an image another name", add_tag),
    "history": ("show the steps (layers) an image was made of", add_history),
    "diff": ("list what a container changed: A added, C changed, D deleted", add_diff),
    "commit": ("make an image of a container's changes (its upper layer)", add_commit),
    "import": ("make a one-layer image of a root filesystem tar", add_import),
    "save": ("write images to an OCI layout tar (docker load reads it too)", add_save),
    "load": ("read images from a tar made by minibox save or docker save", add_load),
}


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return ""


def run(args: Args) -> int:
    from engine import images
    from engine.state import Paths

    paths = Paths()
    paths.ensure()
    if args.cmd == "prune":
        for line in images.prune(paths) or ["nothing to prune"]:
            print(line)
        return 0
    if args.cmd == "rmi":
        from engine.cli import for_each

        return for_each(args.images, lambda ref: print("\n".join(images.remove(paths, ref, force=args.force))), False)
    if args.cmd == "pull":
        return _pull(paths, args)
    if getattr(args, "tag", "") and args.cmd in ("build", "commit", "import"):
        images.parse_ref(args.tag, "TAG")  # a bad name fails now, before any layer is made
    if args.cmd == "build":
        import os

        from engine.images.build import Builder

        if not os.path.isdir(args.context):
            raise images.MiniboxError(f"no such directory: {args.context}", "give the build context, e.g. `.`")
        minifile = args.file or os.path.join(args.context, "Minifile")
        if not os.path.isfile(minifile):
            raise images.MiniboxError(
                f"no Minifile at {minifile}", "give one with -f FILE, or put a Minifile in CONTEXT"
            )
        Builder(paths, args.context, say=lambda line: print(line, flush=True)).build(
            minifile, args.tag, not args.no_cache
        )
        return 0
    if args.cmd == "tag":
        image = images.get(paths, args.source)
        images.set_tag(paths, image.id, args.target)
    elif args.cmd == "history":
        from engine.images.changes import history

        steps = history(images.get(paths, args.image))  # an unknown image: the error, no header
        print(f"{'CREATED':<22}{'SIZE':>9}  CREATED BY")
        for step in steps:
            comment = f"  # {step['comment']}" if step["comment"] else ""
            size = "0B" if step["empty_layer"] else _size(step["size"])
            print(f"{step['created'][:19]:<22}{size:>9}  {step['created_by'][:90]}{comment}")
    elif args.cmd == "diff":
        import engine
        from engine.images.changes import diff

        for kind, path in diff(engine.get(args.container)):
            print(f"{kind} {path}")
    elif args.cmd == "commit":
        import engine
        from engine.images.changes import commit

        print(commit(engine.get(args.container), args.tag, args.message, args.author))
    elif args.cmd == "import":
        from engine.images.archive import import_rootfs

        print(import_rootfs(paths, args.file, args.tag))
    elif args.cmd == "save":
        from engine.images.archive import save

        save(paths, args.images, args.output)
    elif args.cmd == "load":
        from engine.images.archive import load

        print("\n".join(load(paths, args.input)))
    return 0


def _pull(paths: object, args: Args) -> int:
    """Pull with one progress bar per layer (rich) on a terminal, plain lines otherwise."""
    import sys

    from engine.images.registry import pull

    if not sys.stderr.isatty():
        print(pull(paths, args.image, args.insecure, say=print))
        return 0
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=False) as bars:
        tasks: dict[str, object] = {}

        def progress(layer: str, done: int, total: int) -> None:
            if layer not in tasks:
                tasks[layer] = bars.add_task(layer, total=total or None)
            bars.update(tasks[layer], completed=done)

        image_id = pull(paths, args.image, args.insecure, progress, say=bars.console.print)
    print(image_id)
    return 0
