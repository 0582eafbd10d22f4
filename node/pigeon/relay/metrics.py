"""Relay counters and their Prometheus text exposition: counts only, never keys or addresses."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pigeon.relay.protocol import ErrorCode


@dataclass(frozen=True, slots=True)
class Gauges:
    """Point-in-time values sampled when /metrics is read."""

    connections: int
    readers: int
    app_readers: int
    stored_envelopes: int
    stored_bytes: int
    mailboxes: int
    queued_writes: int
    tracked_ips: int
    store_commits: int
    live_queued_bytes: int


class Metrics:
    """Monotonic counters of one relay process."""

    def __init__(self) -> None:
        self.connections_total = 0
        self.deposits_stored_total = 0
        self.deposits_duplicate_total = 0
        self.reads_authenticated_total = 0
        self.envelopes_delivered_total = 0
        self.envelopes_deleted_total = 0
        self.envelopes_purged_total = 0
        self.live_queue_overflows_total = 0
        self.errors_total: Counter[ErrorCode] = Counter()
        # The Pigeon app's endpoint (/ws).
        self.app_connections_total = 0
        self.app_publishes_stored_total = 0
        self.app_publishes_duplicate_total = 0
        self.app_reads_authenticated_total = 0
        self.app_auth_failures_total = 0
        self.app_envelopes_delivered_total = 0
        self.app_envelopes_deleted_total = 0
        self.app_errors_total: Counter[str] = Counter()  # by message (fixed texts only)

    def render(self, gauges: Gauges) -> str:
        """The Prometheus text format (version 0.0.4) of every counter and `gauges`."""
        lines: list[str] = []
        _add(
            lines,
            "connections_total",
            "counter",
            "WebSocket connections accepted",
            [("", self.connections_total)],
        )
        _add(
            lines,
            "deposits_total",
            "counter",
            "deposits answered STORED",
            [
                ('{result="new"}', self.deposits_stored_total),
                ('{result="duplicate"}', self.deposits_duplicate_total),
            ],
        )
        _add(
            lines,
            "reads_authenticated_total",
            "counter",
            "successful mailbox logins",
            [("", self.reads_authenticated_total)],
        )
        _add(
            lines,
            "envelopes_delivered_total",
            "counter",
            "ENVELOPE frames sent",
            [("", self.envelopes_delivered_total)],
        )
        _add(
            lines,
            "envelopes_deleted_total",
            "counter",
            "envelopes deleted on ACK",
            [("", self.envelopes_deleted_total)],
        )
        _add(
            lines,
            "envelopes_purged_total",
            "counter",
            "envelopes deleted for age",
            [("", self.envelopes_purged_total)],
        )
        _add(
            lines,
            "live_queue_overflows_total",
            "counter",
            "times a slow reader's live queue overflowed and the reader paged from the store",
            [("", self.live_queue_overflows_total)],
        )
        _add(
            lines,
            "store_commits_total",
            "counter",
            "storage transactions committed (deposits per commit shows group commit at work)",
            [("", gauges.store_commits)],
        )
        _add(
            lines,
            "errors_total",
            "counter",
            "ERROR frames sent, by code",
            [(f'{{code="{code.name}"}}', self.errors_total[code]) for code in ErrorCode],
        )
        self._render_app(lines)
        for name, value, help_text in (
            ("connections", gauges.connections, "open WebSocket connections"),
            ("readers", gauges.readers, "authenticated readers"),
            ("app_readers", gauges.app_readers, "authenticated Pigeon app subscriptions (/ws)"),
            ("stored_envelopes", gauges.stored_envelopes, "envelopes held"),
            ("stored_bytes", gauges.stored_bytes, "ciphertext bytes held"),
            ("mailboxes", gauges.mailboxes, "mailboxes holding envelopes"),
            ("queued_writes", gauges.queued_writes, "storage operations waiting"),
            ("tracked_ips", gauges.tracked_ips, "addresses with rate-limit state"),
            ("live_queued_bytes", gauges.live_queued_bytes, "ciphertext queued for readers"),
        ):
            _add(lines, name, "gauge", help_text, [("", value)])
        return "\n".join(lines) + "\n"

    def _render_app(self, lines: list[str]) -> None:
        _add(
            lines,
            "app_connections_total",
            "counter",
            "Pigeon app WebSocket connections accepted (/ws)",
            [("", self.app_connections_total)],
        )
        _add(
            lines,
            "app_publishes_total",
            "counter",
            "app publishes answered published",
            [
                ('{result="new"}', self.app_publishes_stored_total),
                ('{result="duplicate"}', self.app_publishes_duplicate_total),
            ],
        )
        for name, value, help_text in (
            ("app_reads_authenticated_total", self.app_reads_authenticated_total, "app logins"),
            ("app_auth_failures_total", self.app_auth_failures_total, "app logins refused"),
            ("app_envelopes_delivered_total", self.app_envelopes_delivered_total, "app envelopes"),
            ("app_envelopes_deleted_total", self.app_envelopes_deleted_total, "app acks applied"),
        ):
            _add(lines, name, "counter", help_text, [("", value)])
        _add(
            lines,
            "app_errors_total",
            "counter",
            "app error frames sent, by message",
            [(f'{{message="{m}"}}', n) for m, n in sorted(self.app_errors_total.items())],
        )


def _add(
    lines: list[str], name: str, kind: str, help_text: str, samples: list[tuple[str, int]]
) -> None:
    full = f"pigeon_relay_{name}"
    lines.append(f"# HELP {full} {help_text}")
    lines.append(f"# TYPE {full} {kind}")
    lines.extend(f"{full}{labels} {value}" for labels, value in samples)
