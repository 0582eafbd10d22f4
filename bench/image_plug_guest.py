"""Traffic and ledger for the pulled-plug test, inside the flashed image (image/pulled-plugs.sh).

The traffic goes through the running node's own interfaces, never straight to its files:
- texts: the owner's web API of the running node (`POST /api/contacts/{id}/messages` over
  loopback HTTPS, with a paired browser's cookie); acknowledged when the API answered 201, which
  it does only once the vault transaction committed (`synchronous = FULL`);
- envelopes deposited for neighbours: the node's neighbourhood mailbox, `pigeon relay` on the
  card, through its WebSocket protocol (`pigeon.transport.relay_client`); acknowledged when the
  relay answered STORED, which it does only once the deposit's transaction committed. Under
  emulation the node's radio is the in-process simulated medium, so no neighbour outside the
  node's process can reach its mesh, and the mesh's own acknowledgement (the hop ack) is sent on
  receipt, before the once-a-minute spool persist: no mesh path in the guest acknowledges storage.

Subcommands (run as the node's user, `pigeon`):
`pair`: with the node stopped, pair a browser through the node's own pairing code (as the page's
  /pair does with the code the OLED shows; the emulated node has no OLED to read) and keep its
  token in DATA/token.
`setup`: add the contact Robin through the page's form (once; its id kept in DATA/contact).
`check`: after a boot, SQLite's integrity check on the relay's store, the node's spool and its
  vault; every text in Robin's conversation read back through the API and every envelope in the
  relay's store, each with how often it is stored and whether its bytes are whole (each text and
  envelope is derived from its client-side id, so a half-written one shows).
`traffic BOOT`: until QEMU is killed, alternately one text and a batch of envelopes, printing
  `ACK` for each only once its interface acknowledged it: the host reads the serial console as it
  goes, so what was acknowledged is known outside the machine that dies.
Lines: `PLUG: ACK T|E ID`, `PLUG: HAVE T|E ID COUNT whole|torn`,
`PLUG: INTEGRITY relay|spool|vault ok`, `PLUG: CHECKED ...`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from pigeon.crypto.card import ContactCard
from pigeon.crypto.identity import Identity
from pigeon.relay.storage import DB_FILE_NAME
from pigeon.store.binding import read_auto_passphrase
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.transport.relay_client import RelayBroken, RelayClient
from pigeon.ui.web.pairing import Pairing
from pigeon.ui.web.security import COOKIE_NAME
from pigeon.ui.web.session_file import FilePairingStore

DATA = Path(os.environ.get("PIGEON_PLUG_DATA", "/var/lib/pigeon-plug"))
NODE_DATA = Path(os.environ.get("PIGEON_PLUG_NODE_DATA", "/var/lib/pigeon"))
PAGE = os.environ.get("PIGEON_PLUG_PAGE", "https://localhost:8443")
RELAY = os.environ.get("PIGEON_PLUG_RELAY", "ws://127.0.0.1:8765/v1")
SESSIONS_FILE = "browsers.json"  # pigeon.daemon.node.SESSIONS_FILE
ENVELOPE_BYTES = 640  # a padded text envelope as the mesh carries it
BATCH = 5  # envelopes deposited at once (the relay commits what arrives together in one go)
MAILBOX_ENVELOPES = 500  # a new mailbox after this many (the relay holds 1,000 a mailbox)
TEXT_PREFIX = "plug"


def say(line: str) -> None:
    """One line to stdout (the serial console: image/guest-plug.sh), written out at once."""
    print(f"PLUG: {line}", flush=True)


def derived(ident: str, size: int) -> bytes:
    """The bytes stored under `ident`: a torn write cannot reproduce them."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{ident}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def text_body(ident: str) -> str:
    """The text sent under client id `ident`."""
    return f"{TEXT_PREFIX} {ident} {derived(ident, 24).hex()}"


def envelope_bytes(ident: bytes) -> bytes:
    """The envelope deposited under client id `ident` (16 bytes): the id, then derived bytes."""
    return ident + derived(ident.hex(), ENVELOPE_BYTES - len(ident))


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, synced with its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pair() -> None:
    """A paired browser's token, through the node's pairing code (node stopped)."""
    pairing = Pairing(FilePairingStore(NODE_DATA / SESSIONS_FILE))
    now = time.time()
    token = pairing.submit(pairing.start(now), now, "pulled-plug test")
    write_durably(DATA / "token", token.encode())


def session() -> aiohttp.ClientSession:
    """A client of the node's page: the paired cookie, the page's own origin, loopback TLS."""
    token = (DATA / "token").read_text().strip()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=False),  # loopback, to the node's self-signed cert
        headers={"Cookie": f"{COOKIE_NAME}={token}", "Origin": PAGE},
        timeout=aiohttp.ClientTimeout(total=600),
    )


async def wait_for_page(http: aiohttp.ClientSession) -> None:
    """Until the page answers (READY comes when it listens; be patient under emulation)."""
    for _ in range(300):
        try:
            async with http.get(f"{PAGE}/api/contacts") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(2)
    raise RuntimeError("the node's page did not answer")


async def setup() -> None:
    """Add the contact Robin through the page's form, once."""
    if (DATA / "contact").exists():
        return
    card = ContactCard.create(Identity.generate(), relays=[], name="Robin").to_text()
    async with session() as http:
        await wait_for_page(http)
        form = {"name": "Robin", "card": card}
        async with http.post(f"{PAGE}/contacts", data=form, allow_redirects=False) as response:
            location = response.headers.get("Location", "")
            if response.status != 303 or not location.startswith("/contacts/"):
                raise RuntimeError(f"adding Robin: {response.status} {await response.text()}")
    write_durably(DATA / "contact", location.split("/")[2].split("?")[0].encode())


async def read_texts(http: aiohttp.ClientSession, contact: str) -> list[str]:
    """Every text in Robin's conversation, through the API, paging back from the newest."""
    texts: list[str] = []
    before = ""
    while True:
        url = f"{PAGE}/api/contacts/{contact}/messages?limit=200{before}"
        async with http.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"reading texts: {response.status} {await response.text()}")
            page: list[dict[str, Any]] = (await response.json())["messages"]
        if not page:
            return texts
        texts.extend(str(m["text"]) for m in page if m["direction"] == "out")
        before = f"&before={min(int(m['seq']) for m in page)}"


def _relay_rows() -> tuple[list[str], list[bytes]]:
    """The relay store's integrity check and every envelope in it (relay not running)."""
    path = DATA / "relay" / DB_FILE_NAME
    if not path.exists():
        return ["ok"], []
    db = sqlite3.connect(path)
    try:
        integrity = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
        rows = [bytes(row[0]) for row in db.execute("SELECT ciphertext FROM envelopes")]
    finally:
        db.close()
    return integrity, rows


def _node_integrity() -> None:
    """SQLite's integrity check on the node's spool and vault (the vault by the device key)."""
    data_dir = DataDir(NODE_DATA)
    spool = open_spool(data_dir)
    try:
        say(f"INTEGRITY spool {' '.join(spool.integrity_check())}")
    finally:
        spool.close()
    passphrase = read_auto_passphrase(data_dir.auto_unlock)
    if passphrase is None:
        say("INTEGRITY vault not device-bound")
        return
    keeper = VaultKeeper(data_dir)
    try:
        say(f"INTEGRITY vault {' '.join(keeper.unlock(passphrase).integrity_check())}")
    finally:
        keeper.lock()


def text_counts(bodies: list[str]) -> tuple[Counter[str], list[str]]:
    """How often each text id is stored whole, and the ids (or "?") of torn ones."""
    counts: Counter[str] = Counter()
    torn: list[str] = []
    for body in bodies:
        words = body.split(" ")
        if len(words) == 3 and words[0] == TEXT_PREFIX and body == text_body(words[1]):
            counts[words[1]] += 1
        else:
            torn.append(words[1] if len(words) > 1 else "?")
    return counts, torn


async def check() -> None:
    """Print integrity and every stored id with its count and wholeness."""
    integrity, rows = _relay_rows()
    say(f"INTEGRITY relay {' '.join(integrity)}")
    _node_integrity()
    envelopes: Counter[str] = Counter()
    torn = 0
    for ciphertext in rows:
        ident = ciphertext[:16]
        if ciphertext == envelope_bytes(ident):
            envelopes[ident.hex()] += 1
        else:
            torn += 1
            say(f"HAVE E {ident.hex()} 1 torn")
    for ident_hex, count in sorted(envelopes.items()):
        say(f"HAVE E {ident_hex} {count} whole")
    async with session() as http:
        await wait_for_page(http)
        texts = await read_texts(http, (DATA / "contact").read_text().strip())
    counts, torn_texts = text_counts(texts)
    torn += len(torn_texts)
    for text_id in torn_texts:
        say(f"HAVE T {text_id} 1 torn")
    for text_id, count in sorted(counts.items()):
        say(f"HAVE T {text_id} {count} whole")
    say(f"CHECKED {len(counts)} texts {len(envelopes)} envelopes {torn} torn")


async def _send_text(http: aiohttp.ClientSession, contact: str, ident: str) -> None:
    """One text through the owner's API; returns once the API answered 201 (stored)."""
    url = f"{PAGE}/api/contacts/{contact}/messages"
    async with http.post(url, json={"text": text_body(ident)}) as response:
        if response.status != 201:
            raise RuntimeError(f"sending a text: {response.status} {await response.text()}")


async def _deposit(relay: RelayClient, mailbox: bytes, ident: bytes) -> str:
    """One envelope at the relay; returns its id once the relay answered STORED."""
    await relay.deposit(mailbox, envelope_bytes(ident))
    return ident.hex()


async def traffic(boot: str) -> None:
    """Texts and envelope batches, alternating, each acknowledged once stored; never ends."""
    contact = (DATA / "contact").read_text().strip()
    relay = RelayClient(RELAY)
    mailbox = Identity.generate().public_key  # the relay takes Ed25519 mailbox keys only
    deposited = 0
    for _ in range(300):  # the relay starts beside this, slowly under emulation
        try:
            await relay.connect()
            break
        except RelayBroken:
            await asyncio.sleep(2)
    async with session() as http:
        n = 0
        while True:
            ident = f"{boot}-{n}"
            await _send_text(http, contact, ident)
            say(f"ACK T {ident}")
            if deposited >= MAILBOX_ENVELOPES:
                mailbox, deposited = Identity.generate().public_key, 0
            batch = [_deposit(relay, mailbox, secrets.token_bytes(16)) for _ in range(BATCH)]
            for done in asyncio.as_completed(batch):
                say(f"ACK E {await done}")
            deposited += BATCH
            n += 1


def main(argv: list[str]) -> None:
    """`pair`, `setup`, `check` or `traffic BOOT`."""
    if argv[0] == "pair":
        pair()
    elif argv[0] == "setup":
        asyncio.run(setup())
    elif argv[0] == "check":
        asyncio.run(check())
    elif argv[0] == "traffic":
        asyncio.run(traffic(argv[1]))
    else:
        raise SystemExit(f"unknown subcommand {argv[0]}: {json.dumps(argv)}")


if __name__ == "__main__":
    main(sys.argv[1:])
