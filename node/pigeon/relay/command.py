"""`pigeon relay`: run the blind mailbox relay until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from pathlib import Path

from pigeon.relay.config import (
    RelayConfig,
    RelayConfigError,
    check_signed_urls,
    check_store,
    load_relay_config,
    split_listen,
)
from pigeon.relay.server import start_relay
from pigeon.relay.storage import StorageError

_LOGGER = logging.getLogger(__name__)

HELP = "run the blind mailbox relay (WebSocket server)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pigeon relay`; flags override the file."""
    parser.add_argument("--config", type=Path, help="relay TOML file (default: built-in defaults)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to bind (port 0: any)")
    parser.add_argument("--data", type=Path, metavar="DIR", help="directory of the envelope store")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="postgresql:// URL of a store several relays share (put passwords in PGPASSFILE)",
    )


def run(args: argparse.Namespace) -> int:
    """Start the relay and serve until a stop signal; returns the exit status."""
    try:
        config = _config_from(args)
    except RelayConfigError as exc:
        _LOGGER.error("%s", exc)
        return 2
    try:
        asyncio.run(_serve(config))
    except (StorageError, OSError) as exc:
        _LOGGER.error("relay cannot start: %s", exc)
        return 1
    return 0


def _config_from(args: argparse.Namespace) -> RelayConfig:
    config = load_relay_config(args.config) if args.config else RelayConfig()
    if args.listen:
        split_listen(args.listen)
        config = dataclasses.replace(config, listen=args.listen)
    if args.data:
        config = dataclasses.replace(config, data_dir=str(args.data))
    if args.store:
        check_store(args.store)
        config = dataclasses.replace(config, store=args.store)
    check_signed_urls(config)
    return config


async def _serve(config: RelayConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    running = await start_relay(config)
    try:
        await stop.wait()
    finally:
        await running.aclose()
