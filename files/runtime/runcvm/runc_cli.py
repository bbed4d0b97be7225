"""runc's command line as containerd gives it to the runtime, read as little as the wrapper needs:
the global options, the subcommand and a few of its options."""

from __future__ import annotations

import os
import typing as t

# Global runc options that take a value; every other leading option is a flag.
VALUE_OPTIONS = {"--log", "--log-format", "--root", "--criu", "--rootless"}


class WrapperError(Exception):
    """What the runtime refuses or cannot do, said to the user as runc's own errors are."""


def global_options(argv: t.Sequence[str]) -> tuple[dict[str, str], int]:
    """The global options before the subcommand, and the subcommand's index in argv."""
    options: dict[str, str] = {}
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        name, equals, value = argv[index].partition("=")
        if name in VALUE_OPTIONS and not equals:
            index += 1
            value = argv[index] if index < len(argv) else ""
        options[name] = value
        index += 1
    return options, index


def subcommand(argv: t.Sequence[str]) -> str | None:
    index = global_options(argv)[1]
    return argv[index] if index < len(argv) else None


def subcommand_option(argv: t.Sequence[str], names: tuple[str, ...]) -> str | None:
    """The value of the subcommand's option `names` (`--name value` or `--name=value`)."""
    index = global_options(argv)[1] + 1
    while index < len(argv):
        name, equals, value = argv[index].partition("=")
        if name in names:
            if not equals and index + 1 == len(argv):
                raise WrapperError(f"{name} needs a value")
            return value if equals else argv[index + 1]
        index += 1
    return None


def with_subcommand_option(argv: list[str], names: tuple[str, ...], value: str) -> list[str]:
    """argv with the value of the subcommand's option `names`, which it has, replaced."""
    index = global_options(argv)[1] + 1
    while index < len(argv):
        name, equals, _value = argv[index].partition("=")
        if name in names:
            if equals:
                return [*argv[:index], f"{name}={value}", *argv[index + 1:]]
            return [*argv[:index + 1], value, *argv[index + 2:]]
        index += 1
    raise WrapperError(f"no {names[0]} to replace")


def bundle_dir(argv: t.Sequence[str]) -> str:
    """--bundle/-b of `create`, else the current directory, as runc does."""
    return subcommand_option(argv, ("--bundle", "-b")) or os.getcwd()


def process_file(argv: t.Sequence[str]) -> str | None:
    """--process/-p of `exec`."""
    return subcommand_option(argv, ("--process", "-p"))
