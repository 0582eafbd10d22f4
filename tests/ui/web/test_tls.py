"""The node's certificate (SANs, reuse, renewal) and serving: verified HTTPS, HTTP redirects."""

from __future__ import annotations

import datetime
import hashlib
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pigeon.ui.web import CertificateError, ensure_certificate, serve
from pigeon.ui.web.server import redirect_app
from pigeon.ui.web.tls import CERT_FILE, KEY_FILE, RENEW_BEFORE_DAYS, VALIDITY_DAYS
from tests.ui.web.conftest import make_site

NAMES = ["pigeon-ab12.local", "localhost"]
ADDRESSES = ["127.0.0.1", "192.168.1.20", "fe80::1"]
T0 = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)


def test_certificate_names_every_way_to_reach_the_page(tmp_path: Path) -> None:
    info = ensure_certificate(tmp_path, NAMES, ADDRESSES, now=T0)
    cert = x509.load_pem_x509_certificate(info.cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == NAMES
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ADDRESSES
    der = cert.public_bytes(serialization.Encoding.DER)
    assert info.sha256 == hashlib.sha256(der).digest()
    assert len(info.fingerprint_text()) == 32 * 3 - 1
    assert cert.not_valid_after_utc - T0 > datetime.timedelta(days=VALIDITY_DAYS - 1)
    assert info.key_path.stat().st_mode & 0o077 == 0
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_certificate_is_reused_until_names_change_or_expiry_nears(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, NAMES, ADDRESSES, now=T0)
    same = ensure_certificate(
        tmp_path, NAMES[:1], ADDRESSES[:1], now=T0 + datetime.timedelta(days=10)
    )
    assert same.sha256 == first.sha256
    moved = ensure_certificate(tmp_path, NAMES, ["10.0.0.7"], now=T0)
    assert moved.sha256 != first.sha256
    assert "10.0.0.7" in moved.addresses
    late = T0 + datetime.timedelta(days=VALIDITY_DAYS - RENEW_BEFORE_DAYS + 1)
    renewed = ensure_certificate(tmp_path, NAMES, ["10.0.0.7"], now=late)
    assert renewed.sha256 != moved.sha256
    assert renewed.not_after > late + datetime.timedelta(days=VALIDITY_DAYS - 1)


def test_damaged_files_are_replaced(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, NAMES, ADDRESSES, now=T0)
    (tmp_path / CERT_FILE).write_bytes(b"garbage")
    second = ensure_certificate(tmp_path, NAMES, ADDRESSES, now=T0)
    assert second.sha256 != first.sha256
    (tmp_path / KEY_FILE).write_bytes(b"garbage")
    third = ensure_certificate(tmp_path, NAMES, ADDRESSES, now=T0)
    assert third.sha256 != second.sha256


def test_bad_address_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateError):
        ensure_certificate(tmp_path, NAMES, ["not-an-ip"], now=T0)


async def test_served_over_verified_https_and_http_only_redirects(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    info = ensure_certificate(tmp_path / "tls", NAMES, ["127.0.0.1"])
    trust = ssl.create_default_context(cafile=str(info.cert_path))
    async with (
        serve(site.app, 0, 0, "127.0.0.1", tmp_path / "tls") as (https_port, http_port),
        aiohttp.ClientSession() as session,
    ):
        assert http_port is not None
        # Hostname checking on: the certificate must name "localhost" and 127.0.0.1.
        for host in ("localhost", "127.0.0.1"):
            async with session.get(
                f"https://{host}:{https_port}/pair", ssl=trust, allow_redirects=False
            ) as response:
                assert response.status == 200
                assert "Pair this browser" in await response.text()
        async with session.get(
            f"http://localhost:{http_port}/chat/x?y=1", allow_redirects=False
        ) as response:
            assert response.status == 308
            assert response.headers["Location"] == f"https://localhost:{https_port}/chat/x?y=1"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        async with session.post(
            f"http://localhost:{http_port}/pair", data={"code": "123456"}, allow_redirects=False
        ) as response:
            assert response.status == 308
            assert "Set-Cookie" not in response.headers
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(
                f"https://localhost:{https_port}/pair", ssl=ssl.create_default_context()
            ):
                pass


@pytest.mark.parametrize(
    ("host_header", "target_host"),
    [
        ("evil.example", "pigeon-ab12.local"),  # a name the node does not have: its own first name
        ("evil.example:8080", "pigeon-ab12.local"),
        ("pigeon-ab12.local.evil.example", "pigeon-ab12.local"),
        ("LOCALHOST", "localhost"),  # one of its own names: kept, so the certificate matches
        ("127.0.0.1:80", "127.0.0.1"),
    ],
)
async def test_http_redirects_only_to_the_nodes_own_names(
    tmp_path: Path, host_header: str, target_host: str
) -> None:
    site = make_site(tmp_path)  # allowed hosts: pigeon-ab12.local, localhost, 127.0.0.1
    ensure_certificate(tmp_path / "tls", NAMES, ["127.0.0.1"])
    async with (
        serve(site.app, 0, 0, "127.0.0.1", tmp_path / "tls") as (https_port, http_port),
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{http_port}/chat/x?y=1",
            headers={"Host": host_header},
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 308
        assert response.headers["Location"] == f"https://{target_host}:{https_port}/chat/x?y=1"


async def test_redirect_keeps_ipv6_brackets_and_needs_an_own_name(aiohttp_client: Any) -> None:
    client = await aiohttp_client(redirect_app(443, ["fe80::1", "pigeon-ab12.local"]))
    response = await client.get("/pair", headers={"Host": "[FE80::1]"}, allow_redirects=False)
    assert response.headers["Location"] == "https://[fe80::1]/pair"
    nameless = await aiohttp_client(redirect_app(443, []))
    response = await nameless.get("/pair", headers={"Host": "evil.example"}, allow_redirects=False)
    assert response.status == 421
    assert "Location" not in response.headers


async def test_serve_without_certificate_is_a_typed_error(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    with pytest.raises(CertificateError):
        async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "empty"):
            pass


def test_fingerprint_and_code_fit_the_oled_pairing_screen(tmp_path: Path) -> None:
    from pigeon.ui.oled import Pairing as OledPairing

    site = make_site(tmp_path)
    info = ensure_certificate(tmp_path / "tls", NAMES, ADDRESSES, now=T0)
    site.pairing.start(site.clock())
    window = site.pairing.window(site.clock())
    assert window is not None
    shown = OledPairing(window.code, "https://pigeon-ab12.local:8443", info.sha256, 120.0)
    assert shown.cert_sha256 == info.sha256
