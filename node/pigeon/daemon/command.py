"""`pigeon node`: run the node daemon from a config file until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from pigeon.config import ConfigError, NodeConfig, load_config

HELP = "run the node: radio, router, messenger, relays, OLED and web page (systemd-ready)"

EXIT_CONFIG = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` (default /etc/pigeon/node.toml)."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        default=Path("/etc/pigeon/node.toml"),
        help="node configuration (see config/node.toml); default %(default)s",
    )


def run(args: argparse.Namespace) -> int:
    """Load the config, then run the node until a signal; the exit status says how it ended."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"pigeon node: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(config.log.level.upper())
    return asyncio.run(_main(config))


async def _main(config: NodeConfig) -> int:
    from pigeon.daemon.node import Node  # the node's imports are paid only by this command

    node = Node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        code = await node.run(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    if code != 0:
        print(f"pigeon node: {node.stop_reason}", file=sys.stderr)
    node.notifier.close()
    return code
