"""The ``minibox`` command line's own small argument parser (no kernel mechanism here).

Why not ``argparse``: importing it brings ``re`` and with it ``enum``, and building a parser
compiles regular expressions: together ~6 ms of every ``minibox run``, a quarter of what runc
takes for a whole container. minibox's commands need only a few shapes, written the way docker
users type them:

- flags: ``-d``, ``--rm``, ``--rm=false``; short flags combine: ``-it``;
- options with a value: ``--name web``, ``--name=web``, ``-e KEY=V``, ``-eKEY=V``, ``-w=/tmp``;
  the word after an option that wants a value is its value, even ``-x`` (as docker takes it);
  repeatable ones collect a list (``-e A=1 -e B=2``); some only take ``choices``;
- positionals: one, an optional one, one or more, or the *rest of the line* (``run IMAGE
  COMMAND...``: everything after the image belongs to the container's command, options included);
- sub-commands (``minibox network create``).

Mistakes raise ``UsageError``; the command line prints the usage and one line naming the problem
and exits with 2, as argparse did.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `collections.abc` costs ~1 ms to import, for annotations only
    from collections.abc import Callable, Sequence


class UsageError(Exception):
    def __init__(self, command: Command, message: str) -> None:
        super().__init__(message)
        self.command = command


class HelpRequested(Exception):  # noqa: N818 -- not an error: --help was asked for
    def __init__(self, command: Command) -> None:
        super().__init__(command.prog)
        self.command = command


class Args:
    """What was parsed: one attribute per option and positional (``args.detach``, ``args.image``)."""

    def __repr__(self) -> str:
        return f"Args({vars(self)})"


class Option:
    """``-e, --env`` (names separated by ", "). ``value`` is the placeholder shown in help (e.g.
    ``KEY=VALUE``); without one it is a flag. ``repeat`` collects every use in a list."""

    def __init__(self, names: str, help: str = "", *, value: str = "", default: object = None, repeat: bool = False,
                 choices: Sequence[str] = (), convert: Callable[[str], object] | None = None,
                 expects: str = "") -> None:  # fmt: skip
        self.names = names.split(", ")
        long_names = [name for name in self.names if name.startswith("--")] or self.names
        self.dest = long_names[0].lstrip("-").replace("-", "_")  # --net, --network: args.net
        self.help, self.value, self.repeat, self.choices = help, value, repeat, tuple(choices)
        self.convert = convert
        # what ``convert`` takes, for its error (int's and float's are known)
        self.expects = expects or {int: "a whole number", float: "a number"}.get(convert, "valid")
        if choices and not value:
            self.value = "{" + ",".join(choices) + "}"
        self.default = [] if repeat else (False if not self.value else default)

    def label(self) -> str:
        return ", ".join(self.names) + (f" {self.value}" if self.value else "")


class Arg:
    """A positional argument; ``many``: one or more; ``optional``: zero or one; ``rest``: every
    word after the previous positionals, options included (the container's command)."""

    def __init__(self, name: str, help: str = "", *, many: bool = False, optional: bool = False,
                 rest: bool = False, required: bool = False, default: object = None) -> None:  # fmt: skip
        self.dest, self.help, self.many, self.optional, self.rest = name, help, many, optional, rest
        self.required = required  # for ``rest``: at least one word (exec's COMMAND; run's is optional)
        self.default = [] if (many or rest) else default

    def label(self) -> str:
        name = self.dest.upper()
        if self.rest:
            return f"{name} [ARG...]" if self.required else f"[{name} [ARG...]]"
        if self.many:
            return f"{name} [{name}...]"
        return f"[{name}]" if self.optional else name


class Command:
    """One command (``run``), or one action of a command with actions (``network create``)."""

    def __init__(self, prog: str, help: str, options: Sequence[Option] = (), args: Sequence[Arg] = (),
                 actions: Sequence[Command] = (), help_flags: tuple[str, ...] = ("-h", "--help"),
                 action_word: str = "ACTION") -> None:  # fmt: skip
        self.prog, self.help, self.options, self.args = prog, help, list(options), list(args)
        self.actions = {action.prog.rsplit(" ", 1)[-1]: action for action in actions}
        self.help_flags, self.action_word = help_flags, action_word
        self._by_name = {name: option for option in self.options for name in option.names}

    # ---- parsing ----

    def parse(self, words: Sequence[str]) -> Args:
        args = Args()
        for option in self.options:
            setattr(args, option.dest, list(option.default) if option.repeat else option.default)
        if self.actions:
            return self._parse_action(words, args)
        positionals: list[str] = []
        rest: list[str] | None = None
        i = 0
        while i < len(words):
            word = words[i]
            i += 1
            if self._rest_starts(positionals):
                rest = list(words[i - 1 :])
                break
            if word in self.help_flags:
                raise HelpRequested(self)
            if word == "--":
                positionals += words[i:]
                break
            if word.startswith("--"):
                name, has_value, value = word.partition("=")
                option = self._option(name)
                if option.value and not has_value:
                    value, i = self._next_value(option, name, words, i)
                self._store(args, option, name, value if has_value or option.value else "true")
            elif _looks_like_an_option(word):
                i = self._parse_short_flags(args, word, words, i)
            else:
                positionals.append(word)
        self._assign_positionals(args, positionals, rest)
        return args

    def _parse_action(self, words: Sequence[str], args: Args) -> Args:
        if not words or words[0] in self.help_flags:
            if words:
                raise HelpRequested(self)
            raise UsageError(self, f"{self.action_word} is missing; one of: {', '.join(self.actions)}")
        action = self.actions.get(words[0])
        if action is None and words[0].startswith("-"):
            raise UsageError(self, f"unknown option {words[0]} (see {self.prog} --help)")
        if action is None:
            raise UsageError(self, f"no {self.action_word.lower()} {words[0]!r}; one of: {', '.join(self.actions)}")
        parsed = action.parse(words[1:])
        parsed.action = words[0]
        return parsed

    def _rest_starts(self, positionals: list[str]) -> bool:
        """True once every positional before a ``rest`` one has its word: the rest is the command."""
        return bool(self.args) and self.args[-1].rest and len(positionals) == len(self.args) - 1

    def _option(self, name: str) -> Option:
        option = self._by_name.get(name)
        if option is None:
            raise UsageError(self, f"unknown option {name} (see {self.prog} --help)")
        return option

    def _next_value(self, option: Option, name: str, words: Sequence[str], i: int) -> tuple[str, int]:
        if i >= len(words):
            hostname = name == "-h" and "-h" not in self.help_flags  # run: `minibox run -h` meant help?
            hint = " (here -h is --hostname: --help shows the help)" if hostname else ""
            raise UsageError(self, f"{name} needs a value: {name} {option.value}{hint}")
        return words[i], i + 1

    def _parse_short_flags(self, args: Args, word: str, words: Sequence[str], i: int) -> int:
        """``-it`` is ``-i -t``; ``-eKEY=V`` is ``-e KEY=V``; the last letter may take the next word."""
        for at in range(1, len(word)):
            name = "-" + word[at]
            option = self._by_name.get(name)
            if option is None:
                where = "" if len(word) == 2 else f" in {word}"
                raise UsageError(self, f"unknown option {name}{where} (see {self.prog} --help)")
            attached = word[at + 1 :]
            if not option.value and not attached.startswith("="):
                self._store(args, option, name, "true")
                continue
            if attached:  # -eKEY=V, -w=/tmp, -d=false
                self._store(args, option, name, attached.removeprefix("="))
            else:
                value, i = self._next_value(option, name, words, i)
                self._store(args, option, name, value)
            break
        return i

    def _store(self, args: Args, option: Option, name: str, text: str) -> None:
        if not option.value:  # a flag: --rm, or --rm=true / --rm=false as docker takes them
            if text.lower() not in ("true", "false", "1", "0"):
                raise UsageError(self, f"{name} is a flag: {name}, {name}=true or {name}=false, not {name}={text}")
            setattr(args, option.dest, text.lower() in ("true", "1"))
            return
        if option.choices and text not in option.choices:
            raise UsageError(self, f"{name} {text!r}: choose from {', '.join(option.choices)}")
        value: object = text
        if option.convert is not None:
            try:
                value = option.convert(text)
            except ValueError:
                raise UsageError(self, f"{name} {text!r} is not {option.expects}") from None
        if option.repeat:
            getattr(args, option.dest).append(value)
        else:
            setattr(args, option.dest, value)

    def _assign_positionals(self, args: Args, words: list[str], rest: list[str] | None) -> None:
        if self.args and self.args[-1].rest and rest is None:  # `run -- IMAGE COMMAND...`
            before_rest = len(self.args) - 1
            words, rest = words[:before_rest], words[before_rest:]
        for arg in self.args:
            if arg.rest:
                if arg.required and not rest:
                    raise UsageError(self, f"{arg.dest.upper()} is missing (see {self.prog} --help)")
                setattr(args, arg.dest, rest or [])
            elif arg.many:
                if not words:
                    raise UsageError(self, f"{arg.dest.upper()} is missing (see {self.prog} --help)")
                setattr(args, arg.dest, words)
                words = []
            elif words:
                setattr(args, arg.dest, words.pop(0))
            elif arg.optional:
                setattr(args, arg.dest, arg.default)
            else:
                raise UsageError(self, f"{arg.dest.upper()} is missing (see {self.prog} --help)")
        if words:
            raise UsageError(self, f"unexpected arguments: {' '.join(words)} (see {self.prog} --help)")

    # ---- help ----

    def usage_line(self) -> str:
        if self.actions:
            return f"{self.prog} {self.action_word} ..."
        return " ".join([self.prog, *(["[OPTIONS]"] if self.options else []), *(a.label() for a in self.args)])

    def help_text(self, width: int = 100) -> str:
        """``--help``: the usage, what the command does, then its commands or arguments, and its
        options, each described, wrapped to ``width`` columns."""
        sections = []
        if self.actions:
            sections.append((f"{self.action_word.lower()}s", [(a, self.actions[a].help) for a in self.actions]))
        arguments = [(arg.dest.upper(), arg.help) for arg in self.args if arg.help]
        if arguments:
            sections.append(("arguments", arguments))
        options = [(", ".join(self.help_flags), "show this help and exit")]
        options += [(option.label(), option.help) for option in self.options]
        sections.append(("options", options))
        column = min(max(len(label) for _, rows in sections for label, _ in rows) + 4, 32)
        lines = [f"usage: {self.usage_line()}", "", self.help]
        for title, rows in sections:
            lines += ["", f"{title}:"]
            for label, text in rows:
                wrapped = _wrap(text, max(width - column, 30))
                if len(label) + 4 > column:  # a long label: its text starts on the next line
                    lines.append(f"  {label}")
                    wrapped = [""] if not wrapped else wrapped
                    lines += [f"{'':{column}}{line}" for line in wrapped]
                else:
                    lines.append(f"  {label:{column - 2}}{wrapped[0] if wrapped else ''}")
                    lines += [f"{'':{column}}{line}" for line in wrapped[1:]]
        return "\n".join(lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    """Words into lines of at most ``width`` characters (textwrap would import ``re``)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _looks_like_an_option(word: str) -> bool:
    """``-d``, ``--rm``; not ``-`` (standard input or output) nor ``-3600`` (a negative offset)."""
    return word.startswith("-") and len(word) > 1 and not word[1:].replace(".", "", 1).isdigit()
