"""The `pigeon` command: one subcommand per job, each implemented by the room that owns it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Final, NamedTuple, Protocol, cast

from pigeon import __version__

DESCRIPTION: Final = (
    "Pigeon Node: a mesh relay and end-to-end encrypted messenger for a Raspberry Pi."
    " Try `pigeon demo` (what `make run` starts) for a simulated neighbourhood."
)


class Subcommand(NamedTuple):
    """Where a subcommand lives, and the one line `pigeon --help` says about it (equal to the
    module's `HELP`, which a test checks, so the summary is shown without importing it)."""

    module: str
    summary: str


# Subcommand name -> module exposing `HELP: str`, `add_arguments(parser)` and `run(args) -> int`.
# Modules are imported only when their subcommand runs, so `pigeon --help` stays fast and
# hardware libraries are never loaded by a command that does not need them.
COMMANDS: Final[dict[str, Subcommand]] = {
    "demo": Subcommand(
        "pigeon.daemon.demo",
        "run a simulated neighbourhood: your node's web page on https://localhost:8443",
    ),
    "node": Subcommand(
        "pigeon.daemon.command",
        "run the node: radio, router, messenger, relays, OLED and web page (systemd-ready)",
    ),
    "relay": Subcommand("pigeon.relay.command", "run the blind mailbox relay (WebSocket server)"),
    "card": Subcommand(
        "pigeon.crypto.card_command",
        "verify a pasted contact card, or print a throwaway one (`pigeon card new`)",
    ),
    "sim": Subcommand(
        "pigeon.sim.command", "simulate a neighbourhood of mesh nodes and measure delivery"
    ),
    "selftest": Subcommand(
        "pigeon.crypto.selftest_command",
        "run known-answer tests of every crypto piece; exit 1 on any failure",
    ),
}


class _Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def load(name: str) -> _Command:
    """The module of subcommand `name`."""
    return cast(_Command, importlib.import_module(COMMANDS[name].module))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="pigeon", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"pigeon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, entry in COMMANDS.items():
        parser_of = sub.add_parser(name, help=entry.summary, description=entry.summary)
        if name == chosen:
            load(name).add_arguments(parser_of)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pigeon` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return load(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
