"""The start-up self-test: `pigeon selftest`'s check table, run in-process before anything else."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pigeon.daemon.supervisor import describe

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SelftestResult:
    """Which checks failed (name and a short reason) and how long the table took."""

    failures: tuple[tuple[str, str], ...]
    duration_s: float

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return not self.failures


def default_checks() -> Mapping[str, Callable[[], None]]:
    """The table `pigeon selftest` runs (imported here, so only a starting node pays for it)."""
    from pigeon.crypto.selftest_command import CHECKS

    return CHECKS


def run_selftest(checks: Mapping[str, Callable[[], None]] | None = None) -> SelftestResult:
    """Run every check, logging failures; never raises for a failing check."""
    started = time.perf_counter()
    failures: list[tuple[str, str]] = []
    for name, check in (default_checks() if checks is None else checks).items():
        try:
            check()
        except Exception as exc:  # a self-test reports every failure, whatever raised it
            failures.append((name, describe(exc)))
            _LOGGER.error("self-test %s failed: %s", name, describe(exc))
    duration = time.perf_counter() - started
    _LOGGER.info("self-test: %d failed, %.0f ms", len(failures), duration * 1000)
    return SelftestResult(tuple(failures), duration)
