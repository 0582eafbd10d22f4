"""View-state validation, the QR sizing rule, and secrets kept out of reprs."""

from __future__ import annotations

import datetime

import pytest

from pigeon.ui.oled import qr
from pigeon.ui.oled.errors import InvalidView
from pigeon.ui.oled.state import Message, Pairing
from tests.ui.oled.samples import CERT, URL


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", "١٢٣٤٥٦", ""])
def test_pairing_code_must_be_six_ascii_digits(code: str) -> None:
    with pytest.raises(InvalidView, match="six digits"):
        Pairing(code, URL, CERT, 1.0)


def test_certificate_fingerprint_must_be_a_sha256_digest() -> None:
    with pytest.raises(InvalidView, match="SHA-256"):
        Pairing("123456", URL, CERT[:20], 1.0)


def test_url_must_fit_a_qr_on_the_screen() -> None:
    with pytest.raises(InvalidView, match="too long"):
        Pairing("123456", URL + "x" * 300, CERT, 1.0)


def test_pairing_code_and_message_text_stay_out_of_reprs() -> None:
    pairing = Pairing("987654", URL, CERT, 1.0)
    text = Message("m1", "Alice", "meet at the gate", datetime.datetime(2026, 1, 1), True)
    assert "987654" not in repr(pairing)
    assert "gate" not in repr(text)


def test_qr_text_upper_cases_scheme_and_host_only() -> None:
    assert qr.qr_text("https://pigeon-a1b2.local:8443/Pair?x=Y") == (
        "HTTPS://PIGEON-A1B2.LOCAL:8443/Pair?x=Y"
    )
    assert qr.qr_text("not a url") == "not a url"
    assert qr.qr_text("https://user@host/") == "https://user@host/"


@pytest.mark.parametrize(
    ("url", "modules", "scale"),
    [
        (URL, 25, 2),
        ("https://[fd00::1234:5678:9abc]:8443/", 29, 1),
        ("https://pigeon-a1b2.local:8443/pair?from=oled", 33, 1),
    ],
)
def test_qr_uses_two_pixels_per_module_when_it_fits(url: str, modules: int, scale: int) -> None:
    symbol = qr.encode(url)
    assert (symbol.modules, symbol.scale) == (modules, scale)
    assert (symbol.modules + 2 * qr.MIN_QUIET_MODULES) * symbol.scale <= qr.AREA_PX


def test_url_that_no_qr_can_carry_is_invalid() -> None:
    with pytest.raises(InvalidView, match="cannot be encoded"):
        Pairing("123456", "https://\udc80/", CERT, 1.0)
