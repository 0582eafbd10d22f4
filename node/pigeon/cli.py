"""The `pigeon` command: one subcommand per job, each implemented by the room that owns it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from pigeon import __version__

# Subcommand name -> module exposing `HELP: str`, `add_arguments(parser)` and `run(args) -> int`.
# Modules are imported only when their subcommand runs, so `pigeon --help` stays fast and
# hardware libraries are never loaded by a command that does not need them.
COMMANDS: dict[str, str] = {
    "selftest": "pigeon.crypto.selftest_command",
    "card": "pigeon.crypto.card_command",
    "relay": "pigeon.relay.command",
    "sim": "pigeon.sim.command",
    "node": "pigeon.daemon.command",
    "demo": "pigeon.daemon.demo",
}


class _Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(COMMANDS[name]))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="pigeon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pigeon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name in COMMANDS:
        if name == chosen:
            command = _load(name)
            command.add_arguments(sub.add_parser(name, help=command.HELP, description=command.HELP))
        else:
            sub.add_parser(name, help=f"see `pigeon {name} --help`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pigeon` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _load(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
