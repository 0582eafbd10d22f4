"""Crash-test harness: unlock a vault made with 4 KiB pages (so it is repaged) until killed.

Run as `python repage_killer.py DATA_DIR`; tests/store/test_page_size.py SIGKILLs it at a
random moment after it printed "unlocking".
"""

from __future__ import annotations

import sys
from pathlib import Path

from pigeon.store.keeper import DataDir, VaultKeeper
from pigeon.store.keys import Argon2Params

# As tests/store/conftest.py (a script cannot import the tests package).
CHEAP_ARGON2 = Argon2Params(opslimit=1, memlimit_bytes=8192)
PASSPHRASE = "correct horse battery staple"


def main(root: str) -> None:
    keeper = VaultKeeper(DataDir(Path(root)), argon2=CHEAP_ARGON2)
    print("unlocking", flush=True)
    keeper.unlock(PASSPHRASE)
    keeper.lock()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
