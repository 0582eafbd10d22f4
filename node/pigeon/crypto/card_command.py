"""`pigeon card`: verify a pasted contact card, or print a throwaway one for demos and tests."""

from __future__ import annotations

import argparse
import io
import sys

import segno

from pigeon.crypto.card import ContactCard
from pigeon.crypto.errors import CryptoError
from pigeon.crypto.identity import Identity

HELP = "verify a pasted contact card, or print a throwaway one (`pigeon card new`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`verify [TEXT|-]` and `new [--name NAME] [--relay URL]...`."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check a card and show who it belongs to",
        description="Check a contact card's signature and show its handle, name and relays.",
    )
    verify.add_argument(
        "text", nargs="*", metavar="TEXT", help="the card text (PIGEON:...); none or - reads stdin"
    )
    new = actions.add_parser(
        "new",
        help="make a THROWAWAY identity and print its card",
        description=(
            "Make a throwaway identity (its secret key is forgotten at once) and print its"
            " contact card as text and as a terminal QR code: a card to paste into a node's"
            " Contacts page when trying things out. No message sent to it can ever be read."
        ),
    )
    new.add_argument("--name", help="display name to put on the card (signed)")
    new.add_argument(
        "--relay", action="append", default=[], metavar="URL", help="mailbox relay (repeatable)"
    )


def describe_card(card: ContactCard) -> str:
    """Who the card belongs to and which of its fields are honoured, one per line."""
    lines = [f"handle:  {card.handle}"]
    if card.name is not None:
        lines.append(f"name:    {card.name} (signed)")
    lines.extend(f"relay:   {url} (signed)" for url in card.relays)
    if not card.relays:
        lines.append("relays:  none")
    if card.unverified_fields_dropped:
        lines.append("warning: fields whose signature did not verify were ignored (relays, name)")
    return "\n".join(lines)


def render_card(card: ContactCard) -> str:
    """The description, the text form and a terminal QR code of the text form."""
    text = card.to_text()
    qr = segno.make(text)
    out = io.StringIO()
    qr.terminal(out, compact=True)  # light modules drawn as blocks: for dark terminals
    return f"{describe_card(card)}\n\n{text}\n\nQR {qr.designator} ({qr.mode}):\n{out.getvalue()}"


def _read_text(words: list[str]) -> str:
    if not words or words == ["-"]:
        return sys.stdin.read()
    return " ".join(words)


def _verify(args: argparse.Namespace) -> int:
    try:
        card = ContactCard.from_text(_read_text(args.text))
    except CryptoError as exc:
        print(f"not a valid Pigeon card: {exc}", file=sys.stderr)
        return 1
    print(f"valid Pigeon card (version {card.version})")
    print(describe_card(card))
    return 0


def _new(args: argparse.Namespace) -> int:
    try:
        card = ContactCard.create(Identity.generate(), relays=args.relay, name=args.name)
    except CryptoError as exc:
        print(f"cannot make a card: {exc}", file=sys.stderr)
        return 1
    print("THROWAWAY identity for demos and tests: its secret key is already forgotten.")
    print(render_card(card))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run `verify` or `new`; exit 1 with a message on stderr on a bad card or argument."""
    return _verify(args) if args.action == "verify" else _new(args)
