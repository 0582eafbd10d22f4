"""`pigeon card` as a user runs it: a throwaway card, then verifying pasted cards."""

import io
import subprocess
import sys

import pytest
import zxingcpp
from PIL import Image

from pigeon.cli import main
from pigeon.crypto.card import CARD_DOMAIN, TEXT_PREFIX, ContactCard
from pigeon.crypto.card_command import render_card
from pigeon.crypto.card_kat import FIXED_ALICE_SECRETS
from pigeon.crypto.identity import Identity

ALICE = Identity.from_secrets(*FIXED_ALICE_SECRETS)
RELAY = "wss://relay.example.org/pigeon"
HALVES = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}  # (top, bottom) light


def _card_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(TEXT_PREFIX))


def test_new_prints_a_throwaway_card_that_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "new", "--name", "Demo", "--relay", RELAY]) == 0
    out = capsys.readouterr().out
    assert "THROWAWAY" in out
    assert "QR " in out
    assert "█" in out
    text = _card_line(out)
    card = ContactCard.from_text(text)
    assert card.name == "Demo"
    assert card.relays == (RELAY,)
    assert main(["card", "verify", text]) == 0
    verified = capsys.readouterr().out
    assert card.handle in verified
    assert f"{RELAY} (signed)" in verified


def test_new_with_a_bad_relay_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "new", "--relay", "http://nope.example"]) == 1
    assert "cannot make a card" in capsys.readouterr().err


def test_verify_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = ContactCard.create(ALICE).to_text()
    wrapped = "\n".join(text[i : i + 50] for i in range(0, len(text), 50)) + "\n"
    for argv in (["card", "verify"], ["card", "verify", "-"]):
        monkeypatch.setattr(sys, "stdin", io.StringIO(wrapped))
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert ALICE.handle in out
        assert "relays:  none" in out


def test_verify_accepts_text_split_over_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    text = ContactCard.create(ALICE).to_text()
    assert main(["card", "verify", text[:100], text[100:]]) == 0
    assert ALICE.handle in capsys.readouterr().out


@pytest.mark.parametrize("text", ["PIGEON:AAAA", "hello", TEXT_PREFIX + "A" * 207])
def test_verify_refuses_a_bad_card(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "verify", text]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("not a valid Pigeon card: ")
    assert captured.out == ""


def test_verify_warns_about_unverified_relays(capsys: pytest.CaptureFixture[str]) -> None:
    url = RELAY.encode()
    body = bytes([1]) + ALICE.bundle().to_bytes() + b"\x01" + (len(url) + 1).to_bytes(2, "big")
    body += bytes([len(url)]) + url
    mallory = Identity.generate()
    body += b"\xff\x00\x40" + mallory.sign(CARD_DOMAIN + body)
    text = ContactCard.from_bytes(body).to_text()
    assert main(["card", "verify", text]) == 0
    out = capsys.readouterr().out
    assert "did not verify" in out
    assert "relays:  none" in out
    assert RELAY not in out


def test_render_card_has_everything_the_node_shows() -> None:
    card = ContactCard.create(ALICE, relays=[RELAY], name="Alice")
    rendered = render_card(card)
    assert card.handle in rendered
    assert card.to_text() in rendered
    assert "Alice (signed)" in rendered
    assert "alphanumeric" in rendered


def test_console_script_prints_a_card() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "card", "new"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ContactCard.from_text(_card_line(result.stdout))


def test_terminal_qr_code_scans_back_to_the_card() -> None:
    card = ContactCard.create(ALICE, relays=[RELAY], name="Alice")
    rows = [line for line in render_card(card).split("\n") if line and set(line) <= set(HALVES)]
    # Each character is two modules stacked; segno draws light modules as ink (dark terminals).
    image = Image.new("L", (len(rows[0]), 2 * len(rows)))
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            top, bottom = HALVES[char]
            image.putpixel((x, 2 * y), 255 * top)
            image.putpixel((x, 2 * y + 1), 255 * bottom)
    image = image.resize((image.width * 4, image.height * 4), Image.Resampling.NEAREST)
    assert [result.text for result in zxingcpp.read_barcodes(image)] == [card.to_text()]
