"""The local web page: pairing, chat, contacts, status and settings over aiohttp.

The daemon wires it like this (see `ports.py` for what it implements):

    cert = ensure_certificate(data_dir, ["pigeon-ab12.local", "localhost"], ["192.168.1.20"])
    pairing = Pairing(FilePairingStore(data_dir / "browsers.json"), on_change=refresh_oled)
    app = build_app(messenger, status_source, device_panel, pairing,
                    WebConfig(node_name, allowed_hosts=cert.hostnames + cert.addresses,
                              https_port=8443, on_outgoing=send_now))
    async with serve(app, 8443, 8080, "0.0.0.0", data_dir) as (https_port, http_port):
        ...                                    # on StartPairing: code = pairing.start(time.time())

The identity reset (buttons, then `/reset`) reaches the daemon through an `IdentityReset`
passed as `build_app(..., reset=...)`.

Raises: WebError (root), PairingError (NoPairingWindow (ClosedByWrongCodes), WrongCode,
UnknownSession), CertificateError, BadRequest (QrNotFound), ResetError (ResetNotPending,
ResetFailed).
"""

from pigeon.ui.web.app import build_app
from pigeon.ui.web.errors import (
    BadRequest,
    CertificateError,
    ClosedByWrongCodes,
    NoPairingWindow,
    PairingError,
    QrNotFound,
    ResetError,
    ResetFailed,
    ResetNotPending,
    UnknownSession,
    WebError,
    WrongCode,
)
from pigeon.ui.web.pairing import BrowserSession, Pairing, PairingWindow
from pigeon.ui.web.ports import (
    PANEL_BUTTONS,
    DevicePanel,
    IdentityReset,
    LinkState,
    Neighbour,
    NodeStatus,
    NodeStatusSource,
    NoIdentityReset,
    PairingStore,
    RelayState,
    RelayStatus,
    WebConfig,
)
from pigeon.ui.web.server import serve
from pigeon.ui.web.session_file import FilePairingStore
from pigeon.ui.web.tls import CertInfo, ensure_certificate

__all__ = [
    "PANEL_BUTTONS",
    "BadRequest",
    "BrowserSession",
    "CertInfo",
    "CertificateError",
    "ClosedByWrongCodes",
    "DevicePanel",
    "FilePairingStore",
    "IdentityReset",
    "LinkState",
    "Neighbour",
    "NoIdentityReset",
    "NoPairingWindow",
    "NodeStatus",
    "NodeStatusSource",
    "Pairing",
    "PairingError",
    "PairingStore",
    "PairingWindow",
    "QrNotFound",
    "RelayState",
    "RelayStatus",
    "ResetError",
    "ResetFailed",
    "ResetNotPending",
    "UnknownSession",
    "WebConfig",
    "WebError",
    "WrongCode",
    "build_app",
    "ensure_certificate",
    "serve",
]
