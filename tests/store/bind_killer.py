"""Crash-test harness: leave device-bound mode and SIGKILL ourselves right after one step.

Run as `python bind_killer.py DATA_DIR STEP`; DATA_DIR holds a device-bound vault made by
test_binding.py. STEP names the point after which the process dies (see STEPS); "none" lets
the re-key finish (the random-moment test kills it from outside). Nothing in the store is
told: the kill is a real SIGKILL, so no finally block, no atexit and no SQLite close runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pigeon.store import binding, erase
from pigeon.store.binding import read_auto_passphrase
from pigeon.store.db import Database
from pigeon.store.keeper import DataDir, VaultKeeper
from pigeon.store.keys import Argon2Params

ARGON2 = Argon2Params(opslimit=1, memlimit_bytes=8192)
NEW_PASSPHRASE = "the owner's first passphrase"
# Where the process can die, in the order the re-key reaches them.
STEPS = (
    "write_intent",  # 1: the intent is on disk, the database untouched
    "journal_delete",  # inside 2: out of WAL, not re-keyed yet
    "rekey_pragma",  # inside 2: re-keyed and committed, still in rollback-journal mode
    "rekey",  # 2 done
    "zero_auto_unlock",  # inside 3: the device passphrase zeroed, not yet unlinked
    "shred_auto_unlock",  # 3 done
    "install_intent",  # 4 done
)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after(owner: Any, name: str, when: Callable[..., bool] = lambda *a: True) -> None:
    """Make `owner.name` SIGKILL the process once it returned (if `when` its arguments)."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(*args):
            die()
        return result

    setattr(owner, name, wrapper)


def arm(step: str) -> None:
    if step in ("write_intent", "shred_auto_unlock", "install_intent"):
        after(binding, step)
    elif step == "journal_delete":
        after(Database, "fetchone", lambda _db, sql, *_: "journal_mode = DELETE" in sql)
    elif step == "rekey_pragma":
        after(Database, "fetchone", lambda _db, sql, *_: sql.startswith("PRAGMA rekey"))
    elif step == "rekey":
        after(Database, "rekey")
    elif step == "zero_auto_unlock":
        after(erase, "_zero")
    elif step != "none":
        raise SystemExit(f"unknown step {step}")


def main(root: str, step: str) -> None:
    data_dir = DataDir(Path(root))
    keeper = VaultKeeper(data_dir, argon2=ARGON2)
    device = read_auto_passphrase(data_dir.auto_unlock)
    assert device is not None
    keeper.unlock(device)  # as a running device-bound node has it
    arm(step)
    print("rebinding", flush=True)  # the random-moment test kills from here on
    keeper.rebind(device, NEW_PASSPHRASE)
    keeper.lock()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
