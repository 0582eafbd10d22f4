"""A card that locks itself, for the stores' read-only checks (vault and spool, and the relay)."""

from __future__ import annotations

from pathlib import Path


class CardLocks:
    """Stands in for statvfs's read-only flag: the card turns read-only from the chosen check
    on (a file system cannot be remounted read-only under open files without root)."""

    def __init__(self, at_check: int) -> None:
        self.checks = 0
        self.at_check = at_check

    def __call__(self, directory: Path) -> bool:
        self.checks += 1
        return self.checks >= self.at_check
