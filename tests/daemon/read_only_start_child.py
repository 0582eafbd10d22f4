"""Run inside a user and mount namespace by tests/daemon/test_read_only_start.py: a whole node
(sim radio, PNG display, web page on loopback) on a tmpfs card, which stores a text, stops,
and starts again after the card turned read-only. Prints one JSON object."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from pigeon.config import load_config
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.mesh.packet import Packet, PacketType
from pigeon.mesh.receipt import receipt_hash
from pigeon.messenger.api import Messenger
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from tests.daemon.conftest import wait_until, write_node_config

WAIT_S = 60.0


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with the SHA-256 of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def envelope(now: float) -> Packet:
    return Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=b"N" * 8,
        expires_at_s=int(now + 3600),
        payload=b"ciphertext for a neighbour",
        receipt_hash=receipt_hash(b"r" * 16),
    )


async def started(
    config: Path, page_host: str | None = None
) -> tuple[Node, asyncio.Event, asyncio.Task[int]]:
    env = NodeEnvironment(notifier=Notifier({}), selftest=False, page_host=page_host)
    node = Node(load_config(config), env)
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    await asyncio.wait_for(node.ready.wait(), WAIT_S)
    await asyncio.wait_for(node.endpoint.vault_opened.wait(), WAIT_S)
    return node, stop, task


async def first_run(config: Path, robin_card: str) -> str:
    """Store one text for Robin; returns his contact id."""
    node, stop, task = await started(config)
    robin = node.messenger.add_contact(robin_card, "Robin", time.time())
    node.messenger.send_text(robin.id, "stored before the card locked", time.time())
    stop.set()
    assert await task == 0
    return robin.id


async def page_status(port: int) -> int:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"https://127.0.0.1:{port}/pair", ssl=insecure, allow_redirects=False) as r,
    ):
        return r.status


async def read_only_run(config: Path, robin_id: str) -> dict[str, object]:
    # A new name to answer to (as a new address after a reboot): the certificate would be
    # renewed, and cannot be written.
    node, stop, task = await started(config, page_host="pigeon-moved.local")
    out: dict[str, object] = {
        "card_problem": node.board.status().card_problem,
        "oled_error": node.board.view_state(time.monotonic()).error,
        "summary": node.board.summary(),
        "locked": node.messenger.is_locked,
        "texts": [v.text for v in node.messenger.conversation(robin_id)],
    }
    assert node.web_ports is not None
    out["page"] = await page_status(node.web_ports[0])
    try:
        node.messenger.send_text(robin_id, "written on a read-only card?", time.time())
        out["send"] = "sent"
    except Exception as exc:  # the typed error the page shows
        out["send"] = type(exc).__name__
    relayed = envelope(time.time())
    node.driver.local_send(relayed)
    await wait_until(
        lambda: any(
            c.packet.packet_id == relayed.packet_id for c in node.driver.router.carried_packets()
        ),
        WAIT_S,
    )
    out["relaying_from_memory"] = True
    await asyncio.sleep(1.0)  # the messenger ticks at once after the vault opened
    out["failures"] = {name: st.failures for name, st in node.supervisor.status().items()}
    stop.set()
    out["exit"] = await task
    out["stop_reason"] = node.stop_reason
    return out


def robin_card(root: Path) -> str:
    data = DataDir(root)
    robin = Messenger(
        VaultKeeper(data, argon2=Argon2Params(opslimit=1, memlimit_bytes=8192)),
        open_spool(data),
        rng=random.Random(7).randbytes,
    )
    robin.initialise("robin", time.time())
    return robin.own_card_text()


def main(root: Path) -> dict[str, object]:
    card = root / "card"
    card.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(card)], check=True)
    config = write_node_config(card)
    with tempfile.TemporaryDirectory() as robin_dir:
        robin_id = asyncio.run(first_run(config, robin_card(Path(robin_dir))))
    subprocess.run(["mount", "-o", "remount,ro", str(card)], check=True)
    before = snapshot(card)
    out = asyncio.run(read_only_run(config, robin_id))
    out["unchanged"] = snapshot(card) == before
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
