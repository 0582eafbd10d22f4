"""The rig's own link capacity, measured beside our goodput in the same VM run (issue #19).

BlueZ's `l2test` sends numbered SDUs over an LE credit-based L2CAP channel between two of the
virtual controllers, riding the LE connection our transports already hold between them; the
receiver checks each SDU's sequence number, length and filler, and prints a line per SDU. The
kernel's credit-based flow control is what our GATT links lack: it is the ceiling a byte pipe
over this pair of controllers reaches, whatever its protocol. Reported, not asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

PSM = "0x0081"  # an LE dynamic PSM (0x0080-0x00FF)
# The same SDUs and credit window as the nodes' channels (l2cap.RECEIVE_MTU, a 1,020-byte frame
# and its 4-byte header): the reference is the same pipe without our process in it.
SDU_BYTES = 1024
RECEIVE_MTU = 8192
SDUS = 2000  # 2 MB
SETTLE_S = 1.0  # the receiver listens before the sender connects
WITHIN_S = 120.0
QUIET_S = 5.0  # after the sender exited or SDUs began to arrive: the longest gap between two


async def l2cap_capacity(sender: str, receiver: str, receiver_address: str) -> dict[str, Any]:
    """Send SDUS SDUs of SDU_BYTES from `sender` (hciN) to `receiver`; their goodput."""
    listen = await asyncio.create_subprocess_exec(
        "l2test", "-r", "-i", receiver, "-V", "le_public", "-P", PSM,
        "-b", str(SDU_BYTES), "-I", str(RECEIVE_MTU),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    send: asyncio.subprocess.Process | None = None
    arrivals: list[float] = []
    complaints: list[str] = []
    try:
        await asyncio.sleep(SETTLE_S)
        send = await asyncio.create_subprocess_exec(
            "l2test", "-s", "-i", sender, "-V", "le_public", "-P", PSM,
            "-b", str(SDU_BYTES), "-O", str(RECEIVE_MTU), "-N", str(SDUS), receiver_address,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert listen.stderr is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WITHIN_S):
                while len(arrivals) < SDUS:
                    # The sender may give up (no connection), or stay connected after its last
                    # SDU while one went missing: then only a quiet spell is left.
                    quiet = QUIET_S if send.returncode is not None or arrivals else WITHIN_S
                    try:
                        async with asyncio.timeout(quiet):
                            line = await listen.stderr.readline()
                    except TimeoutError:
                        break
                    if not line:
                        break
                    text = line.decode(errors="replace")
                    if f"{SDU_BYTES} bytes in" in text:
                        arrivals.append(time.monotonic())
                    elif "missmatch" in text or "failed" in text.lower():
                        complaints.append(text.strip())
    finally:
        for process in (send, listen):
            if process is not None and process.returncode is None:
                process.kill()
                with contextlib.suppress(ProcessLookupError):
                    await process.wait()
    if send is not None and send.stderr is not None:
        said = (await send.stderr.read()).decode(errors="replace").strip().splitlines()
        complaints.extend(line for line in said if "fail" in line.lower() or "can't" in line)
    if len(arrivals) < 2:
        raise AssertionError(f"l2test delivered {len(arrivals)} SDUs; it said {complaints[:3]}")
    took = arrivals[-1] - arrivals[0]
    return {
        "sdus_sent": SDUS,
        "sdus_received": len(arrivals),
        "sdu_bytes": SDU_BYTES,
        "seconds": round(took, 3),
        "bytes_per_s": round((len(arrivals) - 1) * SDU_BYTES / took, 1),
        "complaints": complaints[:5],
        "complete": len(arrivals) == SDUS and not complaints,
    }
