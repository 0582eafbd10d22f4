"""Runs inside the BlueZ VM (tests/bluez/guest-ble.sh): two Pigeon BLE transports on hci0/hci1,
then link slots under abuse (guest_slots.py: a node on hci2 with one slot, squatters on hci0, a
neighbour on hci1), then the Pigeon app's steps (guest_app.py) and bitchat's (guest_bitchat.py)
with a node on hci2.

Each step is recorded in OUT/results.json as {"name", "ok", "detail", "seconds"}; throughput in
OUT/ble.json. The exit status is 0 only if every step passed. Frames are real mesh packets
(envelopes and receipts) cut by `pigeon.mesh.fragment` and joined by its `Reassembler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import signal
import struct
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from socket import SOL_SOCKET
from typing import Any

from pigeon.mesh.fragment import Reassembler, fragment
from pigeon.mesh.packet import Packet, PacketType, decode_packet, encode_packet, make_receipt
from pigeon.mesh.receipt import receipt_hash
from pigeon.transport import conformance
from pigeon.transport.base import Busy, PeerId
from pigeon.transport.ble.gatt import CHANNEL_FRAME_LIMIT
from pigeon.transport.ble.policy import NOTIFY_MIN_GAP_S, PacerParams
from pigeon.transport.ble.transport import BleConfig, BleTransport
from tests.bluez.guest_air import air_per_link
from tests.bluez.guest_app import AppRig, app_conformance
from tests.bluez.guest_bitchat import bitchat_steps
from tests.bluez.guest_capacity import l2cap_capacity
from tests.bluez.guest_fairness import fairness
from tests.bluez.guest_slots import slots_steps
from tests.bluez.rig_gatt import adapter_address, until

FAIRNESS = "fairness: texts on one link beside bulk transfers on two others"
AIR = "air: one link's frames cost the air of one link, on a channel"
AIR_PER_PAYLOAD_BYTE_MAX = 1.5
LINK_WAIT_S = 60.0
RECONNECT_WAIT_S = 120.0
BENCH_FRAMES = 300  # over GATT (the reference)
CHANNEL_BENCH_BYTES = 2_100_000  # over a channel, each way


class MeshSink:
    """A LinkSink that joins frames into packets and lets the driver wait for events."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.links: dict[PeerId, int] = {}
        self.downs: list[tuple[PeerId, str]] = []
        self.frames = 0
        self.frame_bytes = 0
        self.raw: list[bytes] = []
        self.packets: list[bytes] = []
        self.reassembler = Reassembler()
        self.changed = asyncio.Event()

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        self.links[peer] = frame_limit
        self.changed.set()

    def link_down(self, peer: PeerId, reason: str) -> None:
        self.links.pop(peer, None)
        self.downs.append((peer, reason))
        self.changed.set()

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        self.frames += 1
        self.frame_bytes += len(frame)
        self.raw.append(frame)
        if frame[0] >> 4 == 1:  # a mesh fragment (raw test frames use other first bytes)
            packet = self.reassembler.add(peer, frame, time.monotonic())
            if packet is not None:
                self.packets.append(packet)
        self.changed.set()

    async def until(self, done: Callable[[], bool], within_s: float, what: str) -> None:
        await until(self.changed, done, within_s, f"{self.name}: timed out waiting for {what}")


def envelope(rng: random.Random, size: int) -> Packet:
    return Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=rng.randbytes(16),
        expires_at_s=int(time.time()) + 3600,
        payload=rng.randbytes(size),
        receipt_hash=receipt_hash(rng.randbytes(16)),
    )


def receipt(rng: random.Random) -> Packet:
    return make_receipt(rng.randbytes(16), rng.randbytes(16), int(time.time()) + 3600)


async def send_all(t: BleTransport, peer: PeerId, frames: list[bytes]) -> int:
    """Send every frame, waiting out Busy; return how many times Busy was met."""
    busy = 0
    for frame in frames:
        while True:
            try:
                await t.send(peer, frame)
                break
            except Busy:
                busy += 1
                await asyncio.sleep(0.02)
    return busy


class Run:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.steps: list[dict[str, Any]] = []
        self.bench: dict[str, Any] = {}
        self.rng = random.Random(7)
        self.bluetoothd = Bluetoothd(out)

    async def step(
        self, name: str, body: Callable[[], Awaitable[str]], rerun: bool = False
    ) -> bool:
        """Run and record one step. Every step shares one bluetoothd: if it died before the step
        (in a rig's teardown, say) or during it, the death is recorded in the step's entry and
        bluetoothd started again, so that it fails no later step. A step that failed while
        bluetoothd died is run once more if `rerun` (a step that sets up and closes all it
        uses); its first attempt stays in the entry. A step that fails with bluetoothd alive is
        never rerun, and the last step ("bluetoothd never crashed") fails on any death."""
        before = await self.bluetoothd.recover(name, "before the step")
        entry = await self._attempt(name, body)
        if before is not None:
            entry["bluetoothd_died_before"] = before
        death = await self.bluetoothd.recover(name, "during the step")
        if death is not None:
            entry["bluetoothd_died"] = death
            if not entry["ok"] and rerun:
                print(f"!! {name}: FAILED while bluetoothd died; running it once more", flush=True)
                again = await self._attempt(name, body)
                again["first_attempt"] = entry
                death = await self.bluetoothd.recover(name, "during the step's rerun")
                if death is not None:
                    again["bluetoothd_died"] = death
                entry = again
        self.steps.append(entry)
        ok = bool(entry["ok"])
        print(f"== {name}: {'ok' if ok else 'FAILED'} ({entry['seconds']} s) {entry['detail']}")
        sys.stdout.flush()
        self.save()
        return ok

    @staticmethod
    async def _attempt(name: str, body: Callable[[], Awaitable[str]]) -> dict[str, Any]:
        start = time.monotonic()
        try:
            detail, ok = await body(), True
        except Exception as exc:  # a failed step is recorded, and the run goes on
            detail, ok = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", False
        took = round(time.monotonic() - start, 2)
        return {"name": name, "ok": ok, "detail": detail, "seconds": took}

    def save(self) -> None:
        (self.out / "results.json").write_text(json.dumps(self.steps, indent=2))
        (self.out / "ble.json").write_text(json.dumps(self.bench, indent=2))


async def make_pair(
    pacer: PacerParams, notify_gap_s: float = NOTIFY_MIN_GAP_S, channels: bool = True
) -> tuple[BleTransport, BleTransport, MeshSink, MeshSink]:
    a_config = BleConfig(
        adapter="hci0", pacer=pacer, notify_min_gap_s=notify_gap_s, channels=channels
    )
    b_config = BleConfig(
        adapter="hci1", pacer=pacer, notify_min_gap_s=notify_gap_s, channels=channels
    )
    a = BleTransport(a_config, rng=random.Random(1))
    b = BleTransport(b_config, rng=random.Random(2))
    sa, sb = MeshSink("A"), MeshSink("B")
    await a.start(sa)
    await b.start(sb)
    await sa.until(lambda: len(sa.links) == 1, LINK_WAIT_S, "A link_up")
    await sb.until(lambda: len(sb.links) == 1, LINK_WAIT_S, "B link_up")
    return a, b, sa, sb


def peers(sa: MeshSink, sb: MeshSink) -> tuple[PeerId, PeerId]:
    return next(iter(sa.links)), next(iter(sb.links))


async def exchange_packets(
    rng: random.Random, a: BleTransport, b: BleTransport, sa: MeshSink, sb: MeshSink
) -> str:
    a_to_b, b_to_a = peers(sa, sb)
    report = []
    for src, dst_sink, to in ((a, sb, a_to_b), (b, sa, b_to_a)):
        packets = [
            encode_packet(envelope(rng, 1600)),
            encode_packet(receipt(rng)),
            encode_packet(envelope(rng, 300)),
        ]
        before = len(dst_sink.packets)
        limit = src.frame_limit(to)
        for n, packet in enumerate(packets):
            await send_all(src, to, fragment(packet, limit, rng.randrange(0x10000) ^ n))
        await dst_sink.until(lambda s=dst_sink, k=before: len(s.packets) >= k + 3, 60, "packets")
        got = dst_sink.packets[before:]
        if got != packets:
            raise AssertionError(
                f"{dst_sink.name}: packets arrived changed or out of order: sent "
                f"{[len(p) for p in packets]}, got {[len(p) for p in got]}, "
                f"reassembler {dst_sink.reassembler.stats}"
            )
        kinds = [decode_packet(p).type.name for p in got]
        report.append(f"{dst_sink.name} got {kinds} at frame limit {limit}")
    return "; ".join(report)


async def boundary(a: BleTransport, sa: MeshSink, sb: MeshSink) -> str:
    a_to_b, _ = peers(sa, sb)
    limit = a.frame_limit(a_to_b)
    assert limit == CHANNEL_FRAME_LIMIT, f"frame limit {limit} on a channel"
    try:
        await a.send(a_to_b, bytes(limit + 1))
    except ValueError:
        pass
    else:
        raise AssertionError(f"a {limit + 1}-byte frame was accepted")
    before = len(sb.raw)
    frames = [bytes([0xA0 + i]) * size for i, size in enumerate((limit, limit - 1, 1, limit))]
    await send_all(a, a_to_b, frames)
    await sb.until(lambda: len(sb.raw) >= before + 4, 30, "boundary frames")
    assert sb.raw[before:] == frames, "boundary frames changed"
    sizes = "/".join(str(len(frame)) for frame in frames)
    return f"frame limit {limit}: {sizes}-byte frames crossed, {limit + 1} raised ValueError"


async def throughput(
    kind: str, src: BleTransport, to: PeerId, dst: MeshSink, pacer: PacerParams
) -> str:
    """Send numbered frames of the link's limit one way and report their goodput; on a channel,
    2.1 MB that must all arrive, in order (the channel's promise), over GATT a reference of
    BENCH_FRAMES."""
    (link,) = [state for state in src.links() if state.peer == to]
    size = link.frame_limit
    if link.carrier == "l2cap":
        name = f"channel_{'from' if link.role == 'central' else 'to'}_dialer"
        count = -(-CHANNEL_BENCH_BYTES // size)
    else:
        name = f"{'write' if link.role == 'central' else 'notify'}_{kind}"
        count = BENCH_FRAMES
    frames = [bytes([0xB0]) + n.to_bytes(4) + os.urandom(size - 5) for n in range(count)]
    before, start = dst.frames, time.monotonic()
    first_raw = len(dst.raw)
    busy = await send_all(src, to, frames)
    # Wait while frames keep coming; lost frames (unpaced) end the wait after 10 quiet seconds.
    last_at = time.monotonic()
    while dst.frames < before + len(frames):
        seen = dst.frames
        try:
            await dst.until(lambda n=seen: dst.frames > n, 10, "bench frames")
            last_at = time.monotonic()
        except AssertionError:
            break
    with_all = dst.frames >= before + len(frames)
    took = last_at - start
    got = dst.frames - before
    order = [int.from_bytes(f[1:5]) for f in dst.raw[first_raw:] if f[0] == 0xB0]
    inversions = sum(1 for x, y in itertools.pairwise(order) if y < x)
    self_report = {
        "frames_sent": len(frames),
        "frames_received": got,
        "frame_bytes": size,
        "seconds": round(took, 3),
        "frames_per_s": round(got / took, 1),
        "bytes_per_s": round(got * size / took, 1),
        "busy_retries": busy,
        "pacer_rate_bytes_s": pacer.rate_bytes_s,
        "pacer_burst_bytes": pacer.burst_bytes,
        "phy": link.phy,
        "complete": with_all,
        "reordered": inversions,
        "intact": all(f in frames for f in dst.raw[first_raw:] if f[0] == 0xB0),
    }
    if link.carrier == "l2cap":
        self_report["pacer_rate_bytes_s"] = self_report["pacer_burst_bytes"] = None
    BENCH[name] = self_report
    if link.carrier == "l2cap" and not (with_all and inversions == 0 and self_report["intact"]):
        raise AssertionError(f"frames lost, changed or reordered on a channel: {self_report}")
    return f"{name}: {json.dumps(self_report)}"


STALL_S = 5.0  # the receiver reads nothing this long
STALL_FRAMES = 600  # 612 KB: three times what a channel socket's receive buffer holds
SO_MEMINFO = 55  # socket.h: u32s, rmem_alloc first, then rcvbuf


async def stalled_reader(
    src: BleTransport, to: PeerId, dst: BleTransport, dst_sink: MeshSink
) -> str:
    """The receiving process reads nothing for STALL_S while the sender sends STALL_FRAMES, three
    times what the receiving socket's buffer holds: the receiving kernel must stop granting L2CAP
    credits once that buffer is full, not drop what finds it full, so the sender waits (Busy)
    and every frame arrives, in order. The kernel memory the stalled socket held is reported."""
    back = next(peer for peer, link in dst._links.items() if link.channel is not None)
    channel = dst._links[back].channel
    assert channel is not None
    (link,) = [state for state in src.links() if state.peer == to]
    size = link.frame_limit
    frames = [bytes([0xB1]) + n.to_bytes(4) + os.urandom(size - 5) for n in range(STALL_FRAMES)]
    first_raw = len(dst_sink.raw)
    loop = asyncio.get_running_loop()
    fd = channel._sock.fileno()  # the rig stalls one socket's reader, not the whole loop
    loop.remove_reader(fd)
    sending = asyncio.create_task(send_all(src, to, frames))
    await asyncio.sleep(STALL_S)
    rmem, rcvbuf = struct.unpack_from("<II", channel._sock.getsockopt(SOL_SOCKET, SO_MEMINFO, 36))
    queued_at_stall = link_queued(src, to)
    loop.add_reader(fd, channel._readable)
    busy = await sending
    got: list[bytes] = []

    def arrived() -> bool:
        got[:] = [f for f in dst_sink.raw[first_raw:] if f[0] == 0xB1]
        return len(got) >= len(frames)

    with contextlib.suppress(AssertionError):
        await dst_sink.until(arrived, 60, "frames after the stall")
    report = {
        "stall_s": STALL_S,
        "frames_sent": len(frames),
        "frames_received": len(got),
        "frame_bytes": size,
        "in_order_and_whole": got == frames[: len(got)],
        "kernel_receive_bytes_held": rmem,
        "receive_buffer_bytes": rcvbuf,
        "sender_queued_bytes_at_stall": queued_at_stall,
        "busy_retries": busy,
    }
    BENCH["stalled_reader"] = report
    if got != frames:
        raise AssertionError(f"a stalled reader lost or reordered frames: {report}")
    return json.dumps(report)


def link_queued(t: BleTransport, peer: PeerId) -> int:
    (state,) = [state for state in t.links() if state.peer == peer]
    return state.queued_bytes


BENCH: dict[str, Any] = {}


KILLED: set[int] = set()  # the bluetoothds the restart step killed on purpose
BLUETOOTHD_PID = Path("/run/bluetoothd.pid")  # guest-ble.sh's pigeon-start-bluetoothd writes it
BLUETOOTHD_START = "/usr/local/bin/pigeon-start-bluetoothd"
CONTROLLERS_START = "/usr/local/bin/pigeon-start-controllers"  # guest-ble.sh's, btvirt anew
ADAPTERS = ("hci0", "hci1", "hci2", "hci3")
ENDED_WAIT_S = 120.0  # a segfault's core goes to /out over 9p, seconds under emulation
ADAPTERS_WAIT_S = 60.0
LOG_TAIL_LINES = 8


class Bluetoothd:
    """The rig's one bluetoothd, which every step shares: when it died other than by the
    restart step's SIGKILL, `recover` records the death loudly (exit status, core file, the log's
    last lines; the core and the log stay in OUT) and starts bluetoothd again, as the node's
    systemd drop-in does on a Pi (Restart=on-failure), and the virtual controllers anew: a
    bluetoothd that dies mid-step leaves them scanning, advertising and connected as it left
    them (after a SIGSEGV in the app conformance check, the rerun's node met InProgress at each
    scan for 6 s and then saw no phone in 45 s), and the steps after it are to find them as the
    first step did.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.deaths: list[dict[str, Any]] = []

    def _dead_pid(self) -> int | None:
        """The running bluetoothd's pid if it is dead or dumping core, else None."""
        pid = bluetoothd_pid()
        if (self.out / f"core.bluetoothd.{pid}").exists() or not Path(f"/proc/{pid}").exists():
            return pid
        return None

    async def recover(self, step: str, when: str) -> dict[str, Any] | None:
        """If bluetoothd died: its record (None if it lives or the restart step killed it;
        then it is started again all the same), once it is running again."""
        pid = self._dead_pid()
        if pid is None:
            return None
        status = await self._ended(pid)
        start = time.monotonic()
        starter = await asyncio.create_subprocess_exec(BLUETOOTHD_START)
        await starter.wait()
        if pid in KILLED and status == 137:  # the restart step's, which did not start it again
            await _adapters_back(ADAPTERS, ADAPTERS_WAIT_S)
            return None
        controllers = await asyncio.create_subprocess_exec(CONTROLLERS_START)
        controllers_status = await controllers.wait()
        missing = await _adapters_back(ADAPTERS, ADAPTERS_WAIT_S)
        core = self.out / f"core.bluetoothd.{pid}"
        death = {
            "pid": pid,
            "status": status,
            "step": step,
            "when": when,
            "core": core.name if core.exists() else None,
            "log_tail": self._log_tail(pid),
            "restarted_as": bluetoothd_pid(),
            "controllers_restarted": controllers_status == 0,
            "adapters_missing_after_restart": missing,
            "restart_seconds": round(time.monotonic() - start, 1),
        }
        self.deaths.append(death)
        print(f"!! bluetoothd DIED {when} {step!r}: {json.dumps(death, indent=1)}", flush=True)
        return death

    async def _ended(self, pid: int) -> int | None:
        """Its exit status, once the rig's watcher logged its end (None if not in time)."""
        deadline = time.monotonic() + ENDED_WAIT_S
        while time.monotonic() < deadline:
            for ended, status in bluetoothd_endings(self.out / "bluetoothd.log"):
                if ended == pid:
                    return status
            await asyncio.sleep(0.5)
        return None

    def _log_tail(self, pid: int) -> list[str]:
        lines = (self.out / "bluetoothd.log").read_text(errors="replace").splitlines()
        own = [line for line in lines if f"bluetoothd[{pid}]" in line or f" {pid} ended" in line]
        return own[-LOG_TAIL_LINES:]


def bluetoothd_pid() -> int:
    """The pid of the bluetoothd the rig started last."""
    return int(BLUETOOTHD_PID.read_text())


async def _adapters_back(adapters: tuple[str, ...], within_s: float) -> list[str]:
    """Wait until bluetoothd lists every adapter; the ones still missing after `within_s`."""
    from dbus_fast import BusType, Message
    from dbus_fast.aio import MessageBus

    deadline = time.monotonic() + within_s
    missing = list(adapters)
    while True:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            reply = await bus.call(
                Message("org.bluez", "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
            )
        finally:
            bus.disconnect()
        if reply is not None and reply.message_type.name != "ERROR":
            paths = set(reply.body[0])
            missing = [a for a in adapters if f"/org/bluez/{a}" not in paths]
            if not missing:
                return []
        if time.monotonic() > deadline:
            return missing
        await asyncio.sleep(1)


async def restart_bluetoothd(sa: MeshSink, sb: MeshSink) -> str:
    pid = int(Path("/run/bluetoothd.pid").read_text())  # noqa: ASYNC240
    KILLED.add(pid)
    os.kill(pid, signal.SIGKILL)
    await sa.until(lambda: not sa.links, 30, "A link_down after bluetoothd died")
    await sb.until(lambda: not sb.links, 30, "B link_down after bluetoothd died")
    await asyncio.sleep(1)
    starter = await asyncio.create_subprocess_exec("/usr/local/bin/pigeon-start-bluetoothd")
    assert await starter.wait() == 0
    start = time.monotonic()
    await sa.until(lambda: len(sa.links) == 1, RECONNECT_WAIT_S, "A link_up after restart")
    await sb.until(lambda: len(sb.links) == 1, RECONNECT_WAIT_S, "B link_up after restart")
    return f"links back {time.monotonic() - start:.1f} s after bluetoothd restarted; downs: " + (
        f"A {sa.downs[-1][1]!r}, B {sb.downs[-1][1]!r}"
    )


def bluetoothd_endings(log: Path) -> list[tuple[int, int]]:
    """(pid, exit status) of every bluetoothd the rig started and saw end, from its log."""
    endings = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("== bluetoothd ") and " ended with status " in line:
            words = line.split()
            endings.append((int(words[2]), int(words[6])))
    return endings


def bluetoothd_survived(out: Path, killed: set[int], deaths: list[dict[str, Any]]) -> str:
    """Every bluetoothd still runs but the ones the restart step killed (SIGKILL: 137); the
    deaths the rig recovered from (`Bluetoothd.recover`) are named with their steps."""
    endings = bluetoothd_endings(out / "bluetoothd.log")
    unexpected = [(pid, status) for pid, status in endings if pid not in killed or status != 137]
    # A crash still writing its core (to /out, over 9p: seconds) has not ended yet, but its
    # core file is there from the start.
    cores = sorted(p.name for p in out.glob("core.*"))
    if unexpected or cores:
        where = [f"{d['pid']} (status {d['status']}) {d['when']} {d['step']!r}" for d in deaths]
        raise AssertionError(
            f"bluetoothd ended by itself: {unexpected} (pid, status); {cores}; "
            f"restarted by the rig after: {where}"
        )
    return f"bluetoothd ended only when killed: {endings}"


async def settled_then(check: Callable[[], str]) -> str:
    await asyncio.sleep(1)  # let the rig's watcher log a death that just happened
    return check()


FORGET_WAIT_S = 30.0
FORGET_SETTLE_S = 1.0


async def forget_devices() -> None:
    """Remove every device BlueZ knows on every adapter (the previous pair's neighbours), once
    none is connected. RemoveDevice on a device whose connection is still being torn down
    leaves bluetoothd 5.66 with a device marked connected that its adapter no longer lists (its
    log: "Device ... is already connected", "No matching connection for device"); the next
    connects to it fail, and one crashed bluetoothd (SIGSEGV). The node itself never removes
    devices: only this rig does, so that each pair meets as strangers."""
    from dbus_fast import BusType, Message
    from dbus_fast.aio import MessageBus
    from dbus_fast.errors import DBusError

    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()

    async def call(path: str, interface: str, member: str, body: list[Any]) -> Any:
        signature = "o" if body else ""
        message = Message("org.bluez", path, interface, member, signature=signature, body=body)
        reply = await bus.call(message)
        assert reply is not None
        if reply.message_type.name == "ERROR":
            raise DBusError(reply.error_name or "", str(reply.body))
        return reply.body

    async def devices() -> dict[str, bool]:
        body = await call("/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", [])
        return {
            path: bool(interfaces["org.bluez.Device1"]["Connected"].value)
            for path, interfaces in body[0].items()
            if "org.bluez.Device1" in interfaces
        }

    try:
        start = time.monotonic()
        asked: set[str] = set()
        while connected := [path for path, on in (await devices()).items() if on]:
            if time.monotonic() - start > FORGET_WAIT_S:
                raise AssertionError(f"still connected after {FORGET_WAIT_S:.0f} s: {connected}")
            for path in set(connected) - asked:
                asked.add(path)
                with contextlib.suppress(DBusError):
                    await call(path, "org.bluez.Device1", "Disconnect", [])
            await asyncio.sleep(0.2)
        await asyncio.sleep(FORGET_SETTLE_S)  # the kernel's side of the disconnect ends too
        known = await devices()
        logging.getLogger(__name__).info(
            "forget_devices: removing %s (%d were still connected, waited %.1f s)",
            sorted(known),
            len(asked),
            time.monotonic() - start,
        )
        for path in known:
            with contextlib.suppress(DBusError):
                await call(path.rsplit("/", 1)[0], "org.bluez.Adapter1", "RemoveDevice", [path])
    finally:
        bus.disconnect()


async def conformance_check() -> str:
    # The check's 5 s budget suits in-memory links; a scan, connect and GATT handshake under
    # software emulation needs more, so the budget is raised here and only here.
    conformance.WAIT_S = 45.0  # type: ignore[misc]
    names = iter(range(100, 200))

    async def factory() -> conformance.TransportPair:
        await asyncio.sleep(2)  # let the previous pair's disconnects settle
        await forget_devices()  # each pair meets as strangers, as new neighbours do
        a = BleTransport(BleConfig(adapter="hci0"), rng=random.Random(next(names)))
        b = BleTransport(BleConfig(adapter="hci1"), rng=random.Random(next(names)))
        a_id, b_id = "ble:" + a.identifier().hex(), "ble:" + b.identifier().hex()

        async def break_link() -> None:
            for n in b.adapter.neighbours().values():
                if n.connected:
                    await b.adapter.call(n.path, "org.bluez.Device1", "Disconnect")

        return conformance.TransportPair(a, b, PeerId(b_id), PeerId(a_id), break_link)

    done = []
    for check in conformance.ALL_CHECKS:
        start = time.monotonic()
        await check(factory)
        done.append(f"{check.__name__} {time.monotonic() - start:.1f} s")
    return ", ".join(done)


async def app_steps(run: Run) -> None:
    """The Pigeon app's service: a node on hci2 between scripted phones on hci0 and hci1."""
    await forget_devices()  # the phones meet the node as strangers
    rig = AppRig()
    try:
        if await run.step("app peers link through a node", rig.link):
            await run.step("app packets cross a node both ways", rig.cross)
    finally:
        try:
            await rig.aclose()
        except Exception:  # a failed close must not hide the steps' results
            logging.getLogger(__name__).exception("closing the app rig failed")
    await run.step(
        "app transport conformance check (links it dials)",
        lambda: app_conformance(forget_devices),
        rerun=True,
    )


async def capacity_step(when: str) -> str:
    """l2test's goodput from hci0 to hci1 over the LE connection a pair of ours holds; the
    capacity the shares are read against is the mean of the runs before and after ours."""
    report = await l2cap_capacity("hci0", "hci1", await adapter_address("hci1"))
    runs = BENCH.setdefault("l2cap_capacity", {"runs": {}})
    runs["runs"][when] = report
    rates = [r["bytes_per_s"] for r in runs["runs"].values()]
    runs["bytes_per_s"] = round(sum(rates) / len(rates), 1)
    return str(report)


async def fairness_step() -> str:
    report = await fairness(forget_devices)
    BENCH["fairness"] = report
    return json.dumps(report)


async def air_step() -> str:
    report = await air_per_link(forget_devices)
    BENCH["air_per_link"] = report
    # A channel's frames cost one link's air, whatever else is linked: the payload plus its
    # headers (some 6 %), far from the second link's worth GATT would send with two centrals.
    if report["l2cap"]["sent_per_payload_byte"] >= AIR_PER_PAYLOAD_BYTE_MAX:
        raise AssertionError(f"a channel's frames cost more than one link's air: {report}")
    return json.dumps(report)


async def goodput_steps(
    run: Run, pair: tuple[BleTransport, BleTransport, MeshSink, MeshSink], pacer: PacerParams
) -> None:
    """Both ways over the pair's link, between two runs of the rig's capacity reference (the
    emulated controllers run on the VM's CPU: the capacity drifts with the host's load)."""
    a, b, sa, sb = pair
    a_to_b, b_to_a = peers(sa, sb)
    capacity = "reference: the rig's L2CAP capacity, same controllers"
    await run.step(f"{capacity} (before)", lambda: capacity_step("before"))
    await run.step("throughput A->B", lambda: throughput("paced", a, a_to_b, sb, pacer))
    await run.step("throughput B->A", lambda: throughput("paced", b, b_to_a, sa, pacer))
    await run.step("a stalled reader loses nothing", lambda: stalled_reader(a, a_to_b, b, sb))
    await run.step(f"{capacity} (after)", lambda: capacity_step("after"))


async def main(out: Path) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run = Run(out)
    only = os.environ.get("PIGEON_VM_ONLY")
    pacer = PacerParams()
    if only in ("app", "bitchat", "slots", "capacity", "fairness", "air"):  # guest-app.sh, ...
        if only == "app":
            await app_steps(run)
        elif only == "fairness":
            await run.step(FAIRNESS, fairness_step, rerun=True)
            record_bench(run)
        elif only == "air":
            await run.step(AIR, air_step, rerun=True)
            record_bench(run)
        elif only == "capacity":
            nodes = await make_pair(PacerParams())
            await goodput_steps(run, nodes, pacer)
            await nodes[0].aclose()
            await nodes[1].aclose()
            record_bench(run)
        elif only == "slots":
            await slots_steps(run.step, forget_devices)
        else:
            await bitchat_steps(run.step, forget_devices, out)
        await run.step(
            "bluetoothd never crashed",
            lambda: settled_then(lambda: bluetoothd_survived(out, KILLED, run.bluetoothd.deaths)),
        )
        run.save()
        return 0 if all(s["ok"] for s in run.steps) else 1
    pair: list[Any] = []

    async def up() -> str:
        pair.extend(await make_pair(pacer))
        sa, sb = pair[2], pair[3]
        carriers = {state.carrier for t in pair[:2] for state in t.links()}
        if carriers != {"l2cap"}:
            raise AssertionError(f"two nodes linked over {carriers}, not an L2CAP channel")
        return f"A sees {dict(sa.links)}, B sees {dict(sb.links)}; A links {pair[0].links()}"

    if not await run.step("two nodes link up", up):
        return 1
    a, b, sa, sb = pair
    await run.step(
        "envelopes and receipts both ways", lambda: exchange_packets(run.rng, a, b, sa, sb)
    )
    await run.step("frame boundary at the link's limit", lambda: boundary(a, sa, sb))
    await goodput_steps(run, (a, b, sa, sb), pacer)
    if await run.step("reconnect after bluetoothd restart", lambda: restart_bluetoothd(sa, sb)):
        await run.step("packets after restart", lambda: exchange_packets(run.rng, a, b, sa, sb))
    await a.aclose()
    await b.aclose()
    await run.step("transport conformance check", conformance_check, rerun=True)
    # The reference beside ours: a link over GATT (as with a node that has no channels) with
    # pacing effectively off (reported only).
    unpaced = PacerParams(rate_bytes_s=10_000_000.0, burst_bytes=1_000_000.0)
    ref: list[Any] = []

    async def reference() -> str:
        ref.extend(await make_pair(unpaced, notify_gap_s=0.0, channels=False))
        ra, rb, rsa, rsb = ref
        to_b, to_a = peers(rsa, rsb)
        there = await throughput("unpaced", ra, to_b, rsb, unpaced)
        back = await throughput("unpaced", rb, to_a, rsa, unpaced)
        return f"{there}; {back}"

    await run.step("reference: GATT throughput without pacing", reference)
    for transport in ref[:2]:
        await transport.aclose()
    await slots_steps(run.step, forget_devices)
    await app_steps(run)
    await bitchat_steps(run.step, forget_devices, out)
    await run.step(FAIRNESS, fairness_step, rerun=True)
    await run.step(AIR, air_step, rerun=True)
    await run.step(
        "bluetoothd never crashed",
        lambda: settled_then(lambda: bluetoothd_survived(out, KILLED, run.bluetoothd.deaths)),
    )
    record_bench(run)
    run.save()
    return 0 if all(s["ok"] for s in run.steps) else 1


def record_bench(run: Run) -> None:
    """The figures into ble.json, each goodput also as a share of the rig's L2CAP capacity, and
    what the 2M PHY script said of each controller."""
    run.bench.update(BENCH)
    phy_log = run.out / "phy.log"
    if phy_log.exists():
        run.bench["phy_setup"] = phy_log.read_text().splitlines()
    capacity = BENCH.get("l2cap_capacity", {}).get("bytes_per_s")
    if capacity:
        run.bench["goodput_over_l2cap_capacity"] = {
            name: round(BENCH[name]["bytes_per_s"] / capacity, 3)
            for name in (
                "channel_from_dialer",
                "channel_to_dialer",
                "notify_unpaced",
                "write_unpaced",
            )
            if name in BENCH
        }
    run.bench["note"] = (
        "two BlueZ 5.66 controllers from btvirt in one QEMU TCG guest; between nodes on an LE "
        "credit-based L2CAP channel, frames of 1,020 bytes (2.1 MB each way, asserted whole "
        "and in order); the GATT reference without pacing (244-byte frames) is reported, "
        "not asserted"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
