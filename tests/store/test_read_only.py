"""A card already read-only when the node starts: the stores open for reading, write nothing.

Real SQLCipher files on a tmpfs remounted read-only inside a user and mount namespace
(`unshare -rm`, as tests/daemon/test_card.py), in tests/store/read_only_child.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.test_card import namespaces_available

CHILD = Path(__file__).with_name("read_only_child.py")


@pytest.mark.skipif(not namespaces_available(), reason="no user and mount namespaces (unshare)")
def test_a_vault_on_a_read_only_card_opens_for_reading_and_writes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, str(CHILD), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    texts = ["text 0", "text 1", "text 2"]
    assert out["clean"] == {"texts": texts, "integrity": ["ok"], "write": "ReadOnlyStore"}
    # Cut short: the WAL holds commits the main file lacks, and they are read, not lost.
    assert "vault.db-wal" in out["cut_files"]
    assert out["cut"] == {"texts": texts, "integrity": ["ok"], "write": "ReadOnlyStore"}
    assert out["create"] == "ReadOnlyStore"
    assert out["unchanged"]  # not a byte written, no file created
