"""minibox's own argument parser (engine/cli_args.py): the shapes docker users type."""

from __future__ import annotations

import pytest

from engine.cli import command, main, parse
from engine.cli_args import HelpRequested, UsageError


def test_flags_combine_and_values_attach_as_in_docker():
    args = parse(["run", "-it", "--rm", "-eA=1", "-e", "B=2", "--env=C=3", "--name", "web", "-h", "box", "busybox"])
    assert (args.interactive, args.tty, args.rm, args.detach) == (True, True, True, False)
    assert args.env == ["A=1", "B=2", "C=3"] and args.name == "web" and args.hostname == "box"
    assert args.image == "busybox" and args.command == [] and args.cmd == "run"
    assert parse(["run", "-dm", "64m", "busybox"]).memory == "64m"  # the last letter takes the next word
    assert parse(["run", "-w=/tmp", "--rm=false", "-d=true", "busybox"]).workdir == "/tmp"  # as docker takes them
    assert (parse(["run", "--rm=false", "-d=true", "busybox"]).rm, parse(["run", "-d=1", "busybox"]).detach) == (
        False,
        True,
    )
    assert parse(["commit", "-m", "-fix typo", "box"]).message == "-fix typo"  # the word after -m is its value


def test_everything_after_the_image_is_the_containers_command():
    args = parse(["run", "--rm", "busybox", "sh", "-c", "echo hi", "--rm", "-it"])
    assert args.command == ["sh", "-c", "echo hi", "--rm", "-it"] and args.rm
    assert parse(["run", "--", "busybox", "ls", "-l"]).command == ["ls", "-l"]
    assert parse(["exec", "-i", "web", "cat", "-n"]).command == ["cat", "-n"]


def test_defaults_choices_and_conversions():
    args = parse(["run", "busybox"])
    assert (args.pid, args.userns, args.net, args.env, args.memory, args.monotonic_offset) == (
        "private",
        "host",
        "none",
        [],
        None,
        0,
    )
    assert parse(["run", "--monotonic-offset", "-3600", "busybox"]).monotonic_offset == -3600
    assert parse(["run", "--network", "bridge", "busybox"]).net == "bridge"
    assert parse(["save", "-o", "-", "busybox"]).output == "-"  # standard output
    assert parse(["stop", "-t", "2.5", "a", "b"]).time == 2.5 and parse(["stop", "a"]).containers == ["a"]
    assert parse(["rm", "a", "-f"]).force  # options may follow the positionals where no command follows
    assert parse(["commit", "box"]).tag == "" and parse(["commit", "box", "img:v1"]).tag == "img:v1"
    network = parse(["network", "create", "--subnet", "10.9.0.0/24", "lab"])
    assert (network.cmd, network.action, network.subnet, network.name) == ("network", "create", "10.9.0.0/24", "lab")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--bogus", "busybox"], "unknown option --bogus"),
        (["run", "-ix", "busybox"], "unknown option -x in -ix"),
        (["run", "--name"], "--name needs a value: --name NAME"),
        (["run", "-h"], "-h needs a value: -h NAME (here -h is --hostname: --help shows the help)"),
        (["run", "--rm=yes", "busybox"], "--rm is a flag: --rm, --rm=true or --rm=false, not --rm=yes"),
        (["exec", "box"], "COMMAND is missing"),
        (["run", "--pid", "shared", "busybox"], "--pid 'shared': choose from host, private"),
        (["run", "--boottime-offset", "soon", "busybox"], "'soon' is not a whole number"),
        (["run", "--rm"], "IMAGE is missing"),
        (["stop"], "CONTAINERS is missing"),
        (["tag", "a", "b", "c"], "unexpected arguments: c"),
        (["network"], "ACTION is missing; one of: create, ls"),
        (["network", "make", "x"], "no action 'make'"),
        ([], "COMMAND is missing"),
        (["runn"], "no command 'runn'"),
        (["--bogus"], "unknown option --bogus"),
    ],
)
def test_mistakes_are_named(argv, says):
    with pytest.raises(UsageError) as raised:
        parse(argv)
    assert says in str(raised.value)


def test_help_is_asked_with_dash_h_except_in_run_where_it_is_the_hostname():
    with pytest.raises(HelpRequested):
        parse(["ps", "-h"])
    with pytest.raises(HelpRequested):
        parse(["run", "--help"])
    assert parse(["run", "-h", "box", "busybox"]).hostname == "box"
    text = command("run").help_text()
    assert text.startswith("usage: minibox run [OPTIONS] IMAGE [COMMAND [ARG...]]\n")
    assert "  -e, --env KEY=VALUE" in text and "--pid {host,private}" in text
    assert "\narguments:\n  IMAGE " in text and "\noptions:\n  --help " in text
    narrow = command("run").help_text(width=72)
    assert max(len(line) for line in narrow.splitlines()) <= 72  # long descriptions wrap


def test_the_command_line_prints_usage_and_exits_2(capsys):
    assert main(["ps", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "usage: minibox ps [OPTIONS]",
        "minibox ps: error: unknown option --bogus (see minibox ps --help)",
    ]
    assert main(["--help"]) == 0
    assert "  pull " in capsys.readouterr().out


def test_logs_tail_and_images_quiet():
    assert parse(["logs", "-n", "3", "box"]).tail == 3 and parse(["logs", "--tail=0", "-f", "box"]).tail == 0
    assert parse(["images", "-q"]).quiet
    with pytest.raises(UsageError, match="-n '-1' is not a whole number, 0 or more"):
        parse(["logs", "-n", "-1", "box"])
