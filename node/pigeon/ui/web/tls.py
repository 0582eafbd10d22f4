"""The node's self-signed TLS certificate: made once, renewed when names change or it nears expiry.

The key is ECDSA P-256 (cheap on a Pi Zero), stored unencrypted with mode 0600 because the
page must start before anyone can type a passphrase. The certificate names every way the owner
may reach the page (`pigeon-XXXX.local`, `localhost`, the node's addresses) as subject
alternative names; browsers ignore the common name. Its SHA-256 fingerprint is shown on the
OLED pairing screen so the owner can check the certificate the browser was given.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pigeon.ui.web.errors import CertificateError

_LOGGER = logging.getLogger(__name__)

CERT_FILE: Final = "web-cert.pem"
KEY_FILE: Final = "web-key.pem"
VALIDITY_DAYS: Final = 825  # the longest validity Apple's platforms accept for TLS servers
RENEW_BEFORE_DAYS: Final = 30
BACKDATE: Final = datetime.timedelta(hours=1)  # tolerate a client clock slightly behind

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class CertInfo:
    """Where the certificate and key are, its SHA-256 fingerprint (32 bytes) and names."""

    cert_path: Path
    key_path: Path
    sha256: bytes
    hostnames: tuple[str, ...]
    addresses: tuple[str, ...]
    not_after: datetime.datetime

    def fingerprint_text(self) -> str:
        """The fingerprint as browsers show it: colon-separated uppercase hex pairs."""
        return ":".join(f"{byte:02X}" for byte in self.sha256)


def ensure_certificate(
    cert_dir: Path,
    hostnames: Iterable[str],
    addresses: Iterable[str],
    *,
    now: datetime.datetime | None = None,
) -> CertInfo:
    """Load the certificate in `cert_dir`, or make a new one if it is missing, expiring soon, or
    lacks one of the names. Raises CertificateError (a bad address, unreadable files)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    names = tuple(dict.fromkeys(name.lower() for name in hostnames))
    ips = tuple(dict.fromkeys(_parse_address(text) for text in addresses))
    cert_path, key_path = cert_dir / CERT_FILE, cert_dir / KEY_FILE
    current = _load(cert_path, key_path)
    if current is not None and _still_good(current, names, ips, moment):
        return _info(cert_path, key_path, current)
    try:
        cert = _create(key_path, names, ips, moment, reuse_key=current is not None)
        _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    except CertificateError:
        if current is None:
            raise
        # A read-only or full card cannot take the renewed pair: the page keeps the one it
        # has (a browser may warn about the new name; the fingerprint it knows is the same).
        _LOGGER.warning("cannot write a renewed TLS certificate; serving the current one")
        return _info(cert_path, key_path, current)
    _LOGGER.info("new TLS certificate for %s", ", ".join(names + tuple(map(str, ips))))
    return _info(cert_path, key_path, cert)


def _parse_address(text: str) -> IpAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise CertificateError(f"not an IP address: {text!r}") from exc


def _load(cert_path: Path, key_path: Path) -> x509.Certificate | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CertificateError("cannot read the TLS certificate or key") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm):
        _LOGGER.warning("TLS certificate or key unreadable; making a new pair")
        return None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        _LOGGER.warning("TLS key does not match the certificate; making a new pair")
        key_path.unlink()
        return None
    return cert


def _still_good(
    cert: x509.Certificate,
    names: tuple[str, ...],
    ips: tuple[IpAddress, ...],
    now: datetime.datetime,
) -> bool:
    if cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    if cert.not_valid_before_utc > now:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_names = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    return set(names) <= have_names and set(ips) <= have_ips


def _create(
    key_path: Path,
    names: tuple[str, ...],
    ips: tuple[IpAddress, ...],
    now: datetime.datetime,
    *,
    reuse_key: bool,
) -> x509.Certificate:
    key = _key(key_path, reuse=reuse_key)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "pigeon")])
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt_names += [x509.IPAddress(ip) for ip in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(key, hashes.SHA256())


def _key(key_path: Path, *, reuse: bool) -> ec.EllipticCurvePrivateKey:
    if reuse:
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if isinstance(loaded, ec.EllipticCurvePrivateKey):
            return loaded
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(key_path, pem, mode=0o600)
    return key


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tls-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as exc:
        raise CertificateError(f"cannot write {path.name}") from exc


def _info(cert_path: Path, key_path: Path, cert: x509.Certificate) -> CertInfo:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return CertInfo(
        cert_path=cert_path,
        key_path=key_path,
        sha256=cert.fingerprint(hashes.SHA256()),
        hostnames=tuple(san.get_values_for_type(x509.DNSName)),
        addresses=tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
        not_after=cert.not_valid_after_utc,
    )
