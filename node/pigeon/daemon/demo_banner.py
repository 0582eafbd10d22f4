"""What `pigeon demo` prints: the state the node is in, and only the steps still to do.

Pure functions of a `DemoState` snapshot, so a restart that finds a paired browser, Robin as a
verified contact or an owner's passphrase says so instead of repeating the first-run steps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

ROBIN: Final = "Robin"
RULE: Final = "=" * 80
SAFETY_GROUP_DIGITS: Final = 5
COMMANDS_HELP: Final = """ Commands (type one here and press Enter):
   pair    a new pairing code, as holding button "a" for 3 s on the node does
   robin   Robin's side: the safety number his node shows and his conversation
   help    this list"""


class RobinContact(enum.Enum):
    """Robin in your contacts."""

    ABSENT = "absent"
    UNVERIFIED = "unverified"
    VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class DemoState:
    """The demo as it stands when the banner is printed.

    `pairing_code` is a code opened for this banner (None while a browser is paired already);
    `robin_safety_number` is what Robin's node shows for you (None until it knows your card).
    """

    page_url: str
    cert_fingerprint: str
    relay_url: str
    robin_card: str
    paired_browsers: int
    device_bound: bool
    robin_contact: RobinContact
    robin_safety_number: str | None
    pairing_code: str | None = field(default=None, repr=False)


def grouped(number: str) -> str:
    """A safety number in groups of five digits, as the page shows it."""
    step = SAFETY_GROUP_DIGITS
    return " ".join(number[i : i + step] for i in range(0, len(number), step))


def pairing_code_line(code: str, page_url: str) -> str:
    """The line printed for a code opened later (the `pair` command)."""
    return f" New pairing code: {code}  (valid for 2 minutes; type it on {page_url}pair)"


def banner(state: DemoState) -> str:
    """The greeting once your vault is open: the page, the node's state, the steps left."""
    lines = [RULE, " Pigeon Node demo: a simulated neighbourhood is running.", ""]
    lines += _page(state)
    steps = _steps(state)
    if steps:
        lines += ["", " Next:", *steps]
    lines += ["", *_state_lines(state), "", COMMANDS_HELP, ""]
    lines += [f" Mailbox relay on {state.relay_url}. Ctrl-C stops everything.", RULE]
    return "\n".join(lines)


def locked_banner(page_url: str, pairing_code: str | None) -> str:
    """The vault is owner-bound and locked: where to unlock it; the demo waits meanwhile."""
    lines = [
        RULE,
        " Pigeon Node demo: your vault is locked. It waits for your passphrase.",
        "",
        f"   Open {page_url}unlock and type the passphrase you set in Settings.",
        "   The neighbourhood keeps relaying meanwhile; the demo carries on once it is open.",
    ]
    if pairing_code is not None:
        lines += [
            "",
            "   No browser is paired: pair one first with the code the OLED shows now:",
            "",
            f"        {pairing_code}        (valid for 2 minutes; `pair` here gives a new one)",
        ]
    lines += ["", COMMANDS_HELP, "", " Ctrl-C stops everything.", RULE]
    return "\n".join(lines)


def robin_side(safety_number: str | None, conversation: list[tuple[str, str]]) -> str:
    """Robin's node's screen: his safety number for you, then (who, text) lines, oldest first."""
    if safety_number is None:
        head = f" {ROBIN}'s node does not know your card yet."
    else:
        head = f" {ROBIN}'s node shows this safety number for you:\n   {grouped(safety_number)}"
    lines = [head]
    if conversation:
        lines.append(f" {ROBIN}'s conversation with you:")
        lines += [f"   {who}: {text}" for who, text in conversation]
    else:
        lines.append(f" {ROBIN} has no messages from you yet.")
    return "\n".join(lines)


def _page(state: DemoState) -> list[str]:
    return [
        f"   Your node's page:  {state.page_url}",
        "   (a self-signed certificate: its SHA-256 fingerprint is",
        f"    {state.cert_fingerprint})",
    ]


def _steps(state: DemoState) -> list[str]:
    steps: list[list[str]] = []
    if state.pairing_code is not None:
        steps.append(
            [
                "Open the page and type the pairing code your node's OLED shows now:",
                "",
                f"       {state.pairing_code}        (valid for 2 minutes; type `pair` here for a"
                " new one)",
            ]
        )
    if state.robin_contact is RobinContact.ABSENT:
        steps.append(
            [
                f"Contacts -> add {ROBIN} with this card (his node is 4 hops away):",
                "",
                f"       {state.robin_card}",
            ]
        )
    if state.robin_contact is not RobinContact.VERIFIED:
        steps.append(
            [
                f"On {ROBIN}'s contact page, compare the safety number with the one his node",
                "shows for you (below), and mark him verified if they match.",
            ]
        )
    steps.append([f"Send {ROBIN} a message: his scripted owner answers every one."])
    lines: list[str] = []
    for number, step in enumerate(steps, start=1):
        first, *rest = step
        lines.append(f" {number}. {first}")
        lines += [f"    {line}" if line else "" for line in rest]
    return lines


def _state_lines(state: DemoState) -> list[str]:
    lines = [" Now:"]
    if state.paired_browsers:
        count = state.paired_browsers
        lines.append(
            f"   {count} browser{'' if count == 1 else 's'} paired with your node"
            " (`pair` here pairs another)."
        )
    if state.robin_contact is RobinContact.VERIFIED:
        lines.append(f"   {ROBIN} is in your contacts, verified.")
    elif state.robin_contact is RobinContact.UNVERIFIED:
        lines.append(f"   {ROBIN} is in your contacts, not verified yet.")
    if state.robin_safety_number is not None:
        lines.append(f"   {ROBIN}'s node shows this safety number for you:")
        lines.append(f"     {grouped(state.robin_safety_number)}")
    if state.device_bound:
        lines.append(
            "   No passphrase is set: your node opens its vault by itself. Settings -> Set a"
        )
        lines.append("   passphrase binds it to you (then each start waits until you unlock it).")
    else:
        lines.append("   Your vault is bound to your passphrase and open.")
    return lines
