"""The owner's view of a card that turns read-only, inside the flashed image (image/read-only.sh).

Everything goes through the running node's own web API over loopback, as the owner's browser
would (the paired cookie and the contact Robin come from image_plug_guest.py's `pair` and
`setup`, copied beside this file):
`texts BOOT N`: N texts to Robin, each printed `ACK T ID` once the API answered 201 (stored).
`card WANT SECONDS`: wait until /api/status's `card_problem` is WANT (`none`, or a word it must
  contain, such as `read-only`); print `CARD <problem> after <s>` or `CARD TIMEOUT <problem>`.
`refused BOOT`: try one more text; print `REFUSED <status> <message>` if the API refused it, or
  `ACK T ID` if it was stored.
`have`: every text in Robin's conversation read back through the API, as `HAVE T ID COUNT
  whole|torn` lines, then `HAVE ALL <n>`; and `PAGE <status>` for the page itself.
Lines start with `CARD: ` on the serial console.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp

from image_plug_guest import DATA, PAGE, read_texts, session, text_body, text_counts, wait_for_page


def say(line: str) -> None:
    """One line to stdout (the serial console), written out at once."""
    print(f"CARD: {line}", flush=True)


def _contact() -> str:
    return (DATA / "contact").read_text().strip()


async def _post_text(http: aiohttp.ClientSession, ident: str) -> tuple[int, str]:
    url = f"{PAGE}/api/contacts/{_contact()}/messages"
    async with http.post(url, json={"text": text_body(ident)}) as response:
        return response.status, (await response.text())[:200].replace("\n", " ")


async def texts(boot: str, count: int) -> None:
    """`count` texts, each acknowledged once the API stored it."""
    async with session() as http:
        await wait_for_page(http)
        for n in range(count):
            ident = f"{boot}-{n}"
            status, body = await _post_text(http, ident)
            if status != 201:
                raise RuntimeError(f"sending a text: {status} {body}")
            say(f"ACK T {ident}")


async def card(want: str, seconds: float) -> None:
    """Until the node's status names the card problem `want` (or none), or `seconds` pass."""
    start = time.monotonic()
    problem: str | None = None
    async with session() as http:
        await wait_for_page(http)
        while time.monotonic() - start < seconds:
            async with http.get(f"{PAGE}/api/status") as response:
                problem = (await response.json())["card_problem"]
            if (want == "none" and problem is None) or (problem and want in problem):
                say(f"CARD {problem or 'none'} after {time.monotonic() - start:.0f}")
                return
            await asyncio.sleep(2)
    say(f"CARD TIMEOUT {problem or 'none'}")


async def refused(boot: str) -> None:
    """One more text: refused (as on a read-only card) or stored."""
    ident = f"{boot}-refused"
    async with session() as http:
        await wait_for_page(http)
        status, body = await _post_text(http, ident)
    say(f"ACK T {ident}" if status == 201 else f"REFUSED {status} {body}")


async def have() -> None:
    """Every text of Robin's conversation, read back through the API."""
    async with session() as http:
        await wait_for_page(http)
        bodies = await read_texts(http, _contact())
        async with http.get(f"{PAGE}/", allow_redirects=False) as response:
            say(f"PAGE {response.status}")
    counts, torn = text_counts(bodies)
    for ident in torn:
        say(f"HAVE T {ident} 1 torn")
    for ident, count in sorted(counts.items()):
        say(f"HAVE T {ident} {count} whole")
    say(f"HAVE ALL {len(bodies)}")


def main(argv: list[str]) -> None:
    """`texts BOOT N`, `card WANT SECONDS`, `refused BOOT` or `have`."""
    if argv[0] == "texts":
        asyncio.run(texts(argv[1], int(argv[2])))
    elif argv[0] == "card":
        asyncio.run(card(argv[1], float(argv[2])))
    elif argv[0] == "refused":
        asyncio.run(refused(argv[1]))
    elif argv[0] == "have":
        asyncio.run(have())
    else:
        raise SystemExit(f"unknown subcommand {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
