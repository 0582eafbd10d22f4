"""Abuse limits of the relay as pure logic: settings, token buckets, quotas, per-IP accounting.

Nothing here reads a clock: every call takes `now` in seconds, so tests and the simulator are
deterministic. Defaults follow comparable systems (see `config/relay.toml`).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Final

from pigeon.relay.protocol import ErrorCode

_IPV6_PREFIX: Final = 64  # one subscriber usually holds a whole /64
# With the address table full, idle addresses are swept at most this often (a sweep is O(n)).
TRACKED_IPS_SWEEP_S: Final = 1.0
_MAX_U32: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Limits:
    """Every configurable limit; see `config/relay.toml` for what each means."""

    max_envelope_bytes: int = 65_536
    mailbox_max_envelopes: int = 1_000
    mailbox_max_bytes: int = 16 * 1024 * 1024
    relay_max_bytes: int = 1024 * 1024 * 1024
    max_age_s: int = 14 * 24 * 3600
    purge_interval_s: float = 300.0
    max_connections: int = 4_096
    max_connections_per_ip: int = 64
    ip_connects_per_s: float = 2.0
    ip_connect_burst: int = 20
    connection_frames_per_s: float = 200.0
    connection_frame_burst: int = 400
    ip_deposits_per_s: float = 100.0
    ip_deposit_burst: int = 1_000
    ip_deposit_bytes_per_s: float = 1024.0 * 1024
    ip_deposit_byte_burst: int = 8 * 1024 * 1024
    max_queued_writes: int = 10_000
    challenge_ttl_s: float = 60.0
    max_clock_skew_s: float = 300.0
    handshake_timeout_s: float = 10.0
    max_tracked_ips: int = 65_536


@dataclass(frozen=True, slots=True)
class Quota:
    """Storage caps checked atomically with each deposit."""

    mailbox_max_envelopes: int
    mailbox_max_bytes: int
    relay_max_bytes: int

    @classmethod
    def from_limits(cls, limits: Limits) -> Quota:
        """The storage part of `limits`."""
        return cls(limits.mailbox_max_envelopes, limits.mailbox_max_bytes, limits.relay_max_bytes)


def quota_refusal(
    quota: Quota, mailbox_count: int, mailbox_bytes: int, relay_bytes: int, size: int
) -> ErrorCode | None:
    """The error refusing a deposit of `size` bytes given current usage, or None to accept."""
    if mailbox_count + 1 > quota.mailbox_max_envelopes:
        return ErrorCode.MAILBOX_FULL
    if mailbox_bytes + size > quota.mailbox_max_bytes:
        return ErrorCode.MAILBOX_BYTES_FULL
    if relay_bytes + size > quota.relay_max_bytes:
        return ErrorCode.RELAY_FULL
    return None


class TokenBucket:
    """A token bucket: `rate_per_s` tokens per second up to `burst`, starting full."""

    __slots__ = ("_burst", "_rate_per_s", "_tokens", "_updated")

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self._rate_per_s = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._updated = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Spend `cost` tokens and return 0.0, or spend nothing and return seconds to wait."""
        self._refill(now)
        if cost <= self._tokens:
            self._tokens -= cost
            return 0.0
        if cost > self._burst or self._rate_per_s <= 0:
            return float("inf")
        return (cost - self._tokens) / self._rate_per_s

    def is_full(self, now: float) -> bool:
        """True if the bucket has refilled completely (its owner can be forgotten)."""
        self._refill(now)
        return self._tokens >= self._burst

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate_per_s)
        self._updated = now


def ip_key(address: str) -> str:
    """The unit per-IP limits count: the IPv4 address or the IPv6 /64; text stays as is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_PREFIX), strict=False))
    return str(ip)


class _IpState:
    __slots__ = ("byte_bucket", "connect_bucket", "connections", "deposit_bucket")

    def __init__(self, limits: Limits, now: float) -> None:
        self.connections = 0
        self.connect_bucket = TokenBucket(limits.ip_connects_per_s, limits.ip_connect_burst, now)
        self.deposit_bucket = TokenBucket(limits.ip_deposits_per_s, limits.ip_deposit_burst, now)
        self.byte_bucket = TokenBucket(
            limits.ip_deposit_bytes_per_s, limits.ip_deposit_byte_burst, now
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A limit was hit: the error to send and when a retry may succeed."""

    code: ErrorCode
    retry_after_s: float = 0.0

    def retry_after_ms(self) -> int:
        """`retry_after_s` in whole milliseconds, rounded up, saturating at 2**32-1 (never)."""
        if math.isinf(self.retry_after_s):
            return _MAX_U32
        return min(_MAX_U32, math.ceil(self.retry_after_s * 1000))


class AdmissionControl:
    """Connection caps and per-IP rate limits of one relay process.

    `open`/`close` count every TCP connection, from accept (whether or not it ever becomes a
    WebSocket); `admit`/`release` count connections per address. At most `max_tracked_ips`
    addresses have state: a new address finds room or is refused before any state is made.
    """

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._ips: dict[str, _IpState] = {}
        self._connections = 0
        self._last_sweep = -math.inf

    @property
    def connections(self) -> int:
        """Connections currently open (counted from accept)."""
        return self._connections

    def open(self) -> Refusal | None:
        """Count a newly accepted connection against `max_connections`, or refuse it."""
        if self._connections >= self._limits.max_connections:
            return Refusal(ErrorCode.TOO_MANY_CONNECTIONS)
        self._connections += 1
        return None

    def close(self) -> None:
        """Forget one connection `open` counted."""
        self._connections = max(0, self._connections - 1)

    def admit(self, ip: str, now: float) -> Refusal | None:
        """Count a connection from `ip` (an `ip_key`), or say why it is refused."""
        state = self._ips.get(ip)
        if state is None:
            if not self._room_for_an_address(now):
                return Refusal(ErrorCode.TOO_MANY_CONNECTIONS, TRACKED_IPS_SWEEP_S)
            state = self._ips[ip] = _IpState(self._limits, now)
        if state.connections >= self._limits.max_connections_per_ip:
            return Refusal(ErrorCode.TOO_MANY_IP_CONNECTIONS)
        wait_s = state.connect_bucket.take(now)
        if wait_s:
            return Refusal(ErrorCode.CONNECT_RATE_LIMITED, wait_s)
        state.connections += 1
        return None

    def release(self, ip: str) -> None:
        """Forget one connection `admit` counted for `ip`."""
        state = self._ips.get(ip)
        if state is not None and state.connections > 0:
            state.connections -= 1

    def deposit(self, ip: str, size: int, now: float) -> Refusal | None:
        """Charge a deposit of `size` ciphertext bytes to `ip`, or say why it is refused."""
        # An admitted connection's address keeps its state while the connection lasts.
        state = self._ips.get(ip) or self._ips.setdefault(ip, _IpState(self._limits, now))
        wait_s = state.deposit_bucket.take(now)
        if wait_s:
            return Refusal(ErrorCode.IP_RATE_LIMITED, wait_s)
        wait_s = state.byte_bucket.take(now, size)
        if wait_s:
            return Refusal(ErrorCode.IP_RATE_LIMITED, wait_s)
        return None

    def forget_idle(self, now: float) -> int:
        """Drop per-IP state with no connections and full buckets; returns how many."""
        self._last_sweep = now
        idle = [
            ip
            for ip, state in self._ips.items()
            if state.connections == 0
            and state.connect_bucket.is_full(now)
            and state.deposit_bucket.is_full(now)
            and state.byte_bucket.is_full(now)
        ]
        for ip in idle:
            del self._ips[ip]
        return len(idle)

    def tracked_ips(self) -> int:
        """How many IP keys are remembered (for metrics)."""
        return len(self._ips)

    def _room_for_an_address(self, now: float) -> bool:
        if len(self._ips) < self._limits.max_tracked_ips:
            return True
        if now - self._last_sweep >= TRACKED_IPS_SWEEP_S:
            self.forget_idle(now)
        return len(self._ips) < self._limits.max_tracked_ips
