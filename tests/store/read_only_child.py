"""Run inside a user and mount namespace by tests/store/test_read_only.py: real SQLCipher vaults
on a tmpfs that is then remounted read-only, one closed cleanly and one copied while open (its
last commit only in the WAL, as a power cut leaves it). Prints one JSON object."""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from pigeon.store.db import DATABASE_SUFFIXES
from pigeon.store.errors import ReadOnlyStore
from pigeon.store.keys import DatabaseKey
from pigeon.store.vault import Vault
from pigeon.store.vault_records import Direction, Message, MessageState

KEY = DatabaseKey(secrets.token_bytes(32))


def write_texts(vault: Vault, count: int) -> None:
    with vault.transaction() as tx:
        tx.add_contact("robin", "Robin", b"card", 1.0)
    for n in range(count):
        with vault.transaction() as tx:
            tx.append_message(
                Message(f"m{n}", "robin", Direction.OUT, MessageState.QUEUED, 2.0, 2.0, f"text {n}")
            )


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with the SHA-256 of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_back(path: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    vault = Vault.open(path, KEY, create=False)
    out["texts"] = [m.body for m in vault.messages("robin", limit=10)]
    out["integrity"] = vault.integrity_check()
    try:
        with vault.transaction() as tx:
            tx.append_message(
                Message("new", "robin", Direction.OUT, MessageState.QUEUED, 3.0, 3.0, "refused")
            )
        out["write"] = "written"
    except ReadOnlyStore:
        out["write"] = "ReadOnlyStore"
    vault.close()
    return out


def main(root: Path) -> dict[str, object]:
    card = root / "card"
    card.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(card)], check=True)
    (card / "clean").mkdir()
    (card / "cut").mkdir()
    clean = Vault.open(card / "clean" / "vault.db", KEY, create=True)
    write_texts(clean, 3)
    clean.close()
    live = Vault.open(card / "live.db", KEY, create=True)
    write_texts(live, 3)
    for suffix in DATABASE_SUFFIXES:  # a power cut now: the last commits are in the WAL only
        source = card / f"live.db{suffix}"
        if source.exists():
            shutil.copyfile(source, card / "cut" / f"vault.db{suffix}")
    live.close()
    subprocess.run(["mount", "-o", "remount,ro", str(card)], check=True)
    before = snapshot(card)
    out: dict[str, object] = {
        "cut_files": sorted(p.name for p in (card / "cut").iterdir()),
        "clean": read_back(card / "clean" / "vault.db"),
        "cut": read_back(card / "cut" / "vault.db"),
    }
    try:
        Vault.open(card / "new.db", KEY, create=True)
        out["create"] = "created"
    except ReadOnlyStore:
        out["create"] = "ReadOnlyStore"
    out["unchanged"] = snapshot(card) == before
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
