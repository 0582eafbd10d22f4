"""Run inside a user and mount namespace by tests/daemon/test_card.py: a real SQLCipher spool on
a small tmpfs that fills up, then a tmpfs remounted read-only. Prints one JSON object."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

from pigeon.daemon.card import persist_guarded, probe
from pigeon.daemon.spool_sync import SpoolSync
from pigeon.mesh.events import LocalSend
from pigeon.mesh.packet import Packet, PacketType
from pigeon.mesh.receipt import receipt_hash
from pigeon.mesh.router import Router, RouterConfig
from pigeon.store.keeper import DataDir, open_spool


def envelope(name: bytes, now: float) -> Packet:
    return Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=b"T" * 8,
        expires_at_s=int(now + 3600),
        payload=b"ciphertext " + name * 200,
        receipt_hash=receipt_hash(b"s" * 16),
    )


def fill(path: Path) -> None:
    """Write `path` until the file system refuses (ENOSPC)."""
    try:
        with path.open("wb") as filler:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
    except OSError:
        pass


def main(root: Path) -> dict[str, object]:
    card = root / "card"
    card.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(card)], check=True)
    data_dir = DataDir(card)
    now = time.time()
    spool = open_spool(data_dir)
    router = Router(RouterConfig(), random.Random(1))
    first = envelope(b"a", now)
    router.handle(LocalSend(first), now)
    sync = SpoolSync(router, spool)
    out: dict[str, object] = {"before": persist_guarded(sync, card, now).value}
    fill(card / "filler")
    second = envelope(b"b", now)
    router.handle(LocalSend(second), now + 1)
    out["full"] = persist_guarded(sync, card, now + 60).value
    out["stored_while_full"] = sorted(e.packet_id.hex() for e in spool.entries())
    out["carried_while_full"] = sorted(c.packet.packet_id.hex() for c in router.carried_packets())
    out["integrity_while_full"] = spool.integrity_check()
    (card / "filler").unlink()
    out["after"] = persist_guarded(sync, card, now + 120).value
    out["stored_after"] = sorted(e.packet_id.hex() for e in spool.entries())
    out["ids"] = [first.packet_id.hex(), second.packet_id.hex()]
    # Read-only: ext4 remounts a failing card read-only under open files; a mount in use
    # cannot be remounted here, so the idle node's persist runs against a card that is.
    locked = root / "locked"
    locked.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(locked)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(locked)], check=True)
    out["probe_read_only"] = probe(locked).value
    out["idle_read_only"] = persist_guarded(sync, locked, now + 180).value
    spool.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
