"""The demo's banner says the state the node is in, and lists only the steps still to do."""

from __future__ import annotations

import dataclasses

from pigeon.daemon.demo_banner import DemoState, RobinContact, banner, locked_banner, robin_side

NUMBER = "".join(str(i % 10) for i in range(60))
FIRST_RUN = DemoState(
    page_url="https://localhost:8443/",
    cert_fingerprint="AB:CD",
    relay_url="ws://127.0.0.1:8765/v1",
    robin_card="PIGEON:ROBINSCARD",
    paired_browsers=0,
    device_bound=True,
    robin_contact=RobinContact.ABSENT,
    robin_safety_number=NUMBER,
    pairing_code="123456",
)


def test_the_first_run_lists_every_step() -> None:
    text = banner(FIRST_RUN)
    assert " 1. Open the page and type the pairing code" in text
    assert "123456" in text
    assert " 2. Contacts -> add Robin" in text
    assert "PIGEON:ROBINSCARD" in text
    assert " 3. On Robin's contact page, compare the safety number" in text
    assert "01234 56789 01234" in text
    assert "No passphrase is set" in text


def test_a_restart_says_where_things_stand_instead_of_repeating_steps() -> None:
    later = dataclasses.replace(
        FIRST_RUN,
        paired_browsers=2,
        device_bound=False,
        robin_contact=RobinContact.VERIFIED,
        pairing_code=None,
    )
    text = banner(later)
    assert "pairing code" not in text.split("Now:")[0]
    assert "PIGEON:ROBINSCARD" not in text
    assert "compare the safety number" not in text
    assert " 1. Send Robin a message" in text
    assert "2 browsers paired" in text
    assert "Robin is in your contacts, verified." in text
    assert "bound to your passphrase and open" in text


def test_an_unverified_robin_leaves_the_comparison_to_do() -> None:
    text = banner(dataclasses.replace(FIRST_RUN, robin_contact=RobinContact.UNVERIFIED))
    assert "add Robin with this card" not in text
    assert "compare the safety number" in text
    assert "not verified yet" in text


def test_the_locked_banner_says_where_to_unlock() -> None:
    paired = locked_banner("https://localhost:8443/", None)
    assert "waits for your passphrase" in paired
    assert "https://localhost:8443/unlock" in paired
    assert "No browser is paired" not in paired
    assert "654321" in locked_banner("https://localhost:8443/", "654321")


def test_robins_side_before_and_after_he_knows_you() -> None:
    assert "does not know your card yet" in robin_side(None, [])
    text = robin_side(NUMBER, [("you", "hi"), ("Robin", "Robin got: hi")])
    assert "01234 56789" in text
    assert text.endswith("   you: hi\n   Robin: Robin got: hi")
